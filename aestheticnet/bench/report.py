"""Benchmark reports: JSON, a Markdown table and PNG plots (latency per backend and thread count; size vs latency)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from aestheticnet.bench.runner import machine_info
from aestheticnet.io import atomic_path, atomic_write_text

__all__ = ["MD_COLUMNS", "markdown_report", "save_result", "write_json", "write_markdown", "write_plots"]

# (header, row key, format)
MD_COLUMNS = (
    ("model", "model", "s"),
    ("backend", "backend", "s"),
    ("prec", "precision", "s"),
    ("thr", "threads", "d"),
    ("shape", "shape", "s"),
    ("batch", "batch", "d"),
    ("load ms", "load_ms", ".1f"),
    ("first ms", "first_inference_ms", ".2f"),
    ("warm-up ms", "warmup_mean_ms", ".2f"),
    ("p50 ms", "p50_ms", ".2f"),
    ("p90 ms", "p90_ms", ".2f"),
    ("p99 ms", "p99_ms", ".2f"),
    ("mean ms", "mean_ms", ".2f"),
    ("std ms", "std_ms", ".2f"),
    ("min ms", "min_ms", ".2f"),
    ("max ms", "max_ms", ".2f"),
    ("runs", "runs", "d"),
    ("img/s", "throughput_ips", ".1f"),
    ("peak RSS Δ MB", "peak_rss_delta_bytes", "MB"),
    ("planned MB", "planned_memory_bytes", "MB"),
    ("file MB", "file_size_bytes", "MB"),
    ("params M", "params", "M"),
    ("GMACs", "macs", "G"),
    ("GMAC/s", "achieved_gmacs_per_s", ".2f"),
)


def write_json(report: dict[str, Any], path: str | Path) -> Path:
    path = Path(path)
    atomic_write_text(path, json.dumps(report, indent=2, default=str) + "\n")
    return path


def save_result(result: dict[str, Any], folder: str | Path, name: str, markdown: Callable[[dict], str]) -> str:
    """A benchmark's output: ``result`` as ``folder/name.json`` with the machine it ran on (the results pages
    rendered from it name that machine), ``markdown(result)`` as ``folder/name.md``; returns the Markdown."""
    if "machine" not in result:  # a script that recorded it at the start keeps that
        result["machine"] = machine_info()
    write_json(result, Path(folder) / f"{name}.json")
    text = markdown(result)
    atomic_write_text(Path(folder) / f"{name}.md", text)
    return text


def _cell(value: Any, fmt: str) -> str:
    if value is None:
        return "–"
    try:
        if fmt == "MB":
            return f"{value / 2**20:.2f}"
        if fmt == "M":
            return f"{value / 1e6:.3f}"
        if fmt == "G":
            return f"{value / 1e9:.3f}"
        if fmt == "s":
            return str(value).replace("|", "\\|")
        return format(value, fmt)
    except (TypeError, ValueError):
        return str(value)


def _machine_line(info: dict | None) -> str:
    if not info:
        return "unknown"
    libs = ", ".join(f"{k} {v}" for k, v in (info.get("libraries") or {}).items())
    cores = f"{info.get('logical_cores')} logical / {info.get('physical_cores')} physical cores"
    if info.get("usable_cores") not in (None, info.get("logical_cores")):
        cores += f", {info['usable_cores']} usable"
    if info.get("cpu_quota"):
        cores += f", cgroup quota {info['cpu_quota']} CPUs"
    emulated = (
        f"**EMULATED ({info['emulated']}): timings are the emulator's, not the CPU's**; "
        if info.get("emulated")
        else ""
    )
    return (
        f"{emulated}{info.get('cpu_model')} ({info.get('machine')}), {cores}; {info.get('os')}; Python "
        f"{info.get('python')}; {libs}; load average {info.get('load_average')}"
    )


def markdown_report(report: dict[str, Any]) -> str:
    s = report.get("settings", {})
    mode = (
        f"{s.get('min_seconds')} s minimum"
        if s.get("min_seconds")
        else f"{s.get('runs') or s.get('runs_default')} runs"
    )
    lines = [
        f"# Benchmark ({report.get('created')})",
        "",
        f"- device: `{report.get('device')}`: {_machine_line(report.get('device_info'))}",
        f"- harness host: {_machine_line(report.get('host'))}",
        f"- settings: threads {s.get('threads')}, shapes {s.get('shapes')}, batch {s.get('batch')}, "
        f"warm-up {s.get('warmup')}, timed {mode}; each measurement in a fresh process",
        "",
        "| " + " | ".join(h for h, _, _ in MD_COLUMNS) + " |",
        "|" + "|".join("---" if f == "s" else "---:" for _, _, f in MD_COLUMNS) + "|",
    ]
    for row in report.get("results", []):
        if not row.get("ok"):
            cells = [_cell(row.get(k), f) for _, k, f in MD_COLUMNS[:6]]
            lines.append(
                "| " + " | ".join(cells) + f" | FAILED: {_cell(row.get('error'), 's')} |" + " |" * (len(MD_COLUMNS) - 7)
            )
            continue
        lines.append("| " + " | ".join(_cell(row.get(k), f) for _, k, f in MD_COLUMNS) + " |")
    notes = sorted({f"{r['model']}: {r['facts_note']}" for r in report.get("results", []) if r.get("facts_note")})
    sources = sorted({f"{r['model']}: {r['macs_source']}" for r in report.get("results", []) if r.get("macs_source")})
    if sources or notes:
        lines += ["", "Params and MACs:"] + [f"- {n}" for n in sources + notes]
    if any(r.get("planned_memory_bytes") for r in report.get("results", [])):
        lines += [
            "",
            "Planned MB: the memory an ExecuTorch program's export planned for its upper bounds (the manifest's "
            "input.dynamic), allocated when the method loads; XNNPACK's own workspace comes on top at run time.",
        ]
    if report.get("errors"):
        lines += ["", "Errors:"] + [f"- {e}" for e in report["errors"]]
    return "\n".join(lines) + "\n"


def write_markdown(report: dict[str, Any], path: str | Path) -> Path:
    path = Path(path)
    atomic_write_text(path, markdown_report(report))
    return path


def _label(row: dict) -> str:
    return f"{Path(row['model']).stem} [{row.get('backend')}, {row.get('precision')}]"


def write_plots(report: dict[str, Any], folder: str | Path) -> list[Path]:
    """``latency_by_backend_threads.png`` and ``size_vs_latency.png`` (one panel per shape) in ``folder``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rows = [r for r in report.get("results", []) if r.get("ok")]
    if not rows:
        return []
    device = report.get("device")
    return [
        _save(_latency_figure(plt, rows, device), folder / "latency_by_backend_threads.png", plt),
        _save(_size_figure(plt, rows, device), folder / "size_vs_latency.png", plt),
    ]


