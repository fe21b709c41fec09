"""What every network the registry builds offers its callers, so that none of them probes a model's attributes.

A network knows at construction which registered variant it is, its config, the preprocessing its input needs (the
``preprocess`` description its model file records) and the genotype of its searched cells, if any. ``parts()``
names its submodules in the order ``forward`` runs them, so a breakdown of time, MACs or parameters per part needs
no knowledge of the network's layout. ``forward_features``, ``forward_head`` and ``forward`` follow timm.
"""

from __future__ import annotations

from typing import Any, NamedTuple, Protocol, runtime_checkable

import torch
from torch import nn

from aestheticnet.nas.genotypes import Genotype

__all__ = ["ModelConfig", "Part", "ScoringModel"]


class ModelConfig(Protocol):
    """A variant's config: a frozen dataclass that rebuilds the network and is saved in every model file."""

    num_buckets: int

    @property
    def input_multiple(self) -> int: ...

    def replace(self, **changes: Any) -> ModelConfig: ...

    def to_dict(self) -> dict[str, Any]: ...


class Part(NamedTuple):
    """One submodule of a network that ``forward`` runs once, for breakdowns per part."""

    name: str  # its path in the network: network.get_submodule(name) is module
    module: nn.Module
    group: str  # what a breakdown sums it under: "stem", "stage1", "reduction1", ..., "attention", "head"
    kind: str  # what it is: "stem", a "normal" or "reduce" cell, ...; in ``pieces``, the operation's label
    # A finer split of the same parameters, in the order the part runs them (a cell's preprocessing, operations).
    pieces: tuple[Part, ...] = ()


@runtime_checkable
class ScoringModel(Protocol):
    """A network predicting a distribution over ``config.num_buckets`` score buckets.

    ``parts()`` holds every parameter exactly once, except the auxiliary head's: that head only adds a training
    loss, never runs in ``forward`` and is never exported.
    """

    variant: str  # its name in the model registry, saved in its model file
    config: ModelConfig
    preprocessing: dict[str, Any]  # policy, size, max_side, multiple, mean, std: the model file's "preprocess"
    metadata: dict[str, Any] | None  # the header of the model file it was loaded from; None when built
    auxiliary_head: nn.Module | None

    @property
    def genotype(self) -> Genotype | None:
        """The genotype of its searched cells; None for a network without any (NIMA-MobileNetV2)."""
        ...

    def parts(self) -> list[Part]: ...

    def forward_features(self, x: torch.Tensor) -> torch.Tensor: ...

    def forward_head(self, features: torch.Tensor, pre_logits: bool = False) -> torch.Tensor: ...

    def forward(self, x: torch.Tensor) -> torch.Tensor: ...

    # What the trainer calls: the main and the auxiliary distribution (None without that head or in eval mode),
    # and the epoch, for schedules inside the network (drop-path).
    def forward_train(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]: ...

    def set_training_progress(self, epoch: int, epochs: int) -> None: ...
