"""Proxy data for the search: a seeded fraction of the training split, divided into weight and architecture parts.

P-DARTS searches on half of CIFAR's training set for the weights and the other half for the architecture
(``train_portion = 0.5``); here the default is 1/10 of the training split divided 4:1 (``proxy_fraction``,
``weight_fraction``). The choice depends only on the seed and the split's length, so every rank and every
resumed run use the same images.

Batches are of one size: the weight and architecture batch sizes are ``min(batch_size, part size)`` and
incomplete batches are dropped, since batch norm cannot train on a single sample of a 1x1 map. Shuffling and
augmentation depend on ``(seed, stage, epoch)`` only (``ShapeBucketBatchSampler``, the dataset's per-item
generators), so an interrupted and resumed search sees the same batches.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Any

import numpy as np
from torch.utils.data import DataLoader, Dataset, Subset

from aestheticnet.data.detect import open_dataset
from aestheticnet.data.preprocess import Preprocess
from aestheticnet.data.sampler import ShapeBucketBatchSampler
from aestheticnet.nas.strategy import SearchConfig

__all__ = ["ProxyData", "proxy_indices", "open_proxy_data"]


def proxy_indices(n: int, fraction: float, weight_fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """Sorted ``(weight indices, architecture indices)`` of a seeded ``fraction`` of ``range(n)``."""
    n_proxy = min(n, max(4, int(math.floor(n * fraction + 0.5))))
    n_weight = min(n_proxy - 2, max(2, int(math.floor(n_proxy * weight_fraction + 0.5))))
    if n_proxy < 4 or n_weight < 2:
        raise ValueError(
            f"search data: {n} training images give {n_proxy} proxy images; need at least 4 (2 for the weights "
            "and 2 for the architecture); use more data or a larger proxy_fraction"
        )
    order = np.random.default_rng([int(seed), 0x5EA4C4]).permutation(n)[:n_proxy]
    return sorted(order[:n_weight].tolist()), sorted(order[n_weight:].tolist())


@dataclass
class ProxyData:
    dataset: Dataset
    weight_indices: list[int]
    arch_indices: list[int]
    num_buckets: int
    batch_size: int
    workers: int = 0
    seed: int = 0
    rank: int = 0
    world_size: int = 1

    def _loader(self, indices: list[int], stream: int, stage: int, epoch: int) -> DataLoader:
        batch = min(self.batch_size, len(indices))
        sampler = ShapeBucketBatchSampler(
            [(0, 0)] * len(indices),  # one fixed input size: a single shape bucket
            batch,
            shuffle=True,
            seed=int(np.random.SeedSequence([self.seed, stream, stage]).generate_state(1)[0]),
            drop_last=True,
            num_replicas=self.world_size,
            rank=self.rank,
        )
        sampler.set_epoch(epoch)
        return DataLoader(
            Subset(self.dataset, indices), batch_sampler=sampler, num_workers=self.workers, persistent_workers=False
        )

    def loaders(self, stage: int, epoch: int, global_epoch: int) -> tuple[DataLoader, DataLoader]:
        """Weight and architecture loaders of one epoch; ``global_epoch`` seeds the augmentation."""
        if hasattr(self.dataset, "set_epoch"):
            self.dataset.set_epoch(global_epoch)
        return self._loader(self.weight_indices, 1, stage, epoch), self._loader(self.arch_indices, 2, stage, epoch)

    def steps_per_epoch(self) -> int:
        batch = min(self.batch_size, len(self.weight_indices))
        return (len(self.weight_indices) // batch) // self.world_size

    def describe(self) -> dict[str, Any]:
        return {
            "images": len(self.dataset),
            "weight_images": len(self.weight_indices),
            "arch_images": len(self.arch_indices),
            "batch_size": min(self.batch_size, len(self.weight_indices)),
            "arch_batch_size": min(self.batch_size, len(self.arch_indices)),
        }


def open_proxy_data(
    data: str | os.PathLike | Dataset,
    config: SearchConfig,
    *,
    rank: int = 0,
    world_size: int = 1,
    **dataset_kwargs: Any,
) -> ProxyData:
    """Open ``data`` (a dataset folder/file for ``open_dataset``, or a Dataset) as ``config``'s proxy data.

    From ``config``: the fixed square ``resolution`` (a multiple of its ``input_multiple``), ``data_split``,
    ``augment``, ``seed``, ``proxy_fraction``, ``weight_fraction``, ``batch_size`` and ``workers``. ``rank`` and
    ``world_size`` pick this process's share of the batches; ``dataset_kwargs`` go to ``open_dataset``
    (``format=``, ``val_fraction=``, ...).
    """
    if isinstance(data, Dataset):
        dataset = data
    else:
        preprocess = Preprocess(policy="fixed", size=config.resolution, multiple=config.input_multiple)
        dataset = open_dataset(
            data,
            split=config.data_split,
            preprocess=preprocess,
            train=config.augment,
            seed=config.seed,
            **dataset_kwargs,
        )
    n = len(dataset)
    weight, arch = proxy_indices(n, config.proxy_fraction, config.weight_fraction, config.seed)
    num_buckets = getattr(dataset, "num_buckets", None)
    if num_buckets is None:
        num_buckets = int(dataset[0][1].shape[-1])
    return ProxyData(
        dataset, weight, arch, int(num_buckets), config.batch_size, config.workers, config.seed, rank, world_size
    )
