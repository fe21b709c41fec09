"""The pipeline's report folder: report.md and report.html from the step results, with links to every file."""

from __future__ import annotations

import html
import os
from pathlib import Path
from typing import Any

from aestheticnet.artifacts import SPECS, Precision, UnknownFormatError, format_of_path, precision_of_path
from aestheticnet.data.ladders import LADDERS
from aestheticnet.io import atomic_write_text

__all__ = ["write_report"]

# One figure: its path relative to the report folder and its width in percent of the page.
Figure = tuple[str, int]
# One section of the report: (title, markdown lines, figures).
Section = tuple[str, list[str], list[Figure]]


def _rel(path: str | Path, base: Path) -> str:
    return os.path.relpath(Path(path), base)


def _fmt(v: Any, digits: int = 4) -> str:
    if isinstance(v, float):
        return f"{v:.{digits}g}" if abs(v) < 1e-3 and v != 0 else f"{v:.{digits}f}"
    return "" if v is None else str(v)


def _table(headers: list[str], rows: list[list[Any]]) -> list[str]:
    out = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    out += ["| " + " | ".join(_fmt(c) for c in row) + " |" for row in rows]
    return out


def _artifact_order(name: str) -> tuple:
    """Sort key of an artifact file: by format, then precision, in the order the formats and precisions are
    declared; files of no known format last."""
    try:
        fmt, precision = format_of_path(name), precision_of_path(name)
    except UnknownFormatError:
        return len(SPECS), 0, name
    ranks = list(Precision)
    return list(SPECS).index(fmt), ranks.index(precision) if precision else len(ranks), name


def _sections(cfg, summary: dict[str, Any], report_dir: Path) -> list[Section]:
    """The report's sections in page order; export, parity and latency only when the run had that step."""
    steps = summary["steps"]
    sections = [
        _steps_section(summary),
        _data_section(steps["data"]["result"]),
        _search_section(steps["search"]["result"], Path(summary["out"]), report_dir),
        _evaluation_section(steps, report_dir),
    ]
    if "export" in steps:
        sections.append(_export_section(steps["export"]["result"], report_dir))
    if "verify" in steps:
        sections.append(_parity_section(steps["verify"]["result"]))
    if "bench" in steps:
        sections.append(_latency_section(steps["bench"]["result"], report_dir))
    if "tradeoff" in steps:
        sections.append(_tradeoff_section(steps["tradeoff"]["result"], report_dir))
    return sections


def _steps_section(summary: dict[str, Any]) -> Section:
    rows = [
        [name, "skipped (up to date)" if s["skipped"] else "ran", f"{s['seconds']:.1f}"]
        for name, s in summary["steps"].items()
    ]
    lines = _table(["step", "status", "seconds"], rows)
    return "Steps", lines + ["", f"Total wall time of this run: {summary['wall_seconds']:.0f} s."], []


def _data_section(data: dict[str, Any]) -> Section:
    lines = [f"Dataset: `{data['path']}`."]
    if data.get("synthetic"):
        lines.append(
            f"The synthetic default: {data.get('images')} images; **the labels are synthetic** (simulated "
            "raters scoring distortions of scikit-image's free photos), not human aesthetics ratings."
        )
    return "Data", lines, []


def _search_section(search: dict[str, Any], out_dir: Path, report_dir: Path) -> Section:
    lines: list[str] = []
    figures: list[Figure] = []
    g = search.get("genotype")
    if g:
        lines.append("Searched by P-DARTS." if search.get("searched") else "Search disabled; genotype given.")
        lines += ["", *_genotype_table(g)]
    png = out_dir / "search" / "cells.png"
    if png.exists():
        figures.append((_rel(png, report_dir), 100))
    return "Architecture search", lines, figures


