"""Label helpers shared by every loader: vote counts and (mean, std) pairs -> bucket distributions."""

from __future__ import annotations

import math

import numpy as np

__all__ = ["counts_to_distribution", "discretised_gaussian"]

_SQRT2 = math.sqrt(2.0)


def _normal_cdf(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.vectorize(math.erf)(x / _SQRT2))


def discretised_gaussian(mean: float, std: float, num_buckets: int, low: float = 1.0) -> np.ndarray:
    """A Gaussian N(mean, std) integrated over buckets ``low, low + 1, ..., low + num_buckets - 1``.

    Bucket ``v`` covers ``[v - 0.5, v + 0.5)``; the first and last buckets are open-ended so the tails fold
    into them and the distribution sums to exactly 1 (a mean near the edge therefore pulls the distribution's
    mean slightly inwards). ``std == 0`` gives a one-hot on the nearest bucket. Used by TID2013 (MOS+1 on
    1..10) and by CSV files that give a mean (and perhaps a std) instead of vote counts.
    """
    if num_buckets < 1:
        raise ValueError(f"discretised_gaussian: num_buckets must be >= 1, got {num_buckets}")
    if not (math.isfinite(mean) and math.isfinite(std)) or std < 0:
        raise ValueError(f"discretised_gaussian: need a finite mean and std >= 0, got mean={mean}, std={std}")
    centres = low + np.arange(num_buckets, dtype=np.float64)
    if std == 0:
        dist = np.zeros(num_buckets)
        dist[int(np.clip(np.floor(mean - low + 0.5), 0, num_buckets - 1))] = 1.0
        return dist
    edges = _normal_cdf((np.concatenate([centres - 0.5, centres[-1:] + 0.5]) - mean) / std)
    edges[0], edges[-1] = 0.0, 1.0  # open-ended outer buckets
    return np.diff(edges) / (edges[-1] - edges[0])


def counts_to_distribution(counts) -> np.ndarray:
    """Vote counts -> probabilities. The caller skips all-zero rows before calling."""
    counts = np.asarray(counts, dtype=np.float64)
    total = counts.sum()
    if not total > 0 or (counts < 0).any():
        raise ValueError(f"counts_to_distribution: counts must be non-negative with a positive total, got {counts}")
    return counts / total
