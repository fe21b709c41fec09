"""Aspect-ratio bucketing: batches whose images share one network input shape.

With the ``aspect`` policy images have different ``(H, W)``; a batch tensor needs one shape, so indices are
grouped by shape and batches are formed inside each group. Randomness comes only from ``(seed, epoch)``, so an
interrupted and resumed run sees the same batches, and every distributed rank computes the same global batch
list and takes its own slice of it.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterator, Sequence

import numpy as np
from torch.utils.data import Sampler

__all__ = ["ShapeBucketBatchSampler"]


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
    ) -> None:
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size <= 0:
            raise ValueError(f"ShapeBucketBatchSampler: batch_size must be a positive integer, got {batch_size!r}")
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
            if self.shuffle:
                indices = rng.permutation(indices)
            for start in range(0, len(indices), self.batch_size):
                chunk = indices[start : start + self.batch_size]
                if self.drop_last and len(chunk) < self.batch_size:
                    continue
                batches.append(chunk.tolist())
        if self.shuffle:
            batches = [batches[i] for i in rng.permutation(len(batches))]
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
        total = 0
        for _, indices in self.buckets:
            full, rest = divmod(len(indices), self.batch_size)
            total += full + (1 if rest and not self.drop_last else 0)
        return self._per_rank(total)
