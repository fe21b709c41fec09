"""The stem in front of the cells and the cells' channel plan, one module for the supernet and the final networks.

Cells are searched at the scales they later run at only if both networks share the stem, so both build it
here. ``imagenet`` is DARTS' ImageNet stem: two stride-2 stages (``stem0`` to stride 4, ``stem1`` to stride 8)
that feed the first cell as its two inputs. ``cifar`` is one stride-1 convolution to ``3 * C`` channels, used
for tiny inputs and to check cells against the published CIFAR networks. :func:`cell_slots` continues the
stem's channel bookkeeping through the cells: reduction cells at 1/3 and 2/3 of the depth double the channels.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn

__all__ = [
    "STEM_STRIDES",
    "StemLayout",
    "CellSlot",
    "build_stem",
    "run_stem",
    "check_stem",
    "input_multiple",
    "reduction_layers",
    "cell_dilation",
    "cell_slots",
]

# Total input stride before the cells.
STEM_STRIDES = {"imagenet": 8, "cifar": 1}
_CIFAR_MULTIPLIER = 3


def check_stem(stem: str) -> str | None:
    """The problem with ``stem`` as a config message part, or None when it is valid."""
    return None if stem in STEM_STRIDES else f"stem={stem!r} (valid: {', '.join(STEM_STRIDES)})"


def input_multiple(stem: str) -> int:
    """What input height and width must be multiples of: the stem stride times the two stride-2 reductions,
    where ``FactorizedReduce`` needs even sizes."""
    return STEM_STRIDES[stem] * 4


@dataclass(frozen=True)
class StemLayout:
    """The stem's modules and the channel bookkeeping the first cell starts from."""

    stem0: nn.Module
    stem1: nn.Module | None  # None: the cifar stem feeds its one output as both cell inputs
    c_prev_prev: int
    c_prev: int
    c_curr: int
    reduction_prev: bool  # the cell input two back is at twice the resolution of the previous one


def run_stem(stem0: nn.Module, stem1: nn.Module | None, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The first cell's two inputs."""
    s0 = stem0(x)
    return s0, (stem1(s0) if stem1 is not None else s0)


def build_stem(stem: str, c_in: int, c: int) -> StemLayout:
    """The stem for ``c_in`` input channels and ``c`` initial cell channels."""
    if stem == "imagenet":
        stem0 = nn.Sequential(
            nn.Conv2d(c_in, c // 2, 3, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(c // 2),
            nn.ReLU(inplace=False),
            nn.Conv2d(c // 2, c, 3, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(c),
        )
        stem1 = nn.Sequential(
            nn.ReLU(inplace=False),
            nn.Conv2d(c, c, 3, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(c),
        )
        return StemLayout(stem0, stem1, c, c, c, True)
    if stem == "cifar":
        width = _CIFAR_MULTIPLIER * c
        stem0 = nn.Sequential(nn.Conv2d(c_in, width, 3, padding=1, bias=False), nn.BatchNorm2d(width))
        return StemLayout(stem0, None, width, width, c, False)
    raise ValueError(check_stem(stem))


def reduction_layers(layers: int) -> tuple[int, int]:
    """Indices of the two reduction cells: at 1/3 and 2/3 of the depth, as in DARTS."""
    return layers // 3, 2 * layers // 3


def cell_dilation(index: int, reduction: bool, layers: int, dilation: int) -> int:
    """The dilation of the sep convs of cell ``index``: ``dilation`` in the normal cells after the second
    reduction (AestheticNet*'s last stage, where the map is small and a wider window costs no parameters), else 1."""
    return dilation if index > reduction_layers(layers)[1] and not reduction else 1


@dataclass(frozen=True)
class CellSlot:
    """Where one cell stands in the stack and the channels it takes and gives."""

    index: int
    reduction: bool
    reduction_prev: bool
    c_prev_prev: int
    c_prev: int
    c: int  # channels of each of the cell's nodes
    c_out: int  # channels of its output: the concatenated nodes


def cell_slots(stem: StemLayout, layers: int, multiplier: Callable[[bool], int]) -> list[CellSlot]:
    """The slots of ``layers`` cells after ``stem``; ``multiplier(reduction)`` is how many nodes a normal
    (False) or reduction (True) cell concatenates."""
    reductions = reduction_layers(layers)
    c_prev_prev, c_prev, c, reduction_prev = stem.c_prev_prev, stem.c_prev, stem.c_curr, stem.reduction_prev
    slots = []
    for i in range(layers):
        reduction = i in reductions
        if reduction:
            c *= 2
        c_out = multiplier(reduction) * c
        slots.append(CellSlot(i, reduction, reduction_prev, c_prev_prev, c_prev, c, c_out))
        reduction_prev = reduction
        c_prev_prev, c_prev = c_prev, c_out
    return slots
