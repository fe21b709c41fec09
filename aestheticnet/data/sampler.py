"""Aspect-ratio bucketing: batches whose images share one network input shape.

With the ``aspect`` policy images have different ``(H, W)``; a batch tensor needs one shape, so indices are
grouped by shape and batches are formed inside each group. Randomness comes only from ``(seed, epoch)``, so an
interrupted and resumed run sees the same batches, and every distributed rank computes the same global batch
list and takes its own slice of it.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass
from collections.abc import Iterator, Sequence

import numpy as np
from torch.utils.data import Sampler

__all__ = ["BatchGrouping", "EpochDraw", "ShapeBucketBatchSampler", "score_balance_weights"]


@dataclass(frozen=True)
class BatchGrouping:
    """Batches of ``per_batch`` groups, ``batch_size / per_batch`` items of each (P x K sampling, as in metric
    learning): a loss over pairs within a group (the ranking loss: images of one source photo) then sees many such
    pairs in every batch instead of the few that random batches of many photos hold. ``groups``: one per item."""

    groups: tuple[int, ...]
    per_batch: int

    def __post_init__(self) -> None:
        if self.per_batch < 1:
            raise ValueError(f"BatchGrouping: per_batch must be >= 1, got {self.per_batch}")


@dataclass(frozen=True, eq=False)  # weights is an array: compare by identity
class EpochDraw:
    """Which items an epoch's batches hold, beyond shuffling: P x K batches (``grouping``) and drawing weights
    (``weights``: one positive value per item, e.g. :func:`score_balance_weights`). With weights each epoch draws
    as many items of each shape as it holds, with replacement and in proportion to the weights (as
    ``WeightedRandomSampler``), so an epoch costs the same and rare items recur."""

    grouping: BatchGrouping | None = None
    weights: np.ndarray | None = None


def score_balance_weights(mean_scores: Sequence[float], cap: float, bin_width: float = 0.5) -> np.ndarray:
    """Drawing weights that even out how often each score is seen: the count of the fullest ``bin_width`` score bin
    over the count of the item's own bin, at most ``cap`` (the inverse label density of imbalanced regression,
    Yang et al., ICML 2021).

    Why: on the synthetic datasets the pristine references are 2% of the images and the only ones near the top of
    the scale, so a network seldom sees a pristine image next to its mildly distorted versions and learns to score
    a little noise or softening above the original.
    """
    if not cap >= 1:
        raise ValueError(f"score_balance_weights: cap must be >= 1, got {cap}")
    bins = np.floor(np.asarray(mean_scores, dtype=np.float64) / bin_width).astype(np.int64)
    _, inverse, counts = np.unique(bins, return_inverse=True, return_counts=True)
    return np.minimum(cap, counts.max() / counts[inverse])


class ShapeBucketBatchSampler(Sampler[list[int]]):
    """Yield lists of dataset indices whose ``shapes`` are equal.

    Args:
        shapes: one ``(H, W)`` per dataset item (``AestheticDataset.shapes()``).
        batch_size: the largest batch; the last batch of each shape may be smaller unless ``drop_last``.
        shuffle: shuffle items within each shape and the order of batches, reseeded per epoch.
        seed: base seed; the epoch's permutation depends on ``(seed, epoch)`` only.
        drop_last: drop each shape's incomplete batch, and with several replicas drop the surplus batches
            instead of repeating some to even out the ranks.
        num_replicas, rank: distributed training. Every rank gets the same number of batches: the global
            list is padded by repeating its first batches (as ``DistributedSampler`` repeats items), then
            rank ``r`` takes batches ``r, r + num_replicas, ...``.
        draw: P x K batches and drawing weights (:class:`EpochDraw`); weights need ``shuffle``.

    Call :meth:`set_epoch` before each epoch, as with ``DistributedSampler``.
    """

    def __init__(
        self,
        shapes: Sequence[tuple[int, int]],
        batch_size: int,
        shuffle: bool = True,
        seed: int = 0,
        drop_last: bool = False,
        num_replicas: int = 1,
        rank: int = 0,
        draw: EpochDraw = EpochDraw(),
    ) -> None:
        grouping = draw.grouping
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size <= 0:
            raise ValueError(f"ShapeBucketBatchSampler: batch_size must be a positive integer, got {batch_size!r}")
        if grouping is not None and (len(grouping.groups) != len(shapes) or batch_size % grouping.per_batch):
            raise ValueError(
                f"ShapeBucketBatchSampler: grouping needs one group per item ({len(shapes)}, got "
                f"{len(grouping.groups)}) and a batch_size ({batch_size}) that its per_batch ({grouping.per_batch}) "
                "divides"
            )
        self.grouping = grouping
        self.weights = None if draw.weights is None else np.asarray(draw.weights, dtype=np.float64)
        if self.weights is not None and (
            self.weights.shape != (len(shapes),) or not shuffle or not bool(np.all(self.weights > 0))
        ):
            raise ValueError(
                f"ShapeBucketBatchSampler: weights need one positive value per item ({len(shapes)}, got "
                f"{self.weights.size}) and shuffle=True (weighted draws are random)"
            )
        if num_replicas <= 0 or not 0 <= rank < num_replicas:
            raise ValueError(
                f"ShapeBucketBatchSampler: need num_replicas >= 1 and 0 <= rank < num_replicas, "
                f"got num_replicas={num_replicas}, rank={rank}"
            )
        groups: dict[tuple[int, int], list[int]] = defaultdict(list)
        for index, shape in enumerate(shapes):
            groups[tuple(int(v) for v in shape)].append(index)
        # Sorted shapes make the batch list independent of dataset order quirks and of dict ordering.
        self.buckets: list[tuple[tuple[int, int], np.ndarray]] = [
            (shape, np.asarray(groups[shape], dtype=np.int64)) for shape in sorted(groups)
        ]
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.seed = int(seed)
        self.drop_last = drop_last
        self.num_replicas = num_replicas
        self.rank = rank
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def _global_batches(self) -> list[list[int]]:
        rng = np.random.default_rng([self.seed, self.epoch])
        batches: list[list[int]] = []
        for _, indices in self.buckets:
            if self.weights is not None:
                chance = self.weights[indices] / self.weights[indices].sum()
                indices = rng.choice(indices, size=len(indices), replace=True, p=chance)
            elif self.shuffle:
                indices = rng.permutation(indices)
            if self.grouping is not None:
                batches += self._grouped(indices, rng)
                continue
            for start in range(0, len(indices), self.batch_size):
                chunk = indices[start : start + self.batch_size]
                if self.drop_last and len(chunk) < self.batch_size:
                    continue
                batches.append(chunk.tolist())
        if self.shuffle:
            batches = [batches[i] for i in rng.permutation(len(batches))]
        return batches

    def _grouped(self, indices: np.ndarray, rng: np.random.Generator) -> list[list[int]]:
        """One shape's batches under the grouping: each group's (shuffled) items cut into runs of ``batch_size /
        per_batch``, the runs shuffled, and each batch filled with runs of ``per_batch`` different groups; the last
        batches take what is left (fewer groups), unless ``drop_last``."""
        per = self.batch_size // self.grouping.per_batch
        members: dict[int, list[int]] = defaultdict(list)
        for index in indices.tolist():
            members[self.grouping.groups[index]].append(index)
        runs = [(g, items[i : i + per]) for g, items in sorted(members.items()) for i in range(0, len(items), per)]
        if self.shuffle:
            runs = [runs[i] for i in rng.permutation(len(runs))]
        batches: list[list[int]] = []
        while runs:
            batch, used, rest = [], set(), []
            for group, run in runs:
                if group in used or len(used) == self.grouping.per_batch:
                    rest.append((group, run))
                else:
                    batch += run
                    used.add(group)
            if not (self.drop_last and len(batch) < self.batch_size):
                batches.append(batch)
            runs = rest
        # A run of one image left alone would make a batch of one, which batch normalisation cannot train on.
        while len(batches) > 1 and any(len(b) == 1 for b in batches):
            lone = batches.pop(next(k for k, b in enumerate(batches) if len(b) == 1))
            batches[min(range(len(batches)), key=lambda k: len(batches[k]))] += lone
        return batches

    def _per_rank(self, total: int) -> int:
        if self.drop_last:
            return total // self.num_replicas
        return math.ceil(total / self.num_replicas)

    def __iter__(self) -> Iterator[list[int]]:
        batches = self._global_batches()
        n = self._per_rank(len(batches))
        wanted = n * self.num_replicas
        if wanted > len(batches) and batches:
            # Repeat whole batches (never mix shapes) so every rank runs the same number of steps; without
            # this DistributedDataParallel would hang waiting for the rank that ran out.
            repeats = math.ceil(wanted / len(batches))
            batches = (batches * repeats)[:wanted]
        else:
            batches = batches[:wanted]
        yield from batches[self.rank :: self.num_replicas]

    def __len__(self) -> int:
        if self.grouping is not None:  # the count depends on how the groups' runs fall into batches
            return self._per_rank(len(self._global_batches()))
        total = 0
        for _, indices in self.buckets:
            full, rest = divmod(len(indices), self.batch_size)
            total += full + (1 if rest and not self.drop_last else 0)
        return self._per_rank(total)
