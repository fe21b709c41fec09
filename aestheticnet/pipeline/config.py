"""Pipeline configuration: one dataclass per step, read from TOML, validated before any work starts.

A TOML file has one table per step; keys of a table are that section's fields, and for ``[search]`` and
``[train]`` also any SearchConfig / TrainConfig field, which are passed through. An unknown key or a bad
value fails with its dotted name (``search.epochs_scal``) before anything runs. The defaults are the demo:
the synthetic dataset, sized to finish the whole pipeline in about 15 minutes on 2 cores.
"""

from __future__ import annotations

import dataclasses
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aestheticnet.export.specs import FORMATS, PRECISIONS
from aestheticnet.nas.strategy import PRESETS, SearchConfig
from aestheticnet.train.config import TrainConfig

__all__ = ["PipelineConfig", "load_pipeline_config"]


@dataclass(frozen=True)
class DataSection:
    path: str = ""  # dataset folder; empty = the synthetic default (labels are synthetic)
    synthetic_seed: int = 0
    synthetic_crops: int = 2  # crops per photo: 2 -> 1,266 images


@dataclass(frozen=True)
class SearchSection:
    enabled: bool = True
    genotype: str = ""  # skip the search and use this registered name or genotype.json
    preset: str = "pdarts_paper"
    epochs_scale: float = 0.12  # 25 epochs per stage -> 3 (the paper's schedule scaled for a CPU demo)
    # SearchConfig overrides (any field); the demo searches small and fast on the CPU.
    overrides: dict[str, Any] = field(default_factory=lambda: {
        "resolution": 32, "init_channels": 8, "batch_size": 32, "proxy_fraction": 0.25,
    })  # fmt: skip


@dataclass(frozen=True)
class TrainSection:
    variants: tuple[str, ...] = ("aestheticnet", "aestheticnet_star")
    # TrainConfig overrides (any field except data/variant/genotype, which the pipeline sets).
    overrides: dict[str, Any] = field(default_factory=lambda: {
        "layers": 5, "init_channels": 16, "image_size": 96, "max_side": 160, "epochs": 6, "batch_size": 32,
        "lr": 0.05, "group_by": "challenge", "num_workers": 1,
    })  # fmt: skip


@dataclass(frozen=True)
class ExportSection:
    variant: str = "aestheticnet_star"  # the phone model
    formats: tuple[str, ...] = ("onnx", "tflite", "coreml")
    precisions: tuple[str, ...] = ("fp32", "fp16", "int8")
    calibration_samples: int = 64


@dataclass(frozen=True)
class VerifySection:
    shapes: tuple[str, ...] = ("96x128", "128x96", "224x224", "96x640")
    batch: int = 3
    samples: int = 100  # real images for SROCC/PLCC between artifact and PyTorch


@dataclass(frozen=True)
class BenchSection:
    formats: tuple[str, ...] = ("onnx", "tflite")
    precisions: tuple[str, ...] = ("fp32", "int8")
    threads: tuple[int, ...] = (1, 2)
    shapes: tuple[str, ...] = ("224x224",)
    runs: int = 20
    warmup: int = 3


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
            return SearchConfig.from_preset(s.preset, epochs_scale=s.epochs_scale).replace(**s.overrides)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"pipeline config: [search]: {exc}") from None

    def train_config(self, variant: str, data: str, genotype: str) -> TrainConfig:
        try:
            return TrainConfig(**{**self.train.overrides, "data": data, "variant": variant, "genotype": genotype})
        except (TypeError, ValueError) as exc:
            raise ValueError(f"pipeline config: [train]: {exc}") from None

    def validate(self) -> None:
        from aestheticnet.models.registry import list_models

        self.search_config()
        for v in self.train.variants:
            if v not in list_models():
                raise ValueError(f"pipeline config: train.variants has {v!r}; valid: {list_models()}")
            self.train_config(v, "", "PDARTS")
        if self.export.variant not in self.train.variants:
            raise ValueError(f"pipeline config: export.variant={self.export.variant!r} is not in train.variants")
        for key, values, valid in (("export.formats", self.export.formats, FORMATS),
                                   ("export.precisions", self.export.precisions, PRECISIONS),
                                   ("bench.formats", self.bench.formats, FORMATS),
                                   ("bench.precisions", self.bench.precisions, PRECISIONS)):  # fmt: skip
            bad = [v for v in values if v not in valid]
            if bad:
                raise ValueError(f"pipeline config: {key} has {bad}; valid: {list(valid)}")
        if self.data.path and not Path(self.data.path).exists():
            raise ValueError(f"pipeline config: data.path={self.data.path!r} does not exist")
        for key, shapes in (("verify.shapes", self.verify.shapes), ("bench.shapes", self.bench.shapes)):
            for s in shapes:
                parts = s.lower().split("x")
                if len(parts) != 2 or not all(p.isdigit() and int(p) % 32 == 0 and int(p) > 0 for p in parts):
                    raise ValueError(f"pipeline config: {key} has {s!r}; use HxW with multiples of 32")
        if self.bench.runs < 1 or self.verify.batch < 1 or self.export.calibration_samples < 1:
            raise ValueError("pipeline config: bench.runs, verify.batch and export.calibration_samples must be >= 1")

    # ---- (de)serialisation -----------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

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
        p = Path(path)
        try:
            data = tomllib.loads(p.read_text())
        except OSError as exc:
            raise ValueError(f"cannot read pipeline config {p}: {exc.strerror}") from None
        except tomllib.TOMLDecodeError as exc:
            raise ValueError(f"pipeline config {p} is not valid TOML: {exc}") from None
    for dotted, value in (overrides or {}).items():
        section, _, key = dotted.partition(".")
        data.setdefault(section, {})[key] = value
    return PipelineConfig.from_dict(data)
