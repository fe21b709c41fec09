"""Pipeline configuration: one dataclass per step, read from TOML, validated before any work starts.

A TOML file has one table per step; keys of a table are that section's fields, and for ``[search]`` and
``[train]`` also any SearchConfig / TrainConfig field, which are passed through. An unknown key or a bad
value fails with its dotted name (``search.epochs_scal``) before anything runs. The defaults are the demo:
the synthetic dataset, sized to finish the whole pipeline in about 7 minutes on 2 cores.
"""

from __future__ import annotations

import copy
import dataclasses
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aestheticnet.artifacts import ArtifactError, Format, Precision, parse_formats, parse_precisions
from aestheticnet.io import read_parsed
from aestheticnet.nas.strategy import PRESETS, SearchConfig
from aestheticnet.sizes import MAX_BATCH, MAX_SIDE, SIZE_MULTIPLE, Shape, SizeError, parse_shape
from aestheticnet.train.config import TrainConfig

__all__ = ["PipelineConfig", "load_pipeline_config"]


@dataclass(frozen=True)
class DataSection:
    path: str = ""  # dataset folder; empty = the synthetic default (labels are synthetic)
    synthetic_seed: int = 0
    synthetic_crops: int = 2  # crops per photo: 2 -> 1,396 images


@dataclass(frozen=True)
class SearchSection:
    enabled: bool = True
    genotype: str = ""  # skip the search and use this registered name or genotype.json
    preset: str = "pdarts_paper"
    epochs_scale: float = 0.08  # 25 epochs per stage -> 2, the first weights-only (the paper's proportions)
    # SearchConfig overrides (any field); the demo searches small and fast on the CPU: a smoke-sized search
    # that shows the method, not one that finds a better cell than the registered genotypes.
    overrides: dict[str, Any] = field(
        default_factory=lambda: {
            "resolution": 32,
            "init_channels": 8,
            "batch_size": 32,
            "proxy_fraction": 0.15,
        }
    )


@dataclass(frozen=True)
class TrainSection:
    variants: tuple[str, ...] = ("aestheticnet", "aestheticnet_star")
    parallel: bool = True  # train the variants at the same time, each on its share of the cores (training.py)
    # TrainConfig overrides (any field except data/variant/genotype, which the pipeline sets).
    # What generalises to photos never seen in training, in the demo's few minutes (measured on the synthetic
    # data, split by photo, and on quality ladders of 43 photos no demo model saw): MSCN input, so the network
    # sees distortions rather than the 10 photos' content (raw pixels: ladder rho 0.10); the photos' native
    # 192 px with random 192x192 crops (whole images: 0.42 against 0.72); C=16; lr 0.1, 8 epochs.
    overrides: dict[str, Any] = field(
        default_factory=lambda: {
            "layers": 5,
            "init_channels": 16,
            "input_norm": "mscn",
            "image_size": 192,
            "max_side": 256,
            "train_crop": 192,
            "epochs": 8,
            "batch_size": 32,
            "lr": 0.1,
            "group_by": "challenge",
            "num_workers": 0,
        }
    )
    # Settings for one variant on top of ``overrides`` (TOML: ``[train.per_variant.aestheticnet_star]``). The
    # within-photo ranking loss is AestheticNet*'s (at 3: ladder rho 0.83 on unseen photos, 0.02 without it, 0.61
    # at 1, 0.70 at 10); the fixed-square AestheticNet sees its photos resampled, and with that loss its validation
    # SROCC fell from about 0.57 to 0.35, so it trains on SW-EMD alone. Batches of 4 photos x 8 images give that
    # loss ~4x the pairs within a photo: trained alone (2 threads), ladder rho on 86 unseen crops 0.83 / 0.77 / 0.78
    # over seeds 0-2 against 0.66 / 0.67 / 0.76 with random batches (2 or 8 photos per batch: seed 1 at 0.56 and
    # 0.55); through the pipeline (docs/results/ranking.md) 0.70 / 0.68 / 0.82 against 0.77 / 0.73 / 0.67, and the
    # validation photos' ladders 0.79 against 0.69 on average. Drawing rare scores up to 8x as often (the pristine
    # crops: balance_scores), with patches on the JPEG grid: ladder rho on the unseen crops 0.82 / 0.83 / 0.87, every
    # ladder >= 0.72, against 0.68 / 0.68 / 0.84 with JPEG at 0.20 and noise at 0.45 in the worst seeds
    # (benchmarks/demo_seeds.py); validation SROCC 0.59 +- 0.08 against 0.42 +- 0.11.
    # The baseline, when a run adds it to the variants, at lr 0.02: at the demo's 0.1 NIMA-MobileNetV2 from scratch
    # collapses to one output within an epoch (benchmarks/accuracy_latency.py's --lr says what was measured).
    per_variant: dict[str, dict[str, Any]] = field(
        default_factory=lambda: {
            "aestheticnet_star": {"rank_weight": 3.0, "photos_per_batch": 4, "balance_scores": 8.0},
            "nima_mobilenet_v2": {"lr": 0.02},
        }
    )


