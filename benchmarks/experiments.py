"""The paper's comparative experiments, each a table of mean and variance over seeds.

    loss      EMD vs self-weighted EMD (AestheticNet*)
    cbam      AestheticNet* with and without CBAM
    pooling   adaptive pooling with aspect-preserving input vs fixed square input (AestheticNet*)
    variant   AestheticNet vs AestheticNet*

Runs on AVA or TID2013 with --data, else on the synthetic default (labels are synthetic: the numbers show
that the pipeline works and how the variants compare on that data, not published AVA results). Metrics are
those of the LAST epoch on the validation split (no selection on validation), split by source photo on the
synthetic data.

    python benchmarks/experiments.py --experiment all --seeds 3 [--data DIR] [--epochs 6] [--out runs/experiments]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import time
from pathlib import Path

from aestheticnet.bench import save_result
from aestheticnet.data import ensure_synthetic
from aestheticnet.metrics import aggregate_runs
from aestheticnet.train import METRICS_FILE, STATE_FILE, TrainConfig, train

# Small and fast on 2 CPU cores; the command line changes epochs and size. As in benchmarks/train_default.py
# (whose docstring has the measurements): MSCN input (the only input that generalised to unseen photos), crops at
# evaluation scale rather than the resampling augmentation; at half the native resolution to fit 15 runs.
BASE = TrainConfig(
    variant="aestheticnet_star",
    genotype="PDARTS",
    layers=5,
    init_channels=12,
    image_size=96,
    max_side=128,
    train_crop=96,
    input_norm="mscn",
    epochs=6,
    batch_size=32,
    lr=0.05,
    group_by="challenge",
    val_fraction=0.2,
    num_workers=0,
    loss="sw_emd",
)

EXPERIMENTS: dict[str, dict[str, dict]] = {
    "loss": {"EMD": {"loss": "emd"}, "SW-EMD (lam=0.5)": {"loss": "sw_emd"}},
    "cbam": {"without CBAM": {"cbam": False}, "with CBAM": {"cbam": True}},
    "pooling": {"fixed square input": {"policy": "fixed"}, "aspect + adaptive pooling": {"policy": "aspect"}},
    "variant": {"AestheticNet": {"variant": "aestheticnet"}, "AestheticNet*": {"variant": "aestheticnet_star"}},
}
KEYS = ("accuracy", "plcc", "srocc", "emd_r1", "emd_r2")


def run_experiment(name: str, base: TrainConfig, seeds: int, out: Path) -> dict:
    rows = {}
    for label, change in EXPERIMENTS[name].items():
        runs = []
        for seed in range(seeds):
            cfg = base.replace(seed=seed, **change)
            # Runs are keyed by their configuration, so a baseline shared by several experiments (AestheticNet*
            # with SW-EMD, CBAM and aspect input is in all four) trains once per seed.
            digest = hashlib.sha256(json.dumps(cfg.to_dict(), sort_keys=True).encode()).hexdigest()[:12]
            run_dir = out / "runs" / f"{digest}-seed{seed}"
            # A finished run resumes as a no-op, an interrupted one continues: the script can be re-run.
            train(cfg, run_dir, resume=(run_dir / STATE_FILE).exists(), progress=False)
            last = json.loads((run_dir / METRICS_FILE).read_text().splitlines()[-1])
            runs.append({k: last["val"][k] for k in KEYS})
        rows[label] = {"runs": runs, "aggregate": aggregate_runs(runs)}
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--experiment", choices=[*EXPERIMENTS, "all"], default="all")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--data", default=None)
    ap.add_argument("--epochs", type=int, default=BASE.epochs)
    ap.add_argument("--image-size", type=int, default=BASE.image_size)
    ap.add_argument("--train-crop", type=int, default=BASE.train_crop, help="crop size at evaluation scale, 0 = off")
    ap.add_argument("--max-train-items", type=int, default=None)
    ap.add_argument("--out", default="runs/experiments")
    args = ap.parse_args()
    data = args.data or str(ensure_synthetic())
    base = BASE.replace(
        data=data,
        epochs=args.epochs,
        image_size=args.image_size,
        train_crop=args.train_crop,
        max_train_items=args.max_train_items,
    )
    names = list(EXPERIMENTS) if args.experiment == "all" else [args.experiment]
    out = Path(args.out)
    results = {"data": data, "base_config": base.to_dict(), "seeds": args.seeds, "experiments": {}}
    t0 = time.perf_counter()
    for name in names:
        results["experiments"][name] = run_experiment(name, base, args.seeds, out)
        print(f"\n{experiment_table(name, results['experiments'][name])}", flush=True)
        save_result(results, out, "experiments", markdown)
    results["wall_seconds"] = time.perf_counter() - t0
    save_result(results, out, "experiments", markdown)
    print(f"\nwall {results['wall_seconds']:.0f} s; JSON: {out / 'experiments.json'}")


def experiment_table(name: str, rows: dict) -> str:
    """One experiment's rows: mean ± standard deviation over seeds of each metric."""
    lines = [f"**{name}**", "", "| setting | SROCC | PLCC | accuracy | EMD r1 | EMD r2 |", "|---|" + "---:|" * 5]
    for label, row in rows.items():
        agg = row["aggregate"]
        cells = [f"{agg[k]['mean']:.3f} ± {agg[k]['var'] ** 0.5:.3f}" for k in ("srocc", "plcc", "accuracy")]
        cells += [f"{agg[k]['mean']:.4f} ± {agg[k]['var'] ** 0.5:.4f}" for k in ("emd_r1", "emd_r2")]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def markdown(result: dict) -> str:
    base = result["base_config"]
    data = "/".join(Path(result["data"]).parts[-2:])
    lines = [
        (
            f"AestheticNet* ({base['layers']} cells, C={base['init_channels']}, {base['image_size']} px, "
            f"{base['epochs']} epochs, {base['input_norm']} input) on `{data}`; each row changes "
            "one setting. Metrics of the last epoch on the validation split (split by source photo), mean "
            f"± standard deviation over {result['seeds']} seeds."
        ),
    ]
    for name, rows in result["experiments"].items():
        lines += ["", experiment_table(name, rows)]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
