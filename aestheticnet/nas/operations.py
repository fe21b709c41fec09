"""The one table of candidate operations, shared by the search supernet and the final networks.

The eight primitives follow DARTS (Liu et al., 2019, arXiv:1806.09055) and P-DARTS (Chen et al., 2019,
arXiv:1904.12760). Two blocks differ from the reference code on purpose, because the reference forms export
wrongly (measured on ONNX -> onnx2tf -> TFLite with dynamic H and W):

* ``FactorizedReduce`` does not slice ``x[:, :, 1:, 1:]``: onnx2tf converts that slice wrongly under dynamic
  shapes. Its second branch is a stride-2 convolution with a 2x2 kernel built at forward time from the 1x1
  weight, placed at the bottom-right tap. On even sizes the result is identical, and the parameter count is
  the reference one.
* ``AvgPool3x3`` with ``count_include_pad=False`` is written as ``pool(x) / pool(ones)`` with padded zeros
  counted in both, which is exact and converts with the right divisor under dynamic shapes.
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "PRIMITIVES",
    "OPS",
    "make_op",
    "ReLUConvBN",
    "SepConv",
    "DilConv",
    "FactorizedReduce",
    "AvgPool3x3",
    "Identity",
    "Zero",
]

# Order matters: the search strategy indexes architecture weights by position in this list.
PRIMITIVES: tuple[str, ...] = (
    "none",
    "max_pool_3x3",
    "avg_pool_3x3",
    "skip_connect",
    "sep_conv_3x3",
    "sep_conv_5x5",
    "dil_conv_3x3",
    "dil_conv_5x5",
)


class ReLUConvBN(nn.Module):
    """ReLU -> conv -> BN, the preprocessing block of every cell input."""

    def __init__(self, c_in: int, c_out: int, kernel_size: int, stride: int, padding: int, affine: bool = True):
        super().__init__()
        self.op = nn.Sequential(
            nn.ReLU(inplace=False),
            nn.Conv2d(c_in, c_out, kernel_size, stride=stride, padding=padding, bias=False),
            nn.BatchNorm2d(c_out, affine=affine),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.op(x)


class DilConv(nn.Module):
    """ReLU -> dilated depthwise conv -> pointwise conv -> BN."""

    def __init__(
        self, c_in: int, c_out: int, kernel_size: int, stride: int, padding: int, dilation: int, affine: bool = True
    ):
        super().__init__()
        self.op = nn.Sequential(
            nn.ReLU(inplace=False),
            nn.Conv2d(c_in, c_in, kernel_size, stride, padding, dilation=dilation, groups=c_in, bias=False),
            nn.Conv2d(c_in, c_out, 1, bias=False),
            nn.BatchNorm2d(c_out, affine=affine),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.op(x)


class SepConv(nn.Module):
    """Two stacked depthwise-separable convolutions (the first carries the stride).

    ``dilation`` > 1 is the AestheticNet* variant: the same weights see a wider window, so the receptive field
    grows without parameters or resolution loss.
    """

    def __init__(
        self, c_in: int, c_out: int, kernel_size: int, stride: int, padding: int, affine: bool = True, dilation: int = 1
    ):
        super().__init__()
        pad = padding * dilation
        self.op = nn.Sequential(
            nn.ReLU(inplace=False),
            nn.Conv2d(c_in, c_in, kernel_size, stride, pad, dilation=dilation, groups=c_in, bias=False),
            nn.Conv2d(c_in, c_in, 1, bias=False),
            nn.BatchNorm2d(c_in, affine=affine),
            nn.ReLU(inplace=False),
            nn.Conv2d(c_in, c_in, kernel_size, 1, pad, dilation=dilation, groups=c_in, bias=False),
            nn.Conv2d(c_in, c_out, 1, bias=False),
            nn.BatchNorm2d(c_out, affine=affine),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.op(x)


class Identity(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


class Zero(nn.Module):
    """The `none` op: contributes nothing. Only the supernet ever holds one, and it never computes it."""

    def __init__(self, stride: int):
        super().__init__()
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride == 1:
            return x.mul(0.0)
        return x[:, :, :: self.stride, :: self.stride].mul(0.0)


class FactorizedReduce(nn.Module):
    """Halve the resolution with two 1x1 stride-2 convolutions offset by one pixel, concatenated.

    The reference samples the second branch from ``x[:, :, 1:, 1:]``. Here the same sampling is a stride-2
    convolution whose 2x2 kernel holds the 1x1 weight at the bottom-right tap; the kernel is built at forward
    time, so ``conv_2.weight`` keeps the reference shape and parameter count. Needs even H and W (the network
    enforces multiples of 32).
    """

    def __init__(self, c_in: int, c_out: int, affine: bool = True):
        super().__init__()
        if c_out % 2 != 0:
            raise ValueError(f"FactorizedReduce needs an even number of output channels, got c_out={c_out}")
        self.relu = nn.ReLU(inplace=False)
        self.conv_1 = nn.Conv2d(c_in, c_out // 2, 1, stride=2, padding=0, bias=False)
        self.conv_2 = nn.Conv2d(c_in, c_out // 2, 1, stride=2, padding=0, bias=False)
        self.bn = nn.BatchNorm2d(c_out, affine=affine)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(x)
        # (left, right, top, bottom) zero padding of the kernel puts the 1x1 tap at position (1, 1).
        shifted_kernel = F.pad(self.conv_2.weight, (1, 0, 1, 0))
        out = torch.cat([self.conv_1(x), F.conv2d(x, shifted_kernel, stride=2)], dim=1)
        return self.bn(out)


class AvgPool3x3(nn.Module):
    """3x3 average pooling that ignores padded zeros (``count_include_pad=False``), in an export-safe form.

    Both poolings count the padding, so the quotient divides each window sum by the number of real pixels in
    it. The ones tensor has one channel and broadcasts over the channels of ``x``.
    """

    def __init__(self, stride: int):
        super().__init__()
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        window_sum = F.avg_pool2d(x, 3, self.stride, padding=1, count_include_pad=True)
        ones = torch.ones_like(x[:1, :1])
        valid_fraction = F.avg_pool2d(ones, 3, self.stride, padding=1, count_include_pad=True)
        return window_sum / valid_fraction


OpFactory = Callable[[int, int, bool], nn.Module]

# name -> constructor(C, stride, affine). The search network adds BN after pooling ops itself (as DARTS does).
OPS: dict[str, OpFactory] = {
    "none": lambda c, stride, affine: Zero(stride),
    "max_pool_3x3": lambda c, stride, affine: nn.MaxPool2d(3, stride=stride, padding=1),
    "avg_pool_3x3": lambda c, stride, affine: AvgPool3x3(stride),
    "skip_connect": lambda c, stride, affine: Identity() if stride == 1 else FactorizedReduce(c, c, affine),
    "sep_conv_3x3": lambda c, stride, affine: SepConv(c, c, 3, stride, 1, affine),
    "sep_conv_5x5": lambda c, stride, affine: SepConv(c, c, 5, stride, 2, affine),
    "dil_conv_3x3": lambda c, stride, affine: DilConv(c, c, 3, stride, 2, 2, affine),
    "dil_conv_5x5": lambda c, stride, affine: DilConv(c, c, 5, stride, 4, 2, affine),
}

if tuple(OPS) != PRIMITIVES:  # one table: a primitive without a constructor is a bug at import time
    raise RuntimeError("OPS and PRIMITIVES disagree")


def make_op(name: str, c: int, stride: int, affine: bool = True, dilation: int = 1) -> nn.Module:
    """Build one candidate op. ``dilation`` > 1 dilates separable convolutions (AestheticNet*); other ops
    ignore it (dil_conv ops are already dilated, pools and skips have nothing to dilate)."""
    if name not in OPS:
        raise ValueError(f"unknown operation {name!r}; valid operations: {', '.join(PRIMITIVES)}")
    if dilation > 1 and name.startswith("sep_conv_"):
        k = int(name[-1])
        return SepConv(c, c, k, stride, k // 2, affine, dilation=dilation)
    return OPS[name](c, stride, affine)
