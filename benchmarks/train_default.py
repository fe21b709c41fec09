"""Train a small AestheticNet* on the synthetic default dataset and print validation metrics.

The split is by source photo (the AVA.txt challenge column of the synthetic data), so validation photos
are never seen in training. Prints: validation SROCC, PLCC, accuracy, EMD for the model and for the trivial
predictor (the training-set mean distribution for every image), decode+preprocess images/s next to training
images/s, and the wall time. Writes JSON next to the run.

    python benchmarks/train_default.py [--out runs/train_default] [--epochs 12]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from aestheticnet.data.synthetic import ensure_synthetic
from aestheticnet.io import atomic_write_json
from aestheticnet.metrics import evaluate_distributions
from aestheticnet.train.config import TrainConfig
from aestheticnet.train.data import open_split, preprocess_for
from aestheticnet.train.trainer import train

DEFAULT = TrainConfig(
    variant="aestheticnet_star",
    genotype="PDARTS",
    layers=5,
    init_channels=16,
    image_size=192,  # native resolution of the synthetic photos (256x192): distortions stay visible
    max_side=256,
    train_crop=96,  # train on 96x96 patches, evaluate on whole images (global pooling takes any size)
    epochs=12,
    batch_size=32,
    lr=0.05,
    weight_decay=3e-4,
    loss="sw_emd",
    group_by="challenge",
    val_fraction=0.2,
    num_workers=0,  # decoding 256x192 JPEGs inline is cheap; a worker process would contend for the 2 cores
    seed=0,
)


def decode_throughput(ds, n: int = 200) -> float:
    t0 = time.perf_counter()
    for i in range(min(n, len(ds))):
        ds[i]
    return min(n, len(ds)) / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="runs/train_default")
    ap.add_argument("--data", default=None, help="dataset folder (default: build/reuse the synthetic default)")
    ap.add_argument("--epochs", type=int, default=DEFAULT.epochs)
    ap.add_argument("--layers", type=int, default=DEFAULT.layers)
    ap.add_argument("--init-channels", type=int, default=DEFAULT.init_channels)
    ap.add_argument("--image-size", type=int, default=DEFAULT.image_size)
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    ap.add_argument("--train-crop", type=int, default=DEFAULT.train_crop)
    ap.add_argument("--lr", type=float, default=DEFAULT.lr)
    ap.add_argument("--batch-size", type=int, default=DEFAULT.batch_size)
    ap.add_argument("--genotype", default=DEFAULT.genotype)
    ap.add_argument("--weight-decay", type=float, default=DEFAULT.weight_decay)
    args = ap.parse_args()

    t_start = time.perf_counter()
    data = args.data or str(ensure_synthetic())
    cfg = DEFAULT.replace(data=data, epochs=args.epochs, layers=args.layers, init_channels=args.init_channels,
                          image_size=args.image_size, threads=args.threads, train_crop=args.train_crop, lr=args.lr,
                          batch_size=args.batch_size, genotype=args.genotype, weight_decay=args.weight_decay)  # fmt: skip
    out = Path(args.out)
    resume = (out / "train_state.safetensors").exists()
    train(cfg, out, resume=resume)
    wall = time.perf_counter() - t_start

    pre = preprocess_for(cfg.variant, cfg.image_size, cfg.max_side, cfg.policy, cfg.train_crop)
    kw = dict(seed=cfg.seed, val_fraction=cfg.val_fraction, group_by=cfg.group_by)
    train_ds = open_split(data, "train", pre, train=True, **kw)
    val_ds = open_split(data, "val", pre, train=False, **kw)
    trivial = np.repeat(train_ds.distributions().mean(0, keepdims=True), len(val_ds), axis=0)
    # A constant prediction has no rank order; a tiny jitter keeps SROCC/PLCC defined (they are ~0).
    trivial_metrics = evaluate_distributions(trivial + 1e-9 * np.random.default_rng(0).random(trivial.shape),
                                             val_ds.distributions())  # fmt: skip
    records = [json.loads(ln) for ln in (out / "metrics.jsonl").read_text().splitlines()]
    best = max(records, key=lambda r: r["val"]["srocc"])
    result = {
        "config": cfg.to_dict(),
        "train_items": len(train_ds),
        "val_items": len(val_ds),
        "best_epoch": best["epoch"],
        "model": best["val"],
        "last": records[-1]["val"],
        "trivial_predictor": trivial_metrics,
        "train_images_per_s": float(np.median([r["train_images_per_s"] for r in records])),
        "decode_preprocess_images_per_s_train": decode_throughput(train_ds),
        "decode_preprocess_images_per_s_val": decode_throughput(val_ds),
        "wall_seconds": wall,
        "resumed": resume,
    }
    atomic_write_json(out / "benchmark.json", result)
    m, t = result["model"], result["trivial_predictor"]
    print(f"\ntrain {len(train_ds)} / val {len(val_ds)} images (split by source photo), best epoch {best['epoch'] + 1}")
    print(f"{'':<22}{'SROCC':>8}{'PLCC':>8}{'acc':>8}{'EMD r1':>9}{'EMD r2':>9}")
    for name, v in (("AestheticNet* (small)", m), ("training-set mean", t)):
        print(f"{name:<22}{v['srocc']:>8.3f}{v['plcc']:>8.3f}{v['accuracy']:>8.3f}{v['emd_r1']:>9.4f}{v['emd_r2']:>9.4f}")
    print(f"training {result['train_images_per_s']:.1f} img/s; decode+preprocess "
          f"{result['decode_preprocess_images_per_s_train']:.1f} img/s (train, augmented), "
          f"{result['decode_preprocess_images_per_s_val']:.1f} img/s (val); wall {wall:.0f} s")  # fmt: skip


if __name__ == "__main__":
    main()
