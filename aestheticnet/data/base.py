"""The one dataset interface: items are ``(image CHW float32, distribution (N,) float32, id)``.

Loaders (AVA, TID2013, CSV) only parse their annotation files into :class:`Record` objects and a
:class:`SkipReport`; decoding, preprocessing, augmentation, shapes for bucketing and skip reporting live here,
so every format behaves the same in training, evaluation and scoring.
"""

from __future__ import annotations

import logging
import os
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from aestheticnet.data.images import DEFAULT_MAX_PIXELS, image_size
from aestheticnet.data.preprocess import Preprocess, file_tensor
from aestheticnet.metrics import mean_score

__all__ = ["AestheticDataset", "DirectoryIndex", "Record", "SkipReport", "augments", "text_rows"]

log = logging.getLogger("aestheticnet.data")

# Messages already logged in this process: train and val datasets built from one file report its skips once.
_REPORTED: set[str] = set()


@dataclass(frozen=True, eq=False)
class Record:
    """One labelled image. ``path`` is relative to the dataset's image root; ``group`` is what splits go by."""

    id: str
    path: str
    dist: np.ndarray
    group: str


def text_rows(path: str | os.PathLike) -> Iterator[tuple[int, str, list[str]]]:
    """``(line number, line, whitespace-separated columns)`` of every non-blank line of an annotation file."""
    with open(path, encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, start=1):
            cols = line.split()
            if cols:
                yield lineno, line, cols


def augments(split: str, train: bool | None) -> bool:
    """Whether a loader augments: as ``train`` says, else only for the training split."""
    return (split == "train") if train is None else bool(train)


class SkipReport:
    """Rows skipped while loading (reason -> count and first ids); logged once, never fatal."""

    def __init__(self, source: str | os.PathLike, max_examples: int = 5) -> None:
        self.source = str(source)
        self.max_examples = max_examples
        self.counts: Counter[str] = Counter()
        self.examples: dict[str, list[str]] = {}

    def add(self, reason: str, item_id: str) -> None:
        self.counts[reason] += 1
        examples = self.examples.setdefault(reason, [])
        if len(examples) < self.max_examples:
            examples.append(str(item_id))

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def __bool__(self) -> bool:
        return self.total > 0

    def summary(self) -> str:
        if not self:
            return f"{self.source}: nothing skipped"
        parts = [
            f"{reason}: {count} (e.g. {', '.join(self.examples[reason])})" for reason, count in self.counts.items()
        ]
        return f"{self.source}: skipped {self.total} rows; " + "; ".join(parts)

    def report(self, logger: logging.Logger = log) -> None:
        """Log the summary as one warning, once per process for identical reports."""
        message = self.summary()
        if self and message not in _REPORTED:
            _REPORTED.add(message)
            logger.warning(message)


class DirectoryIndex:
    """Case-insensitive file lookup in one folder, listed once (a stat per row is slow on 255k images)."""

    def __init__(self, folder: str | os.PathLike) -> None:
        self.folder = Path(folder)
        self._names: dict[str, str] = {}
        if self.folder.is_dir():
            with os.scandir(self.folder) as entries:
                for entry in sorted(entries, key=lambda e: e.name):  # sorted: a deterministic pick on clashes
                    self._names.setdefault(entry.name.lower(), entry.name)

    def find(self, name: str) -> str | None:
        """The real file name matching ``name`` ignoring case, or None."""
        return self._names.get(name.lower())