def _enums(where: str, values, enum: type) -> tuple:
    """Config values (names or members) as members of ``enum``; an unknown name fails naming the key."""
    if not values:  # nothing to make or to time: a step can be emptied
        return ()
    parse = parse_formats if enum is Format else parse_precisions
    try:
        return tuple(parse(values))
    except ArtifactError as exc:
        raise ValueError(f"pipeline config: {where}: {exc}") from None


def _sizes(where: str, values) -> tuple[Shape, ...]:
    """Config sizes (strings in the one size grammar, or :class:`Shape` values) as shapes."""
    try:
        return tuple(v if isinstance(v, Shape) else parse_shape(v, where) for v in values)
    except SizeError as exc:
        raise ValueError(f"pipeline config: {exc}") from None


def _typed(section, **converters) -> None:
    for name, convert in converters.items():
        object.__setattr__(section, name, convert(getattr(section, name)))


@dataclass(frozen=True)
class ExportSection:
    variant: str = "aestheticnet_star"  # the phone model
    formats: tuple[Format, ...] = (Format.ONNX, Format.TFLITE, Format.COREML, Format.EXECUTORCH)
    precisions: tuple[Precision, ...] = (Precision.FP32, Precision.FP16, Precision.INT8)
    calibration_samples: int = 64
    # ExecuTorch's upper bounds (it plans memory for them); 0: batch 1 and the preprocessing's longest side.
    max_batch: int = 0
    max_side: int = 0

    def __post_init__(self) -> None:
        _typed(
            self,
            formats=lambda v: _enums("export.formats", v, Format),
            precisions=lambda v: _enums("export.precisions", v, Precision),
        )
        if not (self.max_batch == 0 or 1 <= self.max_batch <= MAX_BATCH):
            raise ValueError(f"pipeline config: export.max_batch={self.max_batch}: 0 (batch 1) or 1..{MAX_BATCH}")
        if not (self.max_side == 0 or (self.max_side % SIZE_MULTIPLE == 0 and 0 < self.max_side <= MAX_SIDE)):
            raise ValueError(
                f"pipeline config: export.max_side={self.max_side}: 0 (the preprocessing's longest side) or a "
                f"multiple of {SIZE_MULTIPLE} up to {MAX_SIDE}"
            )


@dataclass(frozen=True)
class VerifySection:
    shapes: tuple[Shape, ...] = (Shape(96, 128), Shape(128, 96), Shape(224, 224), Shape(96, 640))
    batch: int = 3  # each HxW shape is verified at this batch; an NxHxW shape with N > 1 at its own
    samples: int = 100  # real images for SROCC/PLCC between artifact and PyTorch

    def __post_init__(self) -> None:
        _typed(self, shapes=lambda v: _sizes("verify.shapes", v))


