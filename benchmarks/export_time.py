"""Seconds of an fp32 export of one checkpoint to sets of formats, each export in a fresh process.

    .venv/bin/python benchmarks/export_time.py --out /tmp/export_time                  # three formats vs all four
    .venv/bin/python benchmarks/export_time.py --sets all --baseline OTHER_CHECKOUT    # this package vs another

The checkpoint is the default AestheticNet* (``create_model("aestheticnet_star")``, 20 cells, random weights: the
export's time does not depend on them) unless ``--checkpoint`` names one. Each of ``--rounds`` rounds runs every
case (a set of formats x a package) once, in an order rotated by the round so that no case always runs first or
last on a machine whose load drifts; ``export_checkpoint`` runs with its default process layout (two processes on
two CPUs). ``--baseline DIR`` adds the same sets exported by the ``aestheticnet`` package under ``DIR`` (another
checkout: the before of a before/after), imported through ``PYTHONPATH``.

Per run: wall seconds, CPU seconds of every export process (from the export report) and their sum, the
per-format seconds, and the load average before and after. Per case: medians over rounds; ratios are medians
against the first case. On a machine that other jobs load, the CPU sums are the steadier number; the wall time
is what a user waits. Writes ``export_time.json`` in ``--out``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
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


def run_case(checkpoint: Path, formats: str, package: str | None, out: Path) -> dict:
    env = dict(os.environ)
    if package is not None:
        env["PYTHONPATH"] = package
    cmd = [sys.executable, __file__, "--child", formats, "--checkpoint", str(checkpoint), "--out", str(out)]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=3600)
    if proc.returncode != 0:
        raise RuntimeError(f"export of {formats} failed:\n{proc.stderr[-4000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def summarise(runs: dict[str, list[dict]]) -> dict[str, dict]:
    names = list(runs)
    medians = {n: {k: statistics.median(r[k] for r in runs[n]) for k in ("wall_seconds", "cpu_total")} for n in names}
    first = medians[names[0]]
    for n in names:
        medians[n]["wall_ratio_to_first"] = round(medians[n]["wall_seconds"] / first["wall_seconds"], 3)
        medians[n]["cpu_ratio_to_first"] = round(medians[n]["cpu_total"] / first["cpu_total"], 3)
    return medians


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=Path("export_time"))
    ap.add_argument("--checkpoint", type=Path, default=None)
    ap.add_argument("--sets", default="three,all", help=f"comma-separated names of {sorted(SETS)}")
    ap.add_argument("--baseline", default=None, help="another checkout whose package is timed too")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child is not None:
        print(json.dumps(export_once(args.checkpoint, args.child, args.out)))
        return
    args.out.mkdir(parents=True, exist_ok=True)
    checkpoint = args.checkpoint
    if checkpoint is None:
        import torch

        from aestheticnet.models import create_model, save

        torch.manual_seed(0)
        checkpoint = save(create_model("aestheticnet_star").eval(), args.out / "star.safetensors")
    packages = {"this": None} | ({"baseline": str(Path(args.baseline).resolve())} if args.baseline else {})
    cases = [(f"{s}@{p}", SETS[s], path) for p, path in packages.items() for s in args.sets.split(",")]
    runs: dict[str, list[dict]] = {name: [] for name, _, _ in cases}
    for r in range(args.rounds):
        for name, formats, package in cases[r % len(cases) :] + cases[: r % len(cases)]:
            result = run_case(checkpoint, formats, package, args.out / name.replace("@", "_"))
            runs[name].append(result)
            print(
                f"round {r + 1} {name}: wall {result['wall_seconds']}s, CPU {result['cpu_total']}s, "
                f"load {result['load_before']}->{result['load_after']}",
                flush=True,
            )
    result = {
        "checkpoint": str(checkpoint),
        "cases": {n: f for n, f, _ in cases},
        "packages": packages,
        "runs": runs,
        "medians": summarise(runs),
    }
    (args.out / "export_time.json").write_text(json.dumps(result, indent=1))
    print(json.dumps(result["medians"], indent=1))


if __name__ == "__main__":
    main()