class AestheticDataset(Dataset):
    """Base of every loader. Subclasses build ``records`` and call ``super().__init__``.

    Args:
        root: folder that every ``Record.path`` is relative to; reading never leaves it.
        records: the items of the requested split.
        num_buckets: length of each distribution (10 for AVA/TID2013, 5 for KonIQ votes).
        preprocess: the policy; defaults to ``Preprocess()`` (fixed 224).
        train: apply augmentation (random crop + flip), seeded by ``(seed, epoch, index)``.
        seed: augmentation seed. Call :meth:`set_epoch` every epoch (DataLoader workers copy the dataset
            when their iterator starts, so use ``persistent_workers=False`` or the epoch will not reach them).
        max_pixels: decompression-bomb limit passed to the decoder.
        skipped: the loader's skip report; logged here once.
    """

    def __init__(
        self,
        root: str | os.PathLike,
        records: list[Record],
        num_buckets: int,
        *,
        preprocess: Preprocess | None = None,
        train: bool = False,
        seed: int = 0,
        max_pixels: int | None = DEFAULT_MAX_PIXELS,
        skipped: SkipReport | None = None,
    ) -> None:
        self.root = Path(root)
        self.records = list(records)
        self.num_buckets = int(num_buckets)
        self.preprocess = preprocess if preprocess is not None else Preprocess()
        if not isinstance(self.preprocess, Preprocess):
            raise TypeError(f"preprocess must be an aestheticnet Preprocess, got {type(self.preprocess).__name__}")
        self.train = bool(train)
        self.seed = int(seed)
        self.epoch = 0
        self.max_pixels = max_pixels
        self.skipped = skipped if skipped is not None else SkipReport(root)
        self._sizes: list[tuple[int, int]] | None = None
        for rec in self.records:
            if rec.dist.shape != (self.num_buckets,):
                raise ValueError(
                    f"{type(self).__name__}: record {rec.id!r} has a distribution of shape {rec.dist.shape}, "
                    f"expected ({self.num_buckets},)"
                )
        self.skipped.report()

    # ---- the interface --------------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor, str]:
        rec = self.records[index]
        rng = self._generator(index) if self.train else None
        size = self._output_size(index)
        x = file_tensor(rec.path, self.preprocess, self.root, max_pixels=self.max_pixels, size=size, rng=rng)
        return x, torch.from_numpy(rec.dist.astype(np.float32)), rec.id

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    @property
    def ids(self) -> list[str]:
        return [rec.id for rec in self.records]

    def distributions(self) -> np.ndarray:
        """All labels as an ``(n, num_buckets)`` float32 array."""
        if not self.records:
            return np.zeros((0, self.num_buckets), np.float32)
        return np.stack([rec.dist for rec in self.records]).astype(np.float32)

    def mean_scores(self) -> np.ndarray:
        """Mean score per item on the 1..N scale."""
        return mean_score(self.distributions()).astype(np.float32)

    # ---- shapes for bucketing -------------------------------------------------------------------------------
    def image_sizes(self, workers: int = 8) -> list[tuple[int, int]]:
        """Displayed ``(width, height)`` of every image from its header (no pixel decoding); cached."""
        if self._sizes is None:

            def size_of(rec: Record) -> tuple[int, int]:
                return image_size(rec.path, self.root, max_pixels=self.max_pixels)

            # Header reads are I/O bound; threads overlap them on network and spinning disks.
            with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
                self._sizes = list(pool.map(size_of, self.records))
        return self._sizes

    def shapes(self) -> list[tuple[int, int]]:
        """Network input ``(H, W)`` per record under this dataset's policy, for ``ShapeBucketBatchSampler``."""
        pre = self.preprocess
        if pre.policy == "fixed":  # no header reads needed
            sizes = [(pre.size, pre.size)] * len(self.records)
        else:
            sizes = [pre.output_size(w, h) for w, h in self.image_sizes()]
        if self.train:
            sizes = [pre.train_size(s) for s in sizes]
        return [(h, w) for w, h in sizes]

    # ---- internals ------------------------------------------------------------------------------------------
    def _output_size(self, index: int) -> tuple[int, int]:
        """Target ``(W, H)`` from the header size, so items match :meth:`shapes` even under JPEG draft."""
        if self.preprocess.policy == "fixed":
            return self.preprocess.size, self.preprocess.size
        if self._sizes is not None:
            w, h = self._sizes[index]
        else:
            rec = self.records[index]
            w, h = image_size(rec.path, self.root, max_pixels=self.max_pixels)
        return self.preprocess.output_size(w, h)

    def _generator(self, index: int) -> torch.Generator:
        # Seeded from (seed, epoch, index) alone: the same item gets the same crop whichever worker loads it,
        # and a resumed run repeats the interrupted one exactly.
        state = np.random.SeedSequence([self.seed, self.epoch, index]).generate_state(1)[0]
        return torch.Generator().manual_seed(int(state))

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(root={str(self.root)!r}, items={len(self)}, buckets={self.num_buckets}, "
            f"policy={self.preprocess.policy!r}, train={self.train}, skipped={self.skipped.total})"
        )