def _distinct(values) -> list:
    """The values in first-seen order, each once."""
    return list(dict.fromkeys(values))


def _latency_figure(plt, rows: list[dict], device: Any):
    """p50 latency (horizontal bars, whisker to p90): one group per model/backend, one bar per thread count, one
    panel per shape."""
    shapes = _distinct(r["shape"] for r in rows)
    labels = _distinct(_label(r) for r in rows)
    threads = sorted({r["threads"] for r in rows})
    height = max(3.0, 0.28 * len(labels) * len(threads) + 1.2)
    fig, axes = plt.subplots(1, len(shapes), figsize=(5.5 * len(shapes) + 2.5, height), squeeze=False, sharey=True)
    bar = 0.8 / len(threads)
    for ax, shape in zip(axes[0], shapes):
        panel = [r for r in rows if r["shape"] == shape]
        for j, t in enumerate(threads):
            offset = (j - (len(threads) - 1) / 2) * bar
            ys, p50, err = _latency_bars([r for r in panel if r["threads"] == t], labels, offset)
            ax.barh(ys, p50, height=bar, xerr=[[0] * len(err), err], capsize=2, label=f"{t} thread{'s' * (t > 1)}")
        ax.set_yticks(range(len(labels)))
        ax.set_yticklabels(labels, fontsize=7)
        ax.invert_yaxis()
        ax.set_xlabel("p50 latency, ms (whisker: p90)")
        ax.set_title(f"{shape}, batch {rows[0]['batch']}, {device}", fontsize=9)
        ax.grid(axis="x", alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def _latency_bars(rows: list[dict], labels: list[str], offset: float) -> tuple[list, list, list]:
    """Bar positions, p50 latencies and p90 whisker lengths of one thread count in one panel, in ``labels`` order;
    ``rows`` are that thread count's rows of the panel's shape, and a label without a row gets no bar."""
    ys, p50, err = [], [], []
    for i, label in enumerate(labels):
        match = [r for r in rows if _label(r) == label]
        if match:
            r = match[0]
            ys.append(i + offset)
            p50.append(r["p50_ms"])
            err.append(max(0.0, r["p90_ms"] - r["p50_ms"]))
    return ys, p50, err


def _size_figure(plt, rows: list[dict], device: Any):
    """File size vs p50 latency: one panel per shape, colour per backend, marker per precision, filled for the
    smallest thread count; names written next to the points when there are few."""
    shapes = _distinct(r["shape"] for r in rows)
    threads = sorted({r["threads"] for r in rows})
    fig, axes = plt.subplots(1, len(shapes), figsize=(6.0 * len(shapes) + 1.5, 4.8), squeeze=False)
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    markers = "osD^v<>p*h"
    colour_of = {b: colours[i % len(colours)] for i, b in enumerate(_distinct(r.get("backend") for r in rows))}
    marker_of = {p: markers[i % len(markers)] for i, p in enumerate(_distinct(r.get("precision") for r in rows))}
    for ax, shape in zip(axes[0], shapes):
        points = [r for r in rows if r["shape"] == shape and r.get("file_size_bytes")]
        for r in points:
            c, m = colour_of[r.get("backend")], marker_of[r.get("precision")]
            filled = r["threads"] == threads[0]
            ax.scatter(
                r["file_size_bytes"] / 2**20, r["p50_ms"], marker=m, s=36, color=c if filled else "none", edgecolors=c
            )
            if len(points) <= 12:
                _annotate_point(ax, r)
        ax.set_xlabel("model file size, MiB")
        ax.set_ylabel("p50 latency, ms")
        if points and max(r["p50_ms"] for r in points) > 20 * min(r["p50_ms"] for r in points):
            ax.set_yscale("log")
        ax.set_title(f"size vs latency, {shape} ({device})", fontsize=9)
        ax.grid(alpha=0.3)
    axes[0][-1].legend(handles=_size_legend(plt, colour_of, marker_of, threads), fontsize=7, loc="best")
    fig.tight_layout()
    return fig


def _annotate_point(ax, row: dict) -> None:
    """The model's name and thread count next to its point of the size plot."""
    ax.annotate(
        f"{Path(row['model']).stem}, {row['threads']} thr",
        (row["file_size_bytes"] / 2**20, row["p50_ms"]),
        fontsize=6,
        alpha=0.7,
        xytext=(3, 3),
        textcoords="offset points",
    )


def _size_legend(plt, colour_of: dict, marker_of: dict, threads: list[int]) -> list:
    """Legend entries of the size plot: the backends' colours, the precisions' markers, then filled and hollow."""
    handles = [plt.Line2D([], [], color=c, marker="o", linestyle="", label=b) for b, c in colour_of.items()]
    handles += [plt.Line2D([], [], color="grey", marker=m, linestyle="", label=p) for p, m in marker_of.items()]
    handles += [plt.Line2D([], [], color="grey", marker="o", linestyle="", label=f"{threads[0]} thread(s): filled")]
    if len(threads) > 1:
        handles.append(
            plt.Line2D(
                [],
                [],
                color="grey",
                marker="o",
                markerfacecolor="none",
                linestyle="",
                label=f"{', '.join(map(str, threads[1:]))} threads: hollow",
            )
        )
    return handles


def _save(fig, path: Path, plt) -> Path:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)
    return path
