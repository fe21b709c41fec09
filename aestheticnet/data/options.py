"""What every loader (AVA, TID2013, CSV) takes: which split, how the seeded split is drawn, how items are read.

Flat keyword arguments (a config file's dataset spec, ``open_dataset(path, split=..., seed=...)``) become a
:class:`DatasetOptions` through :func:`pop_fields`; the loaders take the dataclass.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aestheticnet.configs import field_names, problems_of, raise_problems
from aestheticnet.data.base import augments
from aestheticnet.data.images import DEFAULT_MAX_PIXELS
from aestheticnet.data.preprocess import Preprocess
from aestheticnet.data.splits import SPLITS

__all__ = ["DatasetOptions", "pop_fields"]


@dataclass(frozen=True)
class DatasetOptions:
    """The options the loaders share.

    Args:
        split: ``all``, ``train``, ``val`` or ``test``.
        val_fraction, test_fraction: seeded split sizes as fractions of the groups (each loader says what a group
            is). ``val_fraction`` None is the loader's own default (AVA 0.05, TID2013 0.2, CSV 0.1).
        seed: split and augmentation seed.
        preprocess: the preprocessing policy (default fixed 224).
        train: augment; None: only for ``split="train"``.
        max_pixels: decompression-bomb limit passed to the decoder; None: no limit.
    """

    split: str = "all"
    val_fraction: float | None = None
    test_fraction: float = 0.0
    seed: int = 0
    preprocess: Preprocess | None = None
    train: bool | None = None
    max_pixels: int | None = DEFAULT_MAX_PIXELS

    def __post_init__(self) -> None:
        held_out = (self.val_fraction or 0.0) + self.test_fraction
        raise_problems(
            self,
            problems_of(
                [
                    (self.split in SPLITS, f"split={self.split!r} (need one of {SPLITS})"),
                    (
                        self.val_fraction is None or 0.0 <= self.val_fraction < 1.0,
                        f"val_fraction={self.val_fraction} (need 0 <= f < 1, or None for the loader's default)",
                    ),
                    (0.0 <= self.test_fraction < 1.0, f"test_fraction={self.test_fraction} (need 0 <= f < 1)"),
                    (held_out < 1.0, f"val_fraction + test_fraction = {held_out} (need < 1: the rest is for training)"),
                    (
                        self.max_pixels is None or self.max_pixels > 0,
                        f"max_pixels={self.max_pixels} (need > 0, or None for no limit)",
                    ),
                ]
            ),
        )

    def val_fraction_or(self, default: float) -> float:
        """``val_fraction``, or the loader's ``default`` when it is None."""
        return default if self.val_fraction is None else self.val_fraction

    @property
    def augments(self) -> bool:
        """Whether items are augmented: as ``train`` says, else only for the training split."""
        return augments(self.split, self.train)


def pop_fields(cls: type, kwargs: dict[str, Any]) -> dict[str, Any]:
    """The entries of ``kwargs`` that name fields of the dataclass ``cls``, taken out of ``kwargs``."""
    return {name: kwargs.pop(name) for name in field_names(cls) if name in kwargs}
