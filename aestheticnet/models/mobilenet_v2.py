"""NIMA-MobileNetV2: the baseline a phone user would otherwise pick, built and exported like AestheticNet.

MobileNetV2 1.0 (Sandler et al., "MobileNetV2: Inverted Residuals and Linear Bottlenecks", CVPR 2018): a 3x3
stem of 32 channels at stride 2, the inverted residual blocks of the paper's table 2 (expand 1x1 with ReLU6,
depthwise 3x3 with ReLU6, linear 1x1 projection; a residual where stride is 1 and the width is unchanged), a 1x1
convolution to 1280 channels and global average pooling. With a 1000-class classifier it has the published
3,504,872 parameters and about 300 M multiply-adds at 224x224 (tests/test_mobilenet_v2.py checks both).

The head is NIMA's (Talebi and Milanfar, "NIMA: Neural Image Assessment", IEEE TIP 2018): the classifier is
replaced by dropout 0.75 and a fully connected layer to the 10 score buckets followed by a softmax, so the output
is the same distribution over buckets 1..N as AestheticNet's and every export, runtime and scoring path takes it
unchanged. Global pooling is the only size-dependent step, so any input that is a multiple of 32 runs.

``width`` is the paper's width multiplier: every layer's channels times ``width``, rounded to a multiple of 8 as
the reference implementation rounds them, except that the last convolution keeps 1280 channels below 1.0 (the
paper: "for multipliers less than one, we apply width multiplier to all layers except the very last
convolutional layer"). At 0.5 and 0.75 the ImageNet network has the published 97 M and 209 M multiply-adds.
``input_norm`` puts the same parameter-free local contrast normalisation in front of the stem that AestheticNet
takes (models/input_norm.py), so that both can be trained with one recipe.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from aestheticnet.configs import problems_of, raise_problems, reject_unknown, type_problems
from aestheticnet.models.aestheticnet import check_image_batch
from aestheticnet.models.contract import Part
from aestheticnet.models.head import DistributionHead
from aestheticnet.models.input_norm import INPUT_NORMS, make_input_norm

__all__ = [
    "INVERTED_RESIDUALS",
    "LAST_CHANNELS",
    "STEM_CHANNELS",
    "InvertedResidual",
    "MobileNetV2",
    "MobileNetV2Config",
]

# (t, c, n, s): expansion factor, output channels, repeats, stride of the first repeat (the paper's table 2).
INVERTED_RESIDUALS = (
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
)
STEM_CHANNELS = 32
LAST_CHANNELS = 1280
TOTAL_STRIDE = 32  # the stem and four stride-2 stages


@dataclass(frozen=True)
class MobileNetV2Config:
    """Everything needed to rebuild the network. Saved in every checkpoint."""

    num_buckets: int = 10  # 1000 gives the ImageNet classifier whose published size the tests check
    head_dropout: float = 0.75  # NIMA's dropout before the last layer
    width: float = 1.0  # the width multiplier (0.5, 0.75, 1.0, 1.4 are the published ones)
    input_norm: str = "none"  # "mscn" / "lcn": as AestheticNet's (models/input_norm.py)

    def __post_init__(self) -> None:
        raise_problems(self, type_problems(self))
        raise_problems(
            self,
            problems_of(
                [
                    (self.num_buckets >= 2, f"num_buckets={self.num_buckets} (need >= 2)"),
                    (0.0 <= self.head_dropout < 1.0, f"head_dropout={self.head_dropout} (need 0 <= p < 1)"),
                    (0.1 <= self.width <= 4.0, f"width={self.width} (need 0.1 <= width <= 4)"),
                    (
                        self.input_norm in INPUT_NORMS,
                        f"input_norm={self.input_norm!r} (valid: {', '.join(INPUT_NORMS)})",
                    ),
                ]
            ),
        )

    @property
    def input_multiple(self) -> int:
        return TOTAL_STRIDE

    def replace(self, **changes: Any) -> "MobileNetV2Config":
        # Refused by name: AestheticNet's options (genotype, layers, ...) mean nothing to this network.
        reject_unknown(type(self), changes, "model overrides")
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "config") -> "MobileNetV2Config":
        reject_unknown(cls, data, source)
        return cls(**data)


def scaled_channels(channels: int, width: float, divisor: int = 8) -> int:
    """``channels * width`` rounded to the nearest multiple of ``divisor``, never below ``divisor`` and never more
    than 10 % under the exact product (the reference implementation's rounding)."""
    rounded = max(divisor, int(channels * width + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * channels * width else rounded


def last_channels(width: float) -> int:
    return scaled_channels(LAST_CHANNELS, max(1.0, width))


def conv_bn_relu6(c_in: int, c_out: int, kernel: int, stride: int = 1, groups: int = 1) -> nn.Sequential:
    # One Sequential per Conv -> BN pair: the exporter folds each BN into its convolution.
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, kernel, stride, kernel // 2, groups=groups, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU6(inplace=False),
    )


class InvertedResidual(nn.Module):
    def __init__(self, c_in: int, c_out: int, stride: int, expansion: int):
        super().__init__()
        hidden = c_in * expansion
        expand = [conv_bn_relu6(c_in, hidden, 1)] if expansion != 1 else []
        self.block = nn.Sequential(
            *expand,
            conv_bn_relu6(hidden, hidden, 3, stride, groups=hidden),
            nn.Conv2d(hidden, c_out, 1, bias=False),  # linear bottleneck: no activation after the projection
            nn.BatchNorm2d(c_out),
        )
        self.residual = stride == 1 and c_in == c_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.block(x) if self.residual else self.block(x)


def _feature_groups() -> list[tuple[str, str]]:
    """(group, kind) of every layer of ``_features()``: a row of the paper's table 2 is one stage."""
    rows = enumerate(INVERTED_RESIDUALS)
    blocks = [(f"stage{row + 1}", "inverted_residual") for row, (_t, _c, n, _s) in rows for _ in range(n)]
    return [("stem", "stem"), *blocks, ("last_conv", "conv_1x1")]


def _features(width: float, in_channels: int) -> nn.Sequential:
    c_in = scaled_channels(STEM_CHANNELS, width)
    layers: list[nn.Module] = [conv_bn_relu6(in_channels, c_in, 3, 2)]
    for t, c, n, s in INVERTED_RESIDUALS:
        c_out = scaled_channels(c, width)
        for i in range(n):
            layers.append(InvertedResidual(c_in, c_out, s if i == 0 else 1, t))
            c_in = c_out
    layers.append(conv_bn_relu6(c_in, last_channels(width), 1))
    return nn.Sequential(*layers)


class MobileNetV2(DistributionHead, nn.Module):
    """MobileNetV2 features at ``config.width``, global average pooling, dropout and a softmax over
    ``num_buckets``."""

    def __init__(
        self,
        config: MobileNetV2Config,
        variant: str,
        preprocessing: Mapping[str, Any],
        metadata: dict[str, Any] | None = None,
    ):
        super().__init__()
        self.config = config
        self.variant = variant
        self.preprocessing = dict(preprocessing)
        self.metadata = metadata
        self.input_norm = make_input_norm(config.input_norm)
        self.features = _features(config.width, INPUT_NORMS[config.input_norm])
        self.num_features = last_channels(config.width)
        self.auxiliary_head = None  # NIMA trains on the main head alone
        self.head_drop = nn.Dropout(config.head_dropout)
        self.head = nn.Linear(self.num_features, config.num_buckets)
        self._init_weights()

    def _init_weights(self) -> None:
        # The reference initialisation of MobileNetV2: He (fan-out) convolutions, unit BN, a small classifier.
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0, 0.01)
                nn.init.zeros_(m.bias)

    @property
    def input_multiple(self) -> int:
        return self.config.input_multiple

    @property
    def genotype(self) -> None:
        return None

    def parts(self) -> list[Part]:
        """The stem, every inverted residual block, the last convolution and the head, in the order they run."""
        layers = [
            Part(f"features.{i}", layer, group, kind)
            for i, (layer, (group, kind)) in enumerate(zip(self.features, _feature_groups(), strict=True))
        ]
        norm = [Part("input_norm", self.input_norm, "stem", "input_norm")] if self.config.input_norm != "none" else []
        return [*norm, *layers, Part("head", self.head, "head", "linear")]

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        check_image_batch(x, self.input_multiple)
        return self.features(self.input_norm(x))

    def forward_train(self, x: torch.Tensor) -> tuple[torch.Tensor, None]:
        return self.forward(x), None

    def set_training_progress(self, epoch: int, epochs: int) -> None:
        """Nothing in the network follows the epoch (no drop-path)."""

    def stage_names(self) -> list[str]:
        """Named points whose output shapes `info` reports: the stem, every block and the last convolution."""
        return [f"features.{i}" for i in range(len(self.features))]
