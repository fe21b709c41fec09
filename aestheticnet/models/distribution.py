"""Turn a predicted distribution over score buckets into a mean score and a standard deviation.

Bucket k (k = 1..N) stands for score k, as in AVA's 1..10 votes.
"""

from __future__ import annotations

import torch

__all__ = ["bucket_scores", "mean_score", "score_std"]


def bucket_scores(
    num_buckets: int, device: torch.device | None = None, dtype: torch.dtype = torch.float32
) -> torch.Tensor:
    return torch.arange(1, num_buckets + 1, device=device, dtype=dtype)


def _check(dist: torch.Tensor) -> None:
    if dist.dim() not in (1, 2) or dist.shape[-1] < 2:
        raise ValueError(f"a distribution must have shape (N,) or (batch, N) with N >= 2, got {tuple(dist.shape)}")


def mean_score(dist: torch.Tensor) -> torch.Tensor:
    _check(dist)
    return (dist * bucket_scores(dist.shape[-1], dist.device, dist.dtype)).sum(-1)


def score_std(dist: torch.Tensor) -> torch.Tensor:
    _check(dist)
    scores = bucket_scores(dist.shape[-1], dist.device, dist.dtype)
    mean = (dist * scores).sum(-1, keepdim=True)
    var = (dist * (scores - mean) ** 2).sum(-1)
    return var.clamp_min(0).sqrt()
