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
* input of any size that is a multiple of 32 (global pooling is the only size-dependent step, so no layer
  fixes the input size), used with the aspect-preserving preprocessing policy.

Model contract (:class:`~aestheticnet.models.contract.ScoringModel`; timm's ``forward_features`` -> feature map,
``forward_head`` -> distribution, ``forward`` = both). ``forward`` always returns one tensor; training with the
auxiliary head uses ``forward_train``. The model owns its drop-path schedule
(:meth:`AestheticNet.set_training_progress`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from aestheticnet.configs import problems_of, raise_problems, reject_unknown, type_problems
from aestheticnet.models.cbam import CBAM
from aestheticnet.models.cells import Cell
from aestheticnet.models.contract import Part
from aestheticnet.models.head import DistributionHead
from aestheticnet.models.input_norm import INPUT_NORMS, make_input_norm
from aestheticnet.nas.genotypes import Genotype, resolve_genotype
from aestheticnet.nas.network_plan import stage_of
from aestheticnet.nas.stem import (
    build_stem,
    cell_dilation,
    cell_slots,
    check_stem,
    input_multiple,
    reduction_layers,
    run_stem,
)

__all__ = [
    "AestheticNetConfig",
    "AestheticNetStarConfig",
    "AestheticNet",
    "AuxiliaryHead",
    "check_image_batch",
    "count_parameters",
]


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
        raise_problems(self, type_problems(self))
        stem_problem = check_stem(self.stem)
        problems = problems_of(
            [
                (stem_problem is None, stem_problem or ""),
                (self.layers >= 3, f"layers={self.layers} (need >= 3 for two reduction cells)"),
                (
                    self.init_channels >= 2 and self.init_channels % 2 == 0,
                    f"init_channels={self.init_channels} (need an even number >= 2)",
                ),
                (self.num_buckets >= 2, f"num_buckets={self.num_buckets} (need >= 2)"),
                (0.0 <= self.drop_path < 1.0, f"drop_path={self.drop_path} (need 0 <= p < 1)"),
                (0.0 <= self.head_dropout < 1.0, f"head_dropout={self.head_dropout} (need 0 <= p < 1)"),
                (self.dilation >= 1, f"dilation={self.dilation} (need >= 1)"),
                (self.input_norm in INPUT_NORMS, f"input_norm={self.input_norm!r} (valid: {', '.join(INPUT_NORMS)})"),
                (self.cbam_reduction >= 1, f"cbam_reduction={self.cbam_reduction} (need >= 1)"),
            ]
        )
        raise_problems(self, problems)

    @property
    def input_multiple(self) -> int:
        return input_multiple(self.stem)

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
        reject_unknown(cls, data, source)
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


class AestheticNet(DistributionHead, nn.Module):
    """``variant``: its registry name; ``preprocessing``: the ``preprocess`` its model file records (the variant's
    default when built); ``metadata``: the header of the model file it was loaded from."""

    def __init__(
        self,
        config: AestheticNetConfig,
        variant: str,
        preprocessing: Mapping[str, Any],
        metadata: dict[str, Any] | None = None,
    ):
        super().__init__()
        self.config = config
        self.variant = variant
        self.preprocessing = dict(preprocessing)
        self.metadata = metadata
        self._drop_path = 0.0  # the rate of this epoch, up to config.drop_path (set_training_progress)
        c, layers, genotype = config.init_channels, config.layers, config.genotype
        self.input_norm = make_input_norm(config.input_norm)
        stem = build_stem(config.stem, INPUT_NORMS[config.input_norm], c)
        self.stem0, self.stem1 = stem.stem0, stem.stem1
        self.reduction_layers = reduction_layers(layers)
        concat = {False: len(genotype.normal_concat), True: len(genotype.reduce_concat)}
        slots = cell_slots(stem, layers, concat.__getitem__)
        self.cells = nn.ModuleList(
            Cell(
                genotype,
                slot.c_prev_prev,
                slot.c_prev,
                slot.c,
                slot.reduction,
                slot.reduction_prev,
                cell_dilation(slot.index, slot.reduction, layers, config.dilation),
            )
            for slot in slots
        )
        self.num_features = c_prev = slots[-1].c_out
        aux_channels = slots[self.reduction_layers[1]].c_out
        self.auxiliary_head = AuxiliaryHead(aux_channels, config.num_buckets) if config.auxiliary else None
        self.attention = CBAM(c_prev, config.cbam_reduction) if config.cbam else nn.Identity()
        self.head_drop = nn.Dropout(config.head_dropout)
        self.head = nn.Linear(c_prev, config.num_buckets)

    @property
    def input_multiple(self) -> int:
        return self.config.input_multiple

    @property
    def genotype(self) -> Genotype:
        return self.config.genotype

    def parts(self) -> list[Part]:
        """Input normalisation, stem, cells, attention and head, in the order ``forward`` runs them."""
        found = [Part("input_norm", self.input_norm, "stem", "input_norm")] if self.config.input_norm != "none" else []
        found.append(Part("stem0", self.stem0, "stem", "stem"))
        if self.stem1 is not None:
            found.append(Part("stem1", self.stem1, "stem", "stem"))
        for i, cell in enumerate(self.cells):
            stage = stage_of(i, self.reduction_layers)
            kind = "reduce" if cell.reduction else "normal"
            found.append(Part(f"cells.{i}", cell, stage, kind, cell.pieces(f"cells.{i}", stage)))
        if self.config.cbam:
            found.append(Part("attention", self.attention, "attention", "cbam"))
        return [*found, Part("head", self.head, "head", "linear")]

    def set_drop_path(self, rate: float) -> None:
        """The probability with which the cells drop each non-identity path while training."""
        if not 0.0 <= rate < 1.0:
            raise ValueError(f"drop-path rate {rate} (need 0 <= p < 1)")
        self._drop_path = float(rate)

    def set_training_progress(self, epoch: int, epochs: int) -> None:
        """DARTS' drop-path schedule: linear from 0 at the first epoch towards ``config.drop_path``."""
        self.set_drop_path(self.config.drop_path * epoch / epochs)

    def check_input(self, x: torch.Tensor) -> None:
        check_image_batch(x, self.input_multiple)

    def _cells(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        self.check_input(x)
        s0, s1 = run_stem(self.stem0, self.stem1, self.input_norm(x))
        aux_features = None
        for i, cell in enumerate(self.cells):
            s0, s1 = s1, cell(s0, s1, self._drop_path)
            if i == self.reduction_layers[1]:
                aux_features = s1
        return self.attention(s1), aux_features

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self._cells(x)[0]

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
        stems = ["stem0"] + (["stem1"] if self.stem1 is not None else [])
        return stems + [f"cells.{i}" for i in range(len(self.cells))]


def check_image_batch(x: torch.Tensor, multiple: int) -> None:
    """Refuse anything but an (N, 3, H, W) batch with H and W multiples of the network's total stride."""
    if x.dim() != 4 or x.shape[1] != 3:
        raise ValueError(f"expected a float batch of shape (N, 3, H, W), got shape {tuple(x.shape)}")
    h, w = x.shape[2], x.shape[3]
    if h % multiple != 0 or w % multiple != 0:
        raise ValueError(
            f"input size {int(h)}x{int(w)} (HxW) is not accepted: height and width must be multiples of {multiple} "
            f"(total stride of the network); resize or let the preprocessing round the size"
        )


def count_parameters(model: nn.Module, exclude_auxiliary: bool = True) -> int:
    return sum(p.numel() for name, p in model.named_parameters() if not (exclude_auxiliary and "auxiliary" in name))
