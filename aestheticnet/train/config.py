"""Training configuration: one dataclass, saved as ``train_config.json`` next to every run."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aestheticnet.configs import raise_problems, reject_unknown, type_problems

__all__ = ["TrainConfig", "load_config"]


@dataclass(frozen=True)
class TrainConfig:
    data: str = ""  # dataset folder or annotation file (AVA, TID2013, CSV; see data.detect.open_dataset)
    data_format: str | None = None  # force a loader ("ava", "tid2013", "csv", "koniq") instead of detecting
    group_by: str | None = None  # AVA split grouping: "id" (default) or "challenge" (the synthetic default)
    # A generic CSV's columns (data.csv_dataset): the image path, and the labels as vote counts or a mean score.
    path_column: str | None = None
    vote_columns: tuple[str, ...] = ()
    mean_column: str | None = None
    val_fraction: float = 0.2  # used when the dataset has no official split
    variant: str = "aestheticnet_star"
    genotype: str = "PDARTS"  # registered name or path to genotype.json (e.g. from `aestheticnet search`)
    # AestheticNet's architecture; a variant without a genotype (the NIMA-MobileNetV2 baseline) ignores these three.
    init_channels: int = 36
    layers: int = 20
    width: float | None = None  # the baseline's width multiplier; None = 1.0 (refused by AestheticNet)
    # Model ablations; None = the variant's default.
    cbam: bool | None = None
    dilation: int | None = None
    input_norm: str | None = None  # "lcn": local contrast normalised channels beside the input; None = "none"
    # Preprocessing; None = the variant's default (fixed 224 for aestheticnet, aspect 224 for the star).
    policy: str | None = None  # "fixed" (SxS) or "aspect" (shorter side S, multiples of 32)
    image_size: int | None = None
    max_side: int | None = None
    train_crop: int = 0  # > 0: train on random square patches of this size (multiple of 32) at evaluation scale
    # The paper: SGD, initial lr 0.1, cosine over 200 epochs.
    epochs: int = 200
    batch_size: int = 32
    lr: float = 0.1
    lr_min: float = 0.0
    momentum: float = 0.9
    weight_decay: float = 3e-4
    grad_clip: float = 5.0
    ema_decay: float = 0.0  # > 0: validate and save a moving average of the weights (train/ema.py); 0 = off
    drop_path: float = 0.0  # ramped linearly from 0 to this value over the epochs (DARTS)
    auxiliary_weight: float = 0.0  # > 0 adds the auxiliary head and its loss
    loss: str = "sw_emd"  # "emd" or "sw_emd"
    loss_r: int = 2
    loss_lam: float = 0.5
    # > 0 adds this times the pairwise ranking loss between images of one source photo in a batch (losses.py says
    # why): with few photos it teaches the distortions' order instead of the photos. 0 = off.
    rank_weight: float = 0.0
    # > 0: every training batch holds this many source photos, batch_size / photos_per_batch images of each, so the
    # ranking loss has many pairs within a photo in every batch (at 4 of 32 the demo's ladder rho rose:
    # docs/results/ranking.md). 0 = random batches.
    photos_per_batch: int = 0
    # >= 1: draw training images in inverse proportion to how common their score is, rare scores at most this many
    # times as often (data/sampler.py's score_balance_weights says why); an epoch still draws as many images as the
    # training set holds. 0 = every image once per epoch.
    balance_scores: float = 0.0
    seed: int = 0
    num_workers: int = 2
    max_train_items: int | None = None  # cap for quick runs (first items of the split, in order)
    max_val_items: int | None = None
    threads: int | None = None  # torch intra-op threads; None = torch's default

    def __post_init__(self) -> None:
        raise_problems(self, type_problems(self))
        object.__setattr__(self, "vote_columns", tuple(self.vote_columns))  # JSON gives a list
        checks = {
            "epochs": self.epochs >= 1,
            "batch_size": self.batch_size >= 1,
            "lr": self.lr > 0,
            "lr_min": 0 <= self.lr_min <= self.lr,
            "momentum": 0 <= self.momentum < 1,
            "weight_decay": self.weight_decay >= 0,
            "grad_clip": self.grad_clip >= 0,
            "ema_decay": 0 <= self.ema_decay < 1,
            "drop_path": 0 <= self.drop_path < 1,
            "auxiliary_weight": self.auxiliary_weight >= 0,
            "loss": self.loss in ("emd", "sw_emd"),
            "loss_r": self.loss_r >= 1,
            "loss_lam": 0 <= self.loss_lam <= 1,
            "rank_weight": self.rank_weight >= 0,
            "photos_per_batch": self.photos_per_batch == 0
            or (self.photos_per_batch >= 1 and self.batch_size % self.photos_per_batch == 0),
            "balance_scores": self.balance_scores == 0 or self.balance_scores >= 1,
            "val_fraction": 0 < self.val_fraction < 1,
            "num_workers": self.num_workers >= 0,
            "init_channels": self.init_channels >= 2 and self.init_channels % 2 == 0,
            "layers": self.layers >= 3,
            "width": self.width is None or self.width > 0,
            "policy": self.policy in (None, "fixed", "aspect"),
            "dilation": self.dilation is None or self.dilation >= 1,
            "input_norm": self.input_norm in (None, "none", "lcn", "mscn"),
        }
        raise_problems(self, [f"{k}={getattr(self, k)!r}" for k, ok in checks.items() if not ok])

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "train config") -> "TrainConfig":
        reject_unknown(cls, data, source)
        return cls(**data)

    def replace(self, **changes: Any) -> "TrainConfig":
        return dataclasses.replace(self, **changes)


# Fields that may differ between the interrupted run and its resumption without changing the result.
RESUME_FREE = {"num_workers", "threads", "data"}


def load_config(path: str | Path) -> TrainConfig:
    p = Path(path)
    try:
        data = json.loads(p.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f"cannot read training config {p}: {exc}") from None
    return TrainConfig.from_dict(data, source=str(p))
