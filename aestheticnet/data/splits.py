"""Seeded, group-aware train/val/test splits shared by every loader.

Splits are made over *groups* (AVA: image id or challenge; TID2013: reference image; CSV: a group column or the
path), so near-duplicates such as distortions of one reference photo never straddle train and validation. The
assignment is computed from the annotation file's groups, before images are checked on disk, so a missing file
does not reshuffle everyone else's split.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np

__all__ = ["SPLITS", "assign_splits", "check_split", "split_name"]

SPLITS = ("all", "train", "val", "test")
_ALIASES = {
    "train": "train",
    "training": "train",
    "val": "val",
    "valid": "val",
    "validation": "val",
    "test": "test",
    "testing": "test",
}


def check_split(split: str, where: str) -> str:
    if split not in SPLITS:
        raise ValueError(f"{where}: split={split!r} is not one of {SPLITS}")
    return split


def split_name(value: str, where: str) -> str:
    """Map a split label found in a file (``training``, ``validation``, ``test`` ...) to train/val/test."""
    name = _ALIASES.get(value.strip().lower())
    if name is None:
        raise ValueError(f"{where}: unknown split label {value!r}; expected one of {sorted(_ALIASES)}")
    return name


def _round(x: float) -> int:
    return int(math.floor(x + 0.5))


def assign_splits(
    groups: Iterable[str],
    *,
    val_fraction: float,
    test_fraction: float = 0.0,
    seed: int = 0,
    fixed: dict[str, str] | None = None,
) -> dict[str, str]:
    """Map every group to ``train``, ``val`` or ``test``.

    Groups in ``fixed`` (an official split) keep their split; the others are shuffled by ``seed`` and the
    first ``round(n * test_fraction)`` go to test, the next ``round(n * val_fraction)`` to val (at least one
    each when the fraction is positive and there are groups to spare), the rest to train.
    """
    for name, frac in (("val_fraction", val_fraction), ("test_fraction", test_fraction)):
        if not 0.0 <= frac < 1.0:
            raise ValueError(f"assign_splits: {name}={frac} must be in [0, 1)")
    if val_fraction + test_fraction >= 1.0:
        raise ValueError(
            f"assign_splits: val_fraction + test_fraction = {val_fraction + test_fraction} leaves no training data"
        )
    fixed = dict(fixed or {})
    free = sorted(set(groups) - set(fixed))
    order = [free[i] for i in np.random.default_rng(seed).permutation(len(free))]
    n = len(order)
    n_test = _round(n * test_fraction) or (1 if test_fraction > 0 and n >= 3 else 0)
    n_val = _round(n * val_fraction) or (1 if val_fraction > 0 and n - n_test >= 2 else 0)
    out = dict(fixed)
    for i, group in enumerate(order):
        out[group] = "test" if i < n_test else "val" if i < n_test + n_val else "train"
    return out
