"""AestheticNet and AestheticNet*: a stack of searched cells predicting a distribution over score buckets.

Layout (DARTS ImageNet network, Liu et al. 2019): a stem of total stride 8, ``layers`` cells with reduction
cells at 1/3 and 2/3 of the depth (total stride 32), global average pooling and a linear head followed by a
softmax over ``num_buckets`` score buckets (bucket k means score k, k = 1..N).

AestheticNet* adds, on the same skeleton:
* CBAM attention on the last feature map (the tail of the feature extractor);
* dilated separable convolutions in the normal cells of the last stage (``dilation``, default 2): at stride
  32 the map is small and a wider window costs nothing in parameters, so the receptive field covers the
  whole composition; ``dil_conv_*`` ops are already dilated and pools/skips have nothing to dilate, so they
  stay as they are;
* input of any size that is a multiple of 32 (global pooling only: GUIDE.md rule 2), used with the
  aspect-preserving preprocessing policy.

Model contract (timm): ``forward_features`` -> feature map, ``forward_head`` -> distribution,
``forward`` = both. ``forward`` always returns one tensor; training with the auxiliary head uses
``forward_train``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from aestheticnet.models.cbam import CBAM
from aestheticnet.models.cells import Cell
from aestheticnet.models.input_norm import INPUT_NORMS, make_input_norm
from aestheticnet.nas.genotypes import Genotype, resolve_genotype

__all__ = [
    "AestheticNetConfig",
    "AestheticNetStarConfig",
    "AestheticNet",
    "AuxiliaryHead",
    "STEM_STRIDE",
    "count_parameters",
]

STEM_STRIDE = {"imagenet": 8, "cifar": 1}


@dataclass(frozen=True)
class AestheticNetConfig:
    """Everything needed to rebuild the network. Saved in every checkpoint."""

    genotype: Genotype = field(default_factory=lambda: resolve_genotype("PDARTS"))
    genotype_name: str = "PDARTS"  # informational: the genotype itself is stored above
    init_channels: int = 36
    layers: int = 20
    num_buckets: int = 10
    stem: str = "imagenet"  # "cifar" only to check cells against the published CIFAR networks
    drop_path: float = 0.0  # maximum drop-path probability; the trainer ramps it up over epochs
    auxiliary: bool = False  # auxiliary head at 2/3 depth, for training only, never exported
    head_dropout: float = 0.0
    cbam: bool = False
    cbam_reduction: int = 16
    dilation: int = 1  # dilation of sep_conv ops in the last stage's normal cells
    input_norm: str = "none"  # "lcn": local contrast normalised channels next to the input (models/input_norm.py)

    def __post_init__(self) -> None:
        problems = []
        if self.stem not in STEM_STRIDE:
            problems.append(f"stem={self.stem!r} (valid: {', '.join(STEM_STRIDE)})")
        if self.layers < 3:
            problems.append(f"layers={self.layers} (need >= 3 for two reduction cells)")
        if self.init_channels < 2 or self.init_channels % 2:
            problems.append(f"init_channels={self.init_channels} (need an even number >= 2)")
        if self.num_buckets < 2:
            problems.append(f"num_buckets={self.num_buckets} (need >= 2)")
        if not 0.0 <= self.drop_path < 1.0:
            problems.append(f"drop_path={self.drop_path} (need 0 <= p < 1)")
        if not 0.0 <= self.head_dropout < 1.0:
            problems.append(f"head_dropout={self.head_dropout} (need 0 <= p < 1)")
        if self.dilation < 1:
            problems.append(f"dilation={self.dilation} (need >= 1)")
        if self.input_norm not in INPUT_NORMS:
            problems.append(f"input_norm={self.input_norm!r} (valid: {', '.join(INPUT_NORMS)})")
        if self.cbam_reduction < 1:
            problems.append(f"cbam_reduction={self.cbam_reduction} (need >= 1)")
        if problems:
            raise ValueError(f"{type(self).__name__}: bad value(s): {'; '.join(problems)}")

    @property
    def input_multiple(self) -> int:
        # Stem stride times the two stride-2 reductions; FactorizedReduce needs even sizes at each of them.
        return STEM_STRIDE[self.stem] * 4

    def replace(self, **changes: Any) -> "AestheticNetConfig":
        if "genotype" in changes and not isinstance(changes["genotype"], Genotype):
            name = changes["genotype"]
            changes["genotype"] = resolve_genotype(name)
            changes.setdefault("genotype_name", str(name))
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        d = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        d["genotype"] = self.genotype.to_dict()
        return d

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "config") -> "AestheticNetConfig":
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ValueError(f"{source}: unknown {cls.__name__} key(s) {unknown}; valid keys: {sorted(names)}")
        values = dict(data)
        g = values.get("genotype")
        if isinstance(g, dict):
            values["genotype"] = Genotype.from_dict(g, source=f"{source} genotype")
        elif g is not None and not isinstance(g, Genotype):
            values["genotype"] = resolve_genotype(g)
            values.setdefault("genotype_name", str(g))
        return cls(**values)


@dataclass(frozen=True)
class AestheticNetStarConfig(AestheticNetConfig):
    cbam: bool = True
    dilation: int = 2


class AuxiliaryHead(nn.Module):
    """Auxiliary prediction from the 2/3-depth features (DARTS' auxiliary tower), for any input size.

    The reference tower pools with a fixed window sized for 8x8 or 14x14 maps; global pooling keeps it valid
    at every resolution. It only ever adds a training loss.
    """

    def __init__(self, c: int, num_buckets: int):
        super().__init__()
        self.features = nn.Sequential(
            nn.ReLU(inplace=False),
            nn.Conv2d(c, 128, 1, bias=False),
            nn.BatchNorm2d(128),
            nn.ReLU(inplace=False),
            nn.Conv2d(128, 768, 1, bias=False),
            nn.BatchNorm2d(768),
            nn.ReLU(inplace=False),
        )
        self.classifier = nn.Linear(768, num_buckets)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.classifier(self.features(x).mean(dim=(2, 3))), dim=1)


class AestheticNet(nn.Module):
    def __init__(self, config: AestheticNetConfig):
        super().__init__()
        self.config = config
        self.drop_path_prob = 0.0  # set by the trainer each epoch, up to config.drop_path
        c, layers, genotype = config.init_channels, config.layers, config.genotype
        self.input_norm = make_input_norm(config.input_norm)
        c_in = INPUT_NORMS[config.input_norm]
        if config.stem == "imagenet":
            # Two stride-2 stages: stem0 feeds cell 0 as s0 at stride 4, stem1 as s1 at stride 8.
            self.stem0 = nn.Sequential(
                nn.Conv2d(c_in, c // 2, 3, stride=2, padding=1, bias=False),
                nn.BatchNorm2d(c // 2),
                nn.ReLU(inplace=False),
                nn.Conv2d(c // 2, c, 3, stride=2, padding=1, bias=False),
                nn.BatchNorm2d(c),
            )
            self.stem1 = nn.Sequential(
                nn.ReLU(inplace=False),
                nn.Conv2d(c, c, 3, stride=2, padding=1, bias=False),
                nn.BatchNorm2d(c),
            )
            c_prev_prev, c_prev, c_curr, reduction_prev = c, c, c, True
        else:
            stem_multiplier = 3
            self.stem0 = nn.Sequential(
                nn.Conv2d(c_in, stem_multiplier * c, 3, padding=1, bias=False),
                nn.BatchNorm2d(stem_multiplier * c),
            )
            self.stem1 = None
            c_prev_prev = c_prev = stem_multiplier * c
            c_curr, reduction_prev = c, False

        self.reduction_layers = (layers // 3, 2 * layers // 3)
        self.cells = nn.ModuleList()
        aux_channels = c_prev
        for i in range(layers):
            reduction = i in self.reduction_layers
            if reduction:
                c_curr *= 2
            last_stage = i > self.reduction_layers[1]
            dilation = config.dilation if last_stage and not reduction else 1
            cell = Cell(genotype, c_prev_prev, c_prev, c_curr, reduction, reduction_prev, dilation)
            self.cells.append(cell)
            reduction_prev = reduction
            c_prev_prev, c_prev = c_prev, cell.multiplier * c_curr
            if i == self.reduction_layers[1]:
                aux_channels = c_prev
        self.num_features = c_prev
        self.auxiliary_head = AuxiliaryHead(aux_channels, config.num_buckets) if config.auxiliary else None
        self.attention = CBAM(c_prev, config.cbam_reduction) if config.cbam else nn.Identity()
        self.head_drop = nn.Dropout(config.head_dropout)
        self.head = nn.Linear(c_prev, config.num_buckets)

    @property
    def input_multiple(self) -> int:
        return self.config.input_multiple

    def check_input(self, x: torch.Tensor) -> None:
        if x.dim() != 4 or x.shape[1] != 3:
            raise ValueError(f"expected a float batch of shape (N, 3, H, W), got shape {tuple(x.shape)}")
        h, w = x.shape[2], x.shape[3]
        m = self.input_multiple
        if h % m != 0 or w % m != 0:
            raise ValueError(
                f"input size {int(h)}x{int(w)} (HxW) is not accepted: height and width must be multiples of {m} "
                f"(total stride of the network); resize or let the preprocessing round the size"
            )

    def _stem(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        s0 = self.stem0(self.input_norm(x))
        s1 = self.stem1(s0) if self.stem1 is not None else s0
        return s0, s1

    def _cells(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        self.check_input(x)
        s0, s1 = self._stem(x)
        aux_features = None
        for i, cell in enumerate(self.cells):
            s0, s1 = s1, cell(s0, s1, self.drop_path_prob)
            if i == self.reduction_layers[1]:
                aux_features = s1
        return self.attention(s1), aux_features

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self._cells(x)[0]

    def forward_head(self, features: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        pooled = features.mean(dim=(2, 3))
        if pre_logits:
            return pooled
        return torch.softmax(self.head(self.head_drop(pooled)), dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))

    def forward_train(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Main distribution and, when the auxiliary head exists and the model trains, its distribution."""
        features, aux_features = self._cells(x)
        dist = self.forward_head(features)
        aux = None
        if self.auxiliary_head is not None and self.training and aux_features is not None:
            aux = self.auxiliary_head(aux_features)
        return dist, aux

    def stage_names(self) -> list[str]:
        """Named points whose output shapes `info` reports."""
        return ["stem0"] + (["stem1"] if self.stem1 is not None else []) + [f"cells.{i}" for i in range(len(self.cells))]


def count_parameters(model: nn.Module, exclude_auxiliary: bool = True) -> int:
    return sum(
        p.numel() for name, p in model.named_parameters() if not (exclude_auxiliary and "auxiliary" in name)
    )