def _genotype_table(g: dict[str, Any]) -> list[str]:
    """One row per edge of each cell: the node it feeds, its input and its operation."""
    rows = []
    for cell, edges, concat in (
        ("normal", g["normal"], g["normal_concat"]),
        ("reduction", g["reduce"], g["reduce_concat"]),
    ):
        for i, (op, inp) in enumerate(edges):
            node = i // 2
            source = {0: "c_{k-2} (cell before the previous)", 1: "c_{k-1} (previous cell)"}.get(inp, f"node {inp - 2}")
            rows.append([cell, f"node {node}", source, op])
        rows.append([cell, "output", "concat of " + ", ".join(f"node {n - 2}" for n in concat), ""])
    return _table(["cell", "node", "input", "operation"], rows)


def _evaluation_section(steps: dict[str, Any], report_dir: Path) -> Section:
    rows, ladder_rows, images = [], [], []
    for name, s in sorted(steps.items()):
        if not name.startswith("evaluate_"):
            continue
        model, m = name[len("evaluate_") :], s["result"]["metrics"]
        ladders = s["result"].get("ladders")
        rows.append(
            [
                model,
                s["result"]["items"],
                m["accuracy"],
                m["plcc"],
                m["srocc"],
                ladders["mean"] if ladders else "-",
                m["emd_r1"],
                m["emd_r2"],
                m["std_plcc"],
                m["std_srocc"],
            ]
        )
        if ladders:
            per = ladders["per_ladder"]
            ladder_rows.append([model, ladders["photos"], *(per.get(k) for k in LADDERS), ladders["mean"]])
        files = s["result"].get("files", {})
        images += [(_rel(files[k], report_dir), 48) for k in ("distributions_png", "scatter_png") if k in files]
    headers = [
        "model",
        "images",
        "accuracy",
        "PLCC",
        "SROCC",
        "ladder rho",
        "EMD r=1",
        "EMD r=2",
        "std PLCC",
        "std SROCC",
    ]
    lines = _table(headers, rows)
    if ladder_rows:
        lines += [
            "",
            "Ladder rho: does the model rank quality on the validation photos, beyond fitting the raters? "
            "Each validation photo's pristine crop, then four strengths of one distortion; Spearman's rho "
            "between strength and predicted score, sign flipped (1: more distortion always scored lower; "
            "0: no order; -1: backwards), averaged over photos.",
            "",
        ]
        lines += _table(["model", "pristine crops", *LADDERS, "mean"], ladder_rows)
    else:
        lines += ["", "Ladder rho needs pristine references (a synthetic dataset); this dataset has none."]
    return "Evaluation (validation split, by source photo)", lines, images


def _export_section(export: dict[str, Any], report_dir: Path) -> Section:
    rows = [
        [a["format"], a["precision"], _rel(a["path"], report_dir), a.get("size_bytes"), a.get("seconds")]
        for a in sorted(export.get("artifacts", []), key=lambda a: _artifact_order(a["path"]))
    ]
    return "Exported artifacts", _table(["format", "precision", "file", "bytes", "export s"], rows), []


def _parity_section(verify: dict[str, Any]) -> Section:
    reports = sorted(verify.get("reports", []), key=lambda v: _artifact_order(v["artifact"]))
    rows = [
        [
            v["artifact"],
            v["status"],
            v.get("max_abs"),
            v.get("mean_score_diff"),
            v.get("srocc"),
            v.get("evaluated_by") or "-",
            v.get("note", ""),
        ]
        for v in reports
    ]
    lines = _table(
        ["artifact", "status", "max abs", "mean-score diff", "SROCC vs PyTorch", "evaluated by", "note"], rows
    )
    if any("not Core ML" in (v.get("evaluated_by") or "") for v in reports):
        lines += [
            "",
            "CoreML rows were computed by the MIL evaluator (the package's ML program with torch "
            "kernels on this machine), not by Core ML on a device.",
        ]
    return "Parity with PyTorch", lines, []


