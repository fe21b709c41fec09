"""Datasets and loaders for training and evaluation, built from a TrainConfig."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader

from aestheticnet.configs import problems_of, raise_problems
from aestheticnet.data.base import AestheticDataset
from aestheticnet.data.detect import FORMATS, detect_format, open_dataset
from aestheticnet.data.preprocess import Preprocess
from aestheticnet.data.sampler import EpochDraw, ShapeBucketBatchSampler
from aestheticnet.models.registry import get_entry

__all__ = ["SplitOptions", "make_loader", "open_split", "predict", "preprocess_for", "split_ids", "split_options"]


def preprocess_for(
    variant: str,
    image_size: int | None = None,
    max_side: int | None = None,
    policy: str | None = None,
    train_crop: int = 0,
) -> Preprocess:
    """The variant's default policy with optional policy, size and training-patch overrides."""
    spec = dict(get_entry(variant).preprocess)
    spec["train_crop"] = train_crop
    if policy is not None:
        spec["policy"] = policy
    if image_size is not None:
        spec["size"] = image_size
        if spec["policy"] == "fixed":
            spec["max_side"] = image_size
    if max_side is not None:
        spec["max_side"] = max_side
    spec = {k: tuple(v) if isinstance(v, list) else v for k, v in spec.items()}
    return Preprocess.from_dict(spec)


@dataclass(frozen=True)
class SplitOptions:
    """How a run divides its dataset: the same options give the same train and validation images.

    Args:
        seed: the split (and augmentation) seed.
        val_fraction: validation share when the dataset has no official split.
        data_format: force a loader (one of ``data.detect.FORMATS``) instead of detecting it.
        group_by: AVA's split grouping (``"id"`` or ``"challenge"``); other formats ignore it.
        csv_columns: a generic CSV's column keywords (``path_column``, ``vote_columns``, ``mean_column``).
    """

    seed: int
    val_fraction: float
    data_format: str | None = None
    group_by: str | None = None
    csv_columns: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        raise_problems(
            self,
            problems_of(
                [
                    (0.0 <= self.val_fraction < 1.0, f"val_fraction={self.val_fraction} (need 0 <= f < 1)"),
                    (
                        not self.data_format or self.data_format.lower() in FORMATS,
                        f"data_format={self.data_format!r} (need one of {FORMATS}, or None to detect it)",
                    ),
                ]
            ),
        )


def open_split(
    data: str, split: str, preprocess: Preprocess, options: SplitOptions, *, train: bool, max_items: int | None = None
) -> AestheticDataset:
    """The ``split`` of ``data`` as ``options`` divide it; ``max_items`` keeps the first items only."""
    if not data:
        raise ValueError("no dataset given: pass --data DIR (AVA, TID2013 or CSV; `aestheticnet data synth` makes one)")
    fmt = options.data_format or detect_format(data)[0]
    kwargs: dict[str, Any] = {
        "split": split,
        "preprocess": preprocess,
        "train": train,
        "seed": options.seed,
        "val_fraction": options.val_fraction,
    }
    if options.data_format:
        kwargs["format"] = options.data_format
    if options.group_by and fmt == "ava":
        kwargs["group_by"] = options.group_by
    if fmt == "csv":
        kwargs.update(options.csv_columns)
    ds = open_dataset(data, **kwargs)
    if max_items is not None and len(ds) > max_items:
        ds.records = ds.records[:max_items]
    if len(ds) == 0:
        raise ValueError(f"{data}: the {split!r} split is empty; check the split lists or val_fraction")
    return ds


def split_options(train_config: dict[str, Any]) -> SplitOptions:
    """The :class:`SplitOptions` that reproduce the split of a run with ``train_config`` (its saved dict)."""
    return SplitOptions(
        seed=int(train_config.get("seed", 0)),
        val_fraction=float(train_config.get("val_fraction", 0.2)),
        data_format=train_config.get("data_format"),
        group_by=train_config.get("group_by"),
        csv_columns=csv_columns(train_config),
    )


def csv_columns(train_config: dict[str, Any]) -> dict[str, Any]:
    """The generic-CSV column keywords a training config sets (``CSVDataset``'s ``path_column``, ...)."""
    return {k: train_config[k] for k in ("path_column", "vote_columns", "mean_column") if train_config.get(k)}


def split_ids(data: str, train_config: dict[str, Any], split: str = "val") -> set[str]:
    """Image ids of ``split`` of ``data`` as a training run with ``train_config`` (its saved dict) split it."""
    preprocess = preprocess_for(train_config.get("variant", "aestheticnet_star"))
    ds = open_split(data, split, preprocess, split_options(train_config), train=False)
    return {record.id for record in ds.records}


def make_loader(
    ds: AestheticDataset,
    batch_size: int,
    *,
    shuffle: bool,
    seed: int,
    num_workers: int,
    num_replicas: int = 1,
    rank: int = 0,
    draw: EpochDraw = EpochDraw(),
) -> tuple[DataLoader, ShapeBucketBatchSampler]:
    sampler = ShapeBucketBatchSampler(
        ds.shapes(),
        batch_size,
        shuffle=shuffle,
        seed=seed,
        drop_last=False,
        num_replicas=num_replicas,
        rank=rank,
        draw=draw,
    )
    loader = DataLoader(ds, batch_sampler=sampler, num_workers=num_workers, persistent_workers=False)
    return loader, sampler


@torch.no_grad()
def predict(
    model: torch.nn.Module, ds: AestheticDataset, batch_size: int = 32, num_workers: int = 0
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Predicted and target distributions in dataset order."""
    device = next(model.parameters()).device
    loader, _ = make_loader(ds, batch_size, shuffle=False, seed=0, num_workers=num_workers)
    was_training = model.training
    model.eval()
    preds, targets, ids = [], [], []
    try:
        for x, y, batch_ids in loader:
            preds.append(model(x.to(device)).float().cpu().numpy())
            targets.append(y.numpy())
            ids.extend(batch_ids)
    finally:
        model.train(was_training)
    # The bucketing sampler groups by shape; put results back in dataset order.
    order = {i: k for k, i in enumerate(ds.ids)}
    pred, target = np.concatenate(preds), np.concatenate(targets)
    perm = np.argsort([order[i] for i in ids], kind="stable")
    return pred[perm], target[perm], [ids[k] for k in perm]
