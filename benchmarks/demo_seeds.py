"""The demo over seeds: validation metrics and ladder rho of the models `make demo` ships, mean and spread.

    .venv/bin/python benchmarks/demo_seeds.py --seeds 0,1,2 --pool runs/pool/data --out runs/demo_seeds

Runs ``aestheticnet pipeline --seed S --out OUT/seed<S>`` for every seed (a fresh process each, timed; a finished
pipeline is skipped by its own step cache and keeps the time it took, an interrupted one resumes), then reads each
run's ``pipeline.json``: validation SROCC, PLCC, accuracy and EMD of every trained variant (the last epoch, which
the pipeline ships) and its ladder rho on its validation photos. With ``--pool`` (``benchmarks/photo_pool.py``'s
dataset) it also scores the ladders of the pool's photos that are not built in, which no demo model has seen,
through ``benchmarks/ladders.py`` (``--brisque`` adds BRISQUE there). The seed also sets the split by photo, so the
spread includes the choice of the 3 validation photos.

Writes ``OUT/demo_seeds.json`` and ``OUT/demo_seeds.md`` and prints both.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from aestheticnet.bench import save_result
from aestheticnet.io import atomic_write_json

METRICS = ("srocc", "plcc", "accuracy", "emd_r2")


def run_pipeline(seed: int, out: Path) -> float:
    cli = Path(sys.executable).with_name("aestheticnet")
    t0 = time.perf_counter()
    subprocess.run([str(cli), "pipeline", "--seed", str(seed), "--out", str(out)], check=True)
    return time.perf_counter() - t0


def collect(seed: int, out: Path, seconds: float) -> dict:
    summary = json.loads((out / "pipeline.json").read_text())
    # A rerun whose every step was up to date (to add --brisque, say) took no time of its own: report the time of
    # the run that did the work, kept beside it.
    kept = out / "seconds.json"
    if all(step["skipped"] for step in summary["steps"].values()) and kept.is_file():
        seconds = json.loads(kept.read_text())["seconds"]
    else:
        atomic_write_json(kept, {"seconds": seconds})
    variants = {}
    for name, step in summary["steps"].items():
        if name.startswith("evaluate_"):
            result = step["result"]
            variants[name[len("evaluate_") :]] = {"metrics": result["metrics"], "ladders": result.get("ladders")}
    return {"seed": seed, "out": str(out), "seconds": round(seconds), "variants": variants}


def pool_ladders(runs: list[dict], args) -> dict:
    cmd = [sys.executable, str(Path(__file__).with_name("ladders.py")), "--data", str(args.pool), "--photos", "user"]
    for run in runs:
        for variant in run["variants"]:
            cmd += ["--model", f"{variant}_seed{run['seed']}={run['out']}/train/{variant}/last.safetensors"]
    if args.brisque:
        cmd.append("--brisque")
    subprocess.run([*cmd, "--out", str(args.out / "pool_ladders")], check=True)
    return json.loads((args.out / "pool_ladders" / "ladders.json").read_text())


def spread(values: list[float]) -> str:
    return f"{np.mean(values):.3f} ± {np.std(values):.3f}"


def markdown(result: dict) -> str:
    runs, pool = result["runs"], result["pool_ladders"]
    lines = [
        "| variant | seed | SROCC | PLCC | accuracy | EMD r=2 | ladder rho (val photos) | pipeline s |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for variant in runs[0]["variants"]:
        rows = [(r["seed"], r["variants"][variant], r["seconds"]) for r in runs]
        for seed, v, seconds in rows:
            cells = [f"{v['metrics'][k]:.3f}" for k in METRICS] + [f"{v['ladders']['mean']:.2f}"]
            lines.append(f"| {variant} | {seed} | " + " | ".join(cells) + f" | {seconds} |")
        cells = [spread([v["metrics"][k] for _, v, _ in rows]) for k in METRICS]
        cells.append(spread([v["ladders"]["mean"] for _, v, _ in rows]))
        lines.append(f"| {variant} | mean ± std | " + " | ".join(cells) + " | |")
    if pool:
        names = list(pool["ladders"])
        lines += [
            "",
            "Ladder rho on the pool's photos that no demo model saw:",
            "",
            "| model | " + " | ".join(names) + " | mean | pristine crops |",
            "|---|" + "---:|" * (len(names) + 2),
        ]
        for row in pool["rows"]:
            rep = row["report"]
            cells = " | ".join(f"{rep['per_ladder'][n]:.2f}" for n in names)
            lines.append(f"| {row['name']} | {cells} | **{rep['mean']:.2f}** | {rep['photos']} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--pool", type=Path, default=None, help="the photo pool's dataset, for unseen-photo ladders")
    ap.add_argument("--brisque", action="store_true")
    ap.add_argument("--out", type=Path, default=Path("runs/demo_seeds"))
    args = ap.parse_args()
    runs = []
    for seed in (int(s) for s in args.seeds.split(",")):
        out = args.out / f"seed{seed}"
        runs.append(collect(seed, out, run_pipeline(seed, out)))
    pool = pool_ladders(runs, args) if args.pool else None
    print(save_result({"runs": runs, "pool_ladders": pool}, args.out, "demo_seeds", markdown))


if __name__ == "__main__":
    main()
