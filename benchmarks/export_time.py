"""Seconds of an fp32 export of one checkpoint to sets of formats, each export in a fresh process.

    .venv/bin/python benchmarks/export_time.py --out /tmp/export_time                  # three formats vs all four
    .venv/bin/python benchmarks/export_time.py --sets all --baseline-python OTHER/.venv/bin/python   # before/after

The checkpoint is the default AestheticNet* (``create_model("aestheticnet_star")``, 20 cells, random weights: the
export's time does not depend on them) unless ``--checkpoint`` names one. Each of ``--rounds`` rounds (after
``--warmup-rounds`` dropped ones) runs every case (a set of formats x a package) once, in an order rotated by the
round so that no case always runs first or last on a machine whose load drifts (``aestheticnet.bench``'s
interleaved rounds); ``export_checkpoint`` runs with its default process layout (two processes on two CPUs).
``--baseline-python PYTHON`` adds the same sets exported by the ``aestheticnet`` installed for another interpreter
(another checkout's environment, e.g. its ``.venv/bin/python`` after ``pip install -e``: the before of a
before/after). That child runs this file too, so its side uses only ``export_checkpoint``, ``Format`` and
``Precision``, which every version of the package has.

Per run: wall seconds, CPU seconds of every export process (from the export report) and their sum, the
per-format seconds, and the load average before and after. Per case: medians over rounds with their 10th and 90th
percentiles; ratios are medians against the first case. On a machine that other jobs load, the CPU sums are the
steadier number; the wall time is what a user waits. Writes ``export_time.json`` and ``export_time.md`` in
``--out`` and prints the Markdown.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

SETS = {"three": "onnx,tflite,coreml", "all": "onnx,tflite,coreml,executorch"}


def export_once(checkpoint: Path, formats: str, out: Path) -> dict:
    """One export in this process (the child side of :func:`run_case`)."""
    import torch

    from aestheticnet.artifacts import Format, Precision
    from aestheticnet.export import export_checkpoint

    torch.set_num_threads(1)
    load_before = os.getloadavg()[0]
    t0 = time.perf_counter()
    report = export_checkpoint(checkpoint, [Format(f) for f in formats.split(",")], [Precision.FP32], out, log=None)
    wall = time.perf_counter() - t0
    seconds = {f"{a.format.value}/{a.precision.value}": a.seconds for a in report.artifacts}
    return {
        "wall_seconds": round(wall, 1),
        "cpu_seconds": report.cpu_seconds,
        "cpu_total": round(sum(v for k, v in report.cpu_seconds.items() if not k.startswith("main_until")), 1),
        "format_seconds": report.format_seconds,
        "artifact_seconds": seconds,
        "failures": report.failures,
        "load_before": round(load_before, 2),
        "load_after": round(os.getloadavg()[0], 2),
    }


def run_case(case: tuple[str, str, str], checkpoint: Path, out: Path) -> dict:
    """One export of ``case`` (name, formats, interpreter) in a fresh process of that interpreter."""
    from aestheticnet.bench import run_fresh

    name, formats, python = case
    target = out / name.replace("@", "_")
    return run_fresh([python, __file__, "--child", formats, "--checkpoint", str(checkpoint), "--out", str(target)])


def summarise(runs: dict[str, list[dict]]) -> dict[str, dict]:
    from aestheticnet.bench import summarize_rounds

    names = list(runs)
    keys = ("wall_seconds", "cpu_total")
    spreads = {n: {k: summarize_rounds([r[k] for r in runs[n]]) for k in keys} for n in names}
    medians = {n: {k: spreads[n][k]["median"] for k in keys} for n in names}
    first = medians[names[0]]
    for n in names:
        medians[n]["wall_ratio_to_first"] = round(medians[n]["wall_seconds"] / first["wall_seconds"], 3)
        medians[n]["cpu_ratio_to_first"] = round(medians[n]["cpu_total"] / first["cpu_total"], 3)
        medians[n]["spread"] = spreads[n]
    return medians


def default_checkpoint(out: Path) -> Path:
    import torch

    from aestheticnet.models import create_model, save

    torch.manual_seed(0)
    return save(create_model("aestheticnet_star").eval(), out / "star.safetensors")


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=Path("export_time"))
    ap.add_argument("--checkpoint", type=Path, default=None)
    ap.add_argument("--sets", default="three,all", help=f"comma-separated names of {sorted(SETS)}")
    ap.add_argument("--baseline-python", default=None, help="the Python of an environment whose package is timed too")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--warmup-rounds", type=int, default=0, help="rounds run first and dropped")
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    unknown = [s for s in args.sets.split(",") if s not in SETS]
    if unknown:
        ap.error(f"--sets: unknown {unknown}; valid: {', '.join(SETS)}")
    return args


def main() -> None:
    args = parse_args()
    if args.child is not None:
        print(json.dumps(export_once(args.checkpoint, args.child, args.out)))
        return
    from aestheticnet.bench import interleaved_rounds, save_result

    args.out.mkdir(parents=True, exist_ok=True)
    checkpoint = args.checkpoint or default_checkpoint(args.out)
    pythons = {"this": sys.executable} | ({"baseline": args.baseline_python} if args.baseline_python else {})
    cases = [(f"{s}@{p}", SETS[s], python) for p, python in pythons.items() for s in args.sets.split(",")]

    def show(label: str, case: tuple, result: dict) -> None:
        print(
            f"{label} {case[0]}: wall {result['wall_seconds']}s, CPU {result['cpu_total']}s, "
            f"load {result['load_before']}->{result['load_after']}",
            flush=True,
        )

    measured = interleaved_rounds(
        cases,
        lambda case: run_case(case, checkpoint, args.out),
        args.rounds,
        warmup_rounds=args.warmup_rounds,
        progress=show,
    )
    runs = {case[0]: results for case, results in measured.items()}
    result = {
        "checkpoint": str(checkpoint),
        "cases": {name: formats for name, formats, _ in cases},
        "pythons": pythons,
        "rounds": args.rounds,
        "warmup_rounds": args.warmup_rounds,
        "runs": runs,
        "medians": summarise(runs),
    }
    print(save_result(result, args.out, "export_time", markdown))


def markdown(result: dict) -> str:
    lines = [
        (
            f"fp32 exports of `{Path(result['checkpoint']).name}`, each in a fresh process, {result['rounds']} "
            f"interleaved rounds (after {result['warmup_rounds']} dropped); medians, with the 10th-90th percentiles."
        ),
        "",
        "| case | formats | wall s | CPU s (all export processes) | wall / first | CPU / first |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for name, m in result["medians"].items():
        wall, cpu = m["spread"]["wall_seconds"], m["spread"]["cpu_total"]
        lines.append(
            f"| {name} | {result['cases'][name]} | {m['wall_seconds']:.1f} ({wall['p10']:.1f}-{wall['p90']:.1f}) | "
            f"{m['cpu_total']:.1f} ({cpu['p10']:.1f}-{cpu['p90']:.1f}) | {m['wall_ratio_to_first']:.2f} | "
            f"{m['cpu_ratio_to_first']:.2f} |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