@dataclass(frozen=True)
class BenchSection:
    formats: tuple[Format, ...] = (Format.ONNX, Format.TFLITE, Format.EXECUTORCH)  # CoreML is never timed here
    precisions: tuple[Precision, ...] = (Precision.FP32, Precision.INT8)
    threads: tuple[int, ...] = (1, 2)
    shapes: tuple[Shape, ...] = (Shape(224, 224),)
    runs: int = 20
    warmup: int = 3

    def __post_init__(self) -> None:
        _typed(
            self,
            formats=lambda v: _enums("bench.formats", v, Format),
            precisions=lambda v: _enums("bench.precisions", v, Precision),
            shapes=lambda v: _sizes("bench.shapes", v),
        )


_SECTIONS = {
    "data": DataSection,
    "search": SearchSection,
    "train": TrainSection,
    "export": ExportSection,
    "verify": VerifySection,
    "bench": BenchSection,
}
_PASS_THROUGH = {"search": SearchConfig, "train": TrainConfig}
_PIPELINE_SET = {"train": {"data", "variant", "genotype"}, "search": set()}


def _plain(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    if isinstance(value, (Format, Precision)):
        return value.value
    if isinstance(value, Shape):
        return str(value)
    return copy.deepcopy(value)


def _fields(cls: type) -> dict[str, dataclasses.Field]:
    return {f.name: f for f in dataclasses.fields(cls)}


def _coerce(section: str, name: str, value: Any, default: Any) -> Any:
    where = f"{section}.{name}"
    if isinstance(default, tuple):
        if not isinstance(value, (list, tuple)):
            raise ValueError(f"pipeline config: {where} must be a list, got {value!r}")
        return tuple(value)
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise ValueError(f"pipeline config: {where} must be true or false, got {value!r}")
        return value
    if isinstance(default, (int, float)) and not isinstance(default, bool):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(f"pipeline config: {where} must be a number, got {value!r}")
        return type(default)(value) if isinstance(default, float) else value
    if isinstance(default, dict):
        # A table adds to the defaults (one variant's settings), it does not replace them; nor does a variant's
        # table replace that variant's default settings.
        if not isinstance(value, dict):
            raise ValueError(f"pipeline config: {where} must be a table, got {value!r}")
        nested = {
            k: {**default[k], **v} for k, v in value.items() if isinstance(default.get(k), dict) and isinstance(v, dict)
        }
        return {**default, **value, **nested}
    if isinstance(default, str) and not isinstance(value, str):
        raise ValueError(f"pipeline config: {where} must be a string, got {value!r}")
    return value


@dataclass(frozen=True)
class PipelineConfig:
    data: DataSection = DataSection()
    search: SearchSection = SearchSection()
    train: TrainSection = TrainSection()
    export: ExportSection = ExportSection()
    verify: VerifySection = VerifySection()
    bench: BenchSection = BenchSection()

    def __post_init__(self) -> None:
        self.validate()

    # ---- derived configs -------------------------------------------------------------------------------------
    def search_config(self) -> SearchConfig:
        s = self.search
        if s.preset not in PRESETS:
            raise ValueError(f"pipeline config: search.preset={s.preset!r}; valid presets: {sorted(PRESETS)}")
        if s.epochs_scale <= 0:
            raise ValueError(f"pipeline config: search.epochs_scale={s.epochs_scale} must be > 0")
        try:
            return SearchConfig.from_preset(s.preset, epochs_scale=s.epochs_scale, **s.overrides)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"pipeline config: [search]: {exc}") from None

    def train_config(self, variant: str, data: str, genotype: str) -> TrainConfig:
        try:
            own = self.train.per_variant.get(variant, {})
            fixed = {"data": data, "variant": variant, "genotype": genotype}
            return TrainConfig(**{**self.train.overrides, **own, **fixed})
        except (TypeError, ValueError) as exc:
            raise ValueError(f"pipeline config: [train]: {exc}") from None

    def validate(self) -> None:
        from aestheticnet.models.registry import list_models

        self.search_config()
        for v, settings in self.train.per_variant.items():
            if v not in list_models() or not isinstance(settings, dict):
                raise ValueError(f"pipeline config: train.per_variant.{v} must be a table for one of {list_models()}")
            unknown = sorted(set(settings) - set(_fields(TrainConfig)) | set(settings) & _PIPELINE_SET["train"])
            if unknown:
                raise ValueError(f"pipeline config: train.per_variant.{v} has unknown or pipeline-set keys {unknown}")
        for v in self.train.variants:
            if v not in list_models():
                raise ValueError(f"pipeline config: train.variants has {v!r}; valid: {list_models()}")
            self.train_config(v, "", "PDARTS")
        if self.export.variant not in self.train.variants:
            raise ValueError(f"pipeline config: export.variant={self.export.variant!r} is not in train.variants")
        if self.data.path and not Path(self.data.path).exists():
            raise ValueError(f"pipeline config: data.path={self.data.path!r} does not exist")
        if self.bench.runs < 1 or self.verify.batch < 1 or self.export.calibration_samples < 1:
            raise ValueError("pipeline config: bench.runs, verify.batch and export.calibration_samples must be >= 1")
        bad = [t for t in self.bench.threads if isinstance(t, bool) or not isinstance(t, int) or t < 1]
        if bad or not self.bench.threads:
            raise ValueError(f"pipeline config: bench.threads={list(self.bench.threads)}: need thread counts >= 1")
        if self.bench.warmup < 0:
            raise ValueError(f"pipeline config: bench.warmup={self.bench.warmup} must be >= 0")

    # ---- (de)serialisation -----------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """Plain JSON values: formats and precisions by name, sizes as ``"HxW"``."""
        out = {}
        for name in _SECTIONS:
            section = getattr(self, name)
            out[name] = {f.name: _plain(getattr(section, f.name)) for f in dataclasses.fields(section)}
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "PipelineConfig":
        unknown = sorted(set(data) - set(_SECTIONS))
        if unknown:
            raise ValueError(f"pipeline config: unknown section(s) {unknown}; valid: {sorted(_SECTIONS)}")
        sections = {}
        for name, section_cls in _SECTIONS.items():
            raw = data.get(name, {})
            if not isinstance(raw, dict):
                raise ValueError(f"pipeline config: [{name}] must be a table")
            own = _fields(section_cls)
            default = section_cls()
            values: dict[str, Any] = {}
            overrides: dict[str, Any] = dict(getattr(default, "overrides", {}))
            passthrough = _PASS_THROUGH.get(name)
            items = list(raw.items())
            if isinstance(raw.get("overrides"), dict):  # the to_dict() form: overrides as a nested table
                items = [(k, v) for k, v in items if k != "overrides"] + list(raw["overrides"].items())
            for key, value in items:
                if key in own and key != "overrides":
                    values[key] = _coerce(name, key, value, getattr(default, key))
                elif passthrough is not None and key in _fields(passthrough):
                    if key in _PIPELINE_SET.get(name, set()):
                        raise ValueError(f"pipeline config: {name}.{key} is set by the pipeline itself")
                    overrides[key] = value
                else:
                    valid = sorted(set(own) - {"overrides"} | (set(_fields(passthrough)) if passthrough else set()))
                    raise ValueError(f"pipeline config: unknown key {name}.{key}; valid keys in [{name}]: {valid}")
            if "overrides" in own:
                values["overrides"] = overrides
            sections[name] = section_cls(**values)
        return cls(**sections)


def load_pipeline_config(path: str | Path | None, overrides: dict[str, Any] | None = None) -> PipelineConfig:
    data: dict[str, Any] = {}
    if path is not None:
        data = read_parsed(path, tomllib.loads, "pipeline config", "TOML")
    for dotted, value in (overrides or {}).items():
        section, _, key = dotted.partition(".")
        data.setdefault(section, {})[key] = value
    return PipelineConfig.from_dict(data)
