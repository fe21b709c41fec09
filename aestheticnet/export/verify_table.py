"""``verify``'s report as the table the command prints."""

from __future__ import annotations

import math
from typing import Any

__all__ = ["format_table"]


def _fmt(value, spec: str = ".2e") -> str:
    if value is None:
        return "-"
    if isinstance(value, float) and math.isnan(value):
        return "nan"
    return format(value, spec)


def format_table(report: Any) -> str:
    """The lines ``aestheticnet verify`` prints for a ``VerifyReport``."""
    tol = report.tolerance
    lines = [
        f"{report.artifact}  ({report.format} {report.precision}, runtime {report.runtime or '-'})",
        f"reference {report.reference}",
    ]
    if report.evaluated_by and report.evaluated_by != report.runtime:
        lines.append(f"evaluated by {report.evaluated_by}")
    if report.device:
        d = report.device
        emulated = f", emulated: {d['emulated']}" if d.get("emulated") else ""
        lines.append(
            f"device {d['url']}: {d.get('machine')} ({d.get('cpu_model')}), {d.get('os')}, "
            f"{d.get('runtime')} {d.get('runtime_version')}{emulated}; "
            f"on this machine: {'passed' if d.get('passed_on_this_machine') else 'FAILED'}"
        )
    if report.spec is not None:
        lines.append(
            "spec: inputs "
            + "; ".join(
                f"{f['name']} {f['type']} {f.get('range') or f.get('enumerated') or f.get('shape')}"
                for f in report.spec["inputs"]
            )
        )
        lines.append(f"spec: {sum(report.spec['ops'].values())} ops, metadata keys {sorted(report.spec['metadata'])}")
    if report.shapes:
        lines.append(f"{'shape':<16}{'max abs':>10}{'mean-score':>12}{'PSNR dB':>9}{'agree':>7}  status")
        lines.append(
            f"{'(tolerance)':<16}{_fmt(tol['max_abs']):>10}{_fmt(tol['mean_score']):>12}"
            f"{_fmt(tol['psnr_db'], '.0f'):>9}{_fmt(tol['agreement'], '.2f'):>7}"
        )
        for row in report.shapes:
            lines.append(
                f"{row['shape']:<16}{_fmt(row.get('max_abs')):>10}{_fmt(row.get('mean_score_diff')):>12}"
                f"{_fmt(row.get('psnr_db'), '.1f'):>9}{_fmt(row.get('agreement'), '.2f'):>7}  {row['status']}"
                + (f" ({row['reason']})" if row.get("reason") else "")
            )
    if report.real:
        r = report.real
        lines.append(
            f"real images (n={r['n']}): SROCC {_fmt(r.get('srocc'), '.4f')} (>= {_fmt(tol['srocc'], '.3f')}), "
            f"PLCC {_fmt(r.get('plcc'), '.4f')}, max abs {_fmt(r.get('max_abs'))}, "
            f"mean-score diff {_fmt(r.get('mean_score_diff'))}, agreement {_fmt(r.get('agreement'), '.3f')}  "
            f"{r['status']}"
        )
    for note in report.notes:
        lines.append(f"note: {note}")
    if report.mismatches:
        lines.append(f"FAILED: {len(report.mismatches)} mismatch(es)")
        lines.extend(f"  - {m}" for m in report.mismatches)
    else:
        lines.append("PASSED")
    return "\n".join(lines)
