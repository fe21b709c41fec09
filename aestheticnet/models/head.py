"""The score head every network here ends in: global average pooling, dropout, linear, softmax over the buckets.

A mixin rather than a module so that the parameters keep their names (``head``, ``head_drop``) in checkpoints.
"""

from __future__ import annotations

import torch

__all__ = ["DistributionHead"]


class DistributionHead:
    """``forward_head`` and ``forward`` (timm's contract) for a network with ``head_drop``, ``head`` and
    ``forward_features``."""

    head: torch.nn.Linear
    head_drop: torch.nn.Dropout

    def forward_head(self, features: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        pooled = features.mean(dim=(2, 3))
        if pre_logits:
            return pooled
        return torch.softmax(self.head(self.head_drop(pooled)), dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))  # type: ignore[attr-defined]