def _latency_section(bench: dict[str, Any], report_dir: Path) -> Section:
    rows = [
        [
            b["model"],
            b["backend"],
            b["threads"],
            b["shape"],
            b.get("p50_ms"),
            b.get("p90_ms"),
            b.get("throughput"),
            b.get("peak_rss_mb"),
        ]
        for b in sorted(bench.get("rows", []), key=lambda b: (_artifact_order(b["model"]), b["threads"], b["shape"]))
    ]
    images = [(_rel(p, report_dir), 48) for p in bench.get("plots", [])]
    headers = ["model", "backend", "threads", "shape", "p50 ms", "p90 ms", "images/s", "peak RSS MB"]
    return "Latency on this machine", _table(headers, rows), images


def _tradeoff_section(tradeoff: dict[str, Any], report_dir: Path) -> Section:
    rows = [
        [p["name"], "baseline" if p["baseline"] else "", p["latency_ms"], p["srocc"]]
        for p in sorted(tradeoff["points"], key=lambda p: p["latency_ms"])
    ]
    lines = _table(["model", "", "latency ms (median of rounds)", "validation SROCC"], rows)
    lines += [
        "",
        f"Timed {tradeoff['timed']}, {tradeoff['rounds']} interleaved rounds of fresh processes.",
        "",
        tradeoff["sentence"],
    ]
    return "Accuracy against latency", lines, [(_rel(tradeoff["plot"], report_dir), 60)]


def write_report(cfg, out_dir: Path, summary: dict[str, Any]) -> dict[str, str]:
    report_dir = Path(out_dir) / "report"
    report_dir.mkdir(parents=True, exist_ok=True)
    sections = _sections(cfg, summary, report_dir)
    anchors = [f"section-{i + 1}" for i in range(len(sections))]
    md = ["# aestheticnet pipeline report", "", "Contents:", ""]
    md += [f"{i + 1}. [{title}](#{a})" for i, ((title, _, _), a) in enumerate(zip(sections, anchors))] + [""]
    toc = "".join(f'<li><a href="#{a}">{html.escape(t)}</a></li>' for (t, _, _), a in zip(sections, anchors))
    body = ["<h1>aestheticnet pipeline report</h1>", f"<nav><h2>Contents</h2><ol>{toc}</ol></nav>"]
    for (title, lines, figures), anchor in zip(sections, anchors):
        md += [f'<a id="{anchor}"></a>', f"## {title}", "", *lines, ""]
        md += [f"![{Path(f).stem}]({f})" for f, _ in figures] + ([""] if figures else [])
        body.append(f'<h2 id="{anchor}">{html.escape(title)}</h2>')
        body.append(_md_lines_to_html(lines))
        body += [
            f'<img src="{html.escape(f)}" alt="{html.escape(Path(f).stem)}" style="max-width:{width}%">'
            for f, width in figures
        ]
    md_path, html_path = report_dir / "report.md", report_dir / "report.html"
    atomic_write_text(md_path, "\n".join(md) + "\n")
    page = (
        "<!doctype html><html><head><meta charset='utf-8'><title>aestheticnet report</title><style>"
        "body{font-family:sans-serif;max-width:1100px;margin:2em auto}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:3px 8px;font-size:90%}</style></head><body>"
        + "\n".join(body)
        + "</body></html>\n"
    )
    atomic_write_text(html_path, page)
    return {"markdown": str(md_path), "html": str(html_path)}


def _md_lines_to_html(lines: list[str]) -> str:
    """Tables and plain lines only, in their order: the report's own markdown, not a general converter."""
    out: list[str] = []
    table: list[str] = []
    for ln in [*lines, ""]:
        if ln.startswith("|"):
            table.append(ln)
            continue
        if table:
            out.append(_html_table(table))
            table = []
        if ln:
            out.append(f"<p>{html.escape(ln.replace('**', '').replace('`', ''))}</p>")
    return "\n".join(out)


def _html_table(rows: list[str]) -> str:
    cells = [[c.strip() for c in r.strip().strip("|").split("|")] for r in rows]
    head = "".join(f"<th>{html.escape(h)}</th>" for h in cells[0])
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>" for r in cells[2:])
    return f"<table><tr>{head}</tr>{body}</table>"
