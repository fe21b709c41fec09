"""Evaluate a model file on a dataset split: metrics JSON, plots, per-image predictions."""

from __future__ import annotations

import csv
import io
import math
import time
from pathlib import Path
from typing import Any

import numpy as np

from aestheticnet.data.preprocess import Preprocess
from aestheticnet.io import atomic_write_json, atomic_write_text
from aestheticnet.metrics import evaluate_distributions, mean_score
from aestheticnet.models.checkpoint import load as load_model
from aestheticnet.train.data import open_split, predict, split_options
from aestheticnet.train.plots import plot_scatter, plot_score_distributions

__all__ = ["evaluate_checkpoint"]


def evaluate_checkpoint(
    checkpoint: str | Path,
    data: str,
    out_dir: str | Path | None = None,
    *,
    split: str | None = None,
    batch_size: int = 32,
    num_workers: int = 0,
    threshold: float = 5.0,
    max_items: int | None = None,
) -> dict[str, Any]:
    """Metrics of ``checkpoint`` on ``data``. The split defaults to the validation split the model was trained
    with (seed, fraction and grouping come from the training config stored in the file), else all items."""
    model = load_model(checkpoint)
    meta = model.metadata
    train_cfg = (meta.get("extra") or {}).get("train_config") or {}
    if split is None:
        split = "val" if train_cfg else "all"
    preprocess = Preprocess.from_dict(
        {k: tuple(v) if isinstance(v, list) else v for k, v in meta["preprocess"].items()}
    )
    ds = open_split(data, split, preprocess, split_options(train_cfg), train=False, max_items=max_items)
    if ds.num_buckets != model.config.num_buckets:
        raise ValueError(
            f"{data}: labels have {ds.num_buckets} buckets but {checkpoint} predicts {model.config.num_buckets}"
        )
    t0 = time.perf_counter()
    pred, target, ids = predict(model, ds, batch_size=batch_size, num_workers=num_workers)
    seconds = time.perf_counter() - t0
    _check_finite(pred, checkpoint, data)
    metrics = evaluate_distributions(pred, target, threshold=threshold)
    # A model that scores every image the same has no rank correlation: null in the JSON, never NaN.
    metrics = {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in metrics.items()}
    report = {
        "checkpoint": str(checkpoint),
        "model": meta.get("variant", "model"),
        "data": str(data),
        "split": split,
        "items": len(ds),
        "threshold": threshold,
        "metrics": metrics,
        "images_per_s": len(ds) / seconds if seconds > 0 else None,
    }
    if out_dir is not None:
        _write_outputs(Path(out_dir), report, pred, target, ids)
    return report


def _check_finite(pred: np.ndarray, checkpoint: str | Path, data: str) -> None:
    """Refuse predictions that are NaN or infinite for any image: no metrics are better than wrong ones."""
    if not np.isfinite(pred).all():
        bad = int((~np.isfinite(pred)).any(axis=1).sum())
        raise ValueError(
            f"{checkpoint}: the model's output is NaN or infinite for {bad} of {len(pred)} images of {data}; "
            "no metrics written. Check the model with `aestheticnet verify` or train it again"
        )


def _write_outputs(out: Path, report: dict[str, Any], pred: np.ndarray, target: np.ndarray, ids: list[str]) -> None:
    """``metrics.json`` (the report, its ``files`` added), ``predictions.csv`` and the two plots."""
    out.mkdir(parents=True, exist_ok=True)
    pm, tm = mean_score(pred), mean_score(target)
    # Each plot names its model and checkpoint: a report shows several models' plots side by side.
    model = f"{report['model']} ({Path(report['checkpoint']).name}), {report['split']} split"
    report["files"] = {
        "metrics": str(out / "metrics.json"),
        "predictions": str(out / "predictions.csv"),
        "distributions_png": str(
            plot_score_distributions(pm, tm, out / "score_distributions.png", title=f"mean scores: {model}")
        ),
        "scatter_png": str(plot_scatter(pm, tm, out / "scatter.png", title=f"predicted vs true: {model}")),
    }
    atomic_write_text(out / "predictions.csv", _predictions_csv(ids, pred, pm, tm))
    atomic_write_json(out / "metrics.json", report)


def _predictions_csv(ids: list[str], pred: np.ndarray, pred_mean: np.ndarray, true_mean: np.ndarray) -> str:
    """One row per image: id, predicted and true mean score, the predicted distribution."""
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["id", "pred_mean", "true_mean", *[f"p{k}" for k in range(1, pred.shape[1] + 1)]])
    for i, image_id in enumerate(ids):
        w.writerow([image_id, f"{pred_mean[i]:.4f}", f"{true_mean[i]:.4f}", *[f"{v:.5f}" for v in pred[i]]])
    return buf.getvalue()
