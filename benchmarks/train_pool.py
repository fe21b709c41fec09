"""Train on the photo pool and measure what generalises: last-epoch metrics on many validation photos, over seeds.

    .venv/bin/python benchmarks/train_pool.py --data runs/pool/data --preset default --seeds 0 --epochs 6 \\
        --int8 --out runs/train_pool

``--data`` is the photo pool (``benchmarks/photo_pool.py``: Debian's wallpapers and the 13 built-in photos, split
by photo with ``--val-fraction`` 0.4, 22 validation photos). For every seed of ``--seeds`` one training of the
preset (``demo``: the demo's 5-cell C=16 AestheticNet*; ``default``: the default 20-cell C=36 AestheticNet*), both
with MSCN input, 192x192 training crops at native resolution, SGD (``--lr``, 0.1) cosine, SW-EMD plus the
within-photo ranking loss (``rank_weight``) on batches of ``--photos-per-batch`` photos (4, as the pipeline), drawn
with rare scores up to ``--balance-scores`` times as often (8, as the pipeline).
Nothing is selected on validation: the figures are the last epoch's. Per seed: SROCC, PLCC, accuracy and EMD on
the validation split, and ladder rho on the validation photos (``aestheticnet.pipeline.ladders.ladder_check``);
with ``--int8`` also the ONNX and TFLite int8 files' SROCC against
the fp32 model on validation images (``verify_artifact``). Then mean and std over seeds.

Each seed trains in ``OUT/seed<S>`` (``aestheticnet.pipeline.train_and_score``); an interrupted run resumes there,
and a seed whose results are in ``OUT/seed<S>/result.json`` is not run again; its int8 files are exported and
verified again when the int8 recipe (:class:`aestheticnet.export.Int8Recipe`) or ``--int8-samples`` differs from
the ones in ``OUT/seed<S>/int8_parity.json``. Writes ``OUT/train_pool.json`` and
``OUT/train_pool.md``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

import numpy as np

from aestheticnet.artifacts import Format, Precision
from aestheticnet.bench import save_result
from aestheticnet.export import ExportOptions, Int8Recipe, VerifyOptions, export_checkpoint, verify_artifact
from aestheticnet.io import atomic_write_json
from aestheticnet.pipeline import PipelineConfig, train_and_score
from aestheticnet.train import TrainConfig

PRESETS = {
    "demo": {"layers": 5, "init_channels": 16},
    "default": {"layers": 20, "init_channels": 36},
}
METRICS = ("srocc", "plcc", "accuracy", "emd_r2")
# AestheticNet*'s ranking loss, photo batches and score balancing default to the pipeline's, so the two train alike.
PIPELINE_STAR = PipelineConfig().train.per_variant["aestheticnet_star"]


def config(args, seed: int) -> TrainConfig:
    return TrainConfig(
        data=str(args.data),
        variant="aestheticnet_star",
        genotype="PDARTS",
        input_norm="mscn",
        image_size=192,
        max_side=256,
        train_crop=192,
        epochs=args.epochs,
        batch_size=32,
        lr=args.lr,
        rank_weight=args.rank_weight,
        photos_per_batch=args.photos_per_batch,
        balance_scores=args.balance_scores,
        group_by="challenge",
        val_fraction=args.val_fraction,
        seed=seed,
        num_workers=0,
        threads=args.threads,
        max_val_items=args.monitor_val_items,
        **PRESETS[args.preset],
    )


def int8_parity(checkpoint: Path, data: Path, out: Path, samples: int, recipe: Int8Recipe) -> dict[str, float]:
    formats, options = [Format.ONNX, Format.TFLITE], ExportOptions(data=data, recipe=recipe)
    report = export_checkpoint(checkpoint, formats, [Precision.INT8], out, options, log=None)
    parity, cache = {}, {}
    for artifact in report.artifacts:
        verified = verify_artifact(
            artifact.path, checkpoint, VerifyOptions(data=data, samples=samples), cache
        ).to_dict()
        parity[Path(artifact.path).name] = (verified.get("real") or {}).get("srocc")
    return parity


def run_seed(args, seed: int) -> dict:
    out = args.out / f"seed{seed}"
    result = {"seed": seed, **train_and_score(config(args, seed), out, progress=not args.quiet)}
    if args.int8:
        parity, recipe = out / "int8_parity.json", Int8Recipe()
        wanted = {"recipe": dataclasses.asdict(recipe), "samples": args.int8_samples}
        saved = json.loads(parity.read_text()) if parity.exists() else {}
        if {k: saved.get(k) for k in wanted} != wanted:
            found = int8_parity(out / "last.safetensors", args.data, out / "export", args.int8_samples, recipe)
            saved = {**wanted, "srocc": found}
            atomic_write_json(parity, saved)
        result["int8_srocc_vs_fp32"], result["int8_recipe"] = saved["srocc"], wanted["recipe"]
    return result


def summary(results: list[dict]) -> dict:
    def spread(values: list[float]) -> dict[str, float]:
        return {"mean": float(np.mean(values)), "std": float(np.std(values)), "values": values}

    out = {k: spread([r["metrics"][k] for r in results]) for k in METRICS}
    out["ladder_mean"] = spread([r["ladders"]["mean"] for r in results])
    for name in results[0]["ladders"]["per_ladder"]:
        out[f"ladder_{name}"] = spread([r["ladders"]["per_ladder"][name] for r in results])
    return out


def markdown(result: dict) -> str:
    """The tables of ``train_pool.json`` (``result``): one row per seed, the mean and spread, int8 parity."""
    results, agg, first = result["seeds"], result["summary"], result["seeds"][0]
    title = (
        f"{result['preset']} AestheticNet* on the photo pool: {first['items']} validation images; ladders on the "
        f"{first['ladders']['photos']} pristine crops of the validation photos; last epoch "
        f"({first['config']['epochs']}) of each seed."
    )
    lines = [
        title,
        "",
        "| seed | SROCC | PLCC | accuracy | EMD r=2 | blur | jpeg | noise | resample | ladder mean | train s |",
        "|---|" + "---:|" * 10,
    ]
    for r in results:
        per = r["ladders"]["per_ladder"]
        cells = [f"{r['metrics'][k]:.3f}" for k in METRICS] + [f"{per[n]:.2f}" for n in per]
        lines.append(
            f"| {r['seed']} | " + " | ".join(cells) + f" | {r['ladders']['mean']:.2f} | {r['train_seconds']} |"
        )
    cells = [f"{agg[k]['mean']:.3f} ± {agg[k]['std']:.3f}" for k in METRICS]
    cells += [f"{agg['ladder_' + n]['mean']:.2f}" for n in first["ladders"]["per_ladder"]]
    lines.append(
        "| mean ± std | " + " | ".join(cells) + f" | {agg['ladder_mean']['mean']:.2f} ± "
        f"{agg['ladder_mean']['std']:.2f} | |"
    )
    if "int8_srocc_vs_fp32" in first:
        lines += ["", "| seed | " + " | ".join(first["int8_srocc_vs_fp32"]) + " |", "|---|" + "---:|" * 2]
        lines += [
            f"| {r['seed']} | " + " | ".join(f"{v:.4f}" for v in r["int8_srocc_vs_fp32"].values()) + " |"
            for r in results
            if "int8_srocc_vs_fp32" in r
        ]
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, required=True, help="the photo pool (benchmarks/photo_pool.py)")
    ap.add_argument("--preset", choices=sorted(PRESETS), default="default")
    ap.add_argument("--seeds", default="0", help="comma-separated training seeds")
    ap.add_argument("--epochs", type=int, default=6)
    ap.add_argument("--lr", type=float, default=0.1)
    ap.add_argument("--rank-weight", type=float, default=PIPELINE_STAR["rank_weight"])
    ap.add_argument(
        "--photos-per-batch",
        type=int,
        default=PIPELINE_STAR["photos_per_batch"],
        help="batches of this many photos' images, as the pipeline trains AestheticNet* (0: random batches)",
    )
    ap.add_argument(
        "--balance-scores",
        type=float,
        default=PIPELINE_STAR["balance_scores"],
        help="draw rare scores (the pristine references) up to this many times as often, as the pipeline (0: off)",
    )
    ap.add_argument("--val-fraction", type=float, default=0.4)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument(
        "--monitor-val-items",
        type=int,
        default=None,
        help="validate on only this many images after each epoch (progress only; the reported metrics use them all)",
    )
    ap.add_argument("--int8", action="store_true", help="also export int8 ONNX and TFLite and verify them")
    ap.add_argument("--int8-samples", type=int, default=200)
    ap.add_argument("--quiet", action="store_true")
    ap.add_argument("--out", type=Path, default=Path("runs/train_pool"))
    args = ap.parse_args()
    results = [run_seed(args, int(s)) for s in args.seeds.split(",")]
    agg = summary(results)
    text = save_result({"preset": args.preset, "seeds": results, "summary": agg}, args.out, "train_pool", markdown)
    print(json.dumps({k: {"mean": v["mean"], "std": v["std"]} for k, v in agg.items()}, indent=1))
    print(text)


if __name__ == "__main__":
    main()
