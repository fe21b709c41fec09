"""The manifest as one type: :class:`Manifest`, a frozen dataclass of typed sections, and its JSON form.

The exporter builds it, ``to_json`` writes it (sidecar and embedded copy, keys in a fixed order) and every reader
(runtime, verify, bench, pipeline) gets it back from :func:`~aestheticnet.artifacts.manifest.read_manifest` through
``from_json``, which refuses, naming the file, anything that is not a manifest of a version it reads.

Schema version 1 (``manifest_version``): the sections ``artifact``, ``model``, ``input``, ``output``,
``preprocess``, ``source`` and ``export``. ``preprocess`` (the checkpoint's policy, read by the data layer) and
``export`` (what the exporter ran: tools, rewrites, timings, calibration) stay JSON objects: their keys are the
data layer's and each converter's to define.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from aestheticnet.artifacts.formats import ArtifactError, Format, Precision

__all__ = [
    "MANIFEST_FORMAT",
    "MANIFEST_VERSION",
    "ArtifactInfo",
    "InputInfo",
    "Manifest",
    "ManifestError",
    "ModelInfo",
    "OutputInfo",
    "SourceInfo",
]

MANIFEST_FORMAT = "aestheticnet.export"
MANIFEST_VERSION = 1


class ManifestError(ArtifactError):
    """An artifact's manifest is missing, unreadable or of another kind; the message names the file."""


@dataclass(frozen=True)
class ArtifactInfo:
    format: str
    precision: str
    runtime: str
    file: str | None = None  # the sidecar records the file, its size and its hash; the embedded copy cannot
    bytes: int | None = None
    sha256: str | None = None


@dataclass(frozen=True)
class ModelInfo:
    variant: str | None
    genotype_name: str | None
    genotype: dict | None
    config: dict
    num_buckets: int
    score_buckets: list


@dataclass(frozen=True)
class InputInfo:
    name: str
    kind: str  # "tensor" or "image"
    layout: str  # NCHW or NHWC
    dtype: str
    shape: list
    mean: list | None
    std: list | None
    value_range: str
    multiple: int
    dynamic: dict | None  # {"batch": [lo, hi], "height": ..., "width": ...}; None: enumerated shapes
    extra: dict = field(default_factory=dict)  # image scale/bias, enumerated shapes: what the format adds

    def bounds(self, dim: str) -> tuple[int, int] | None:
        """``(lowest, highest)`` ``dim`` (``batch``, ``height`` or ``width``) the artifact takes; None when not
        bounded."""
        bounds = (self.dynamic or {}).get(dim)
        return (int(bounds[0]), int(bounds[1])) if isinstance(bounds, list) and len(bounds) == 2 else None

    def upper_bound(self, dim: str) -> int | None:
        """The largest ``dim`` the artifact takes; None when not bounded."""
        bounds = self.bounds(dim)
        return None if bounds is None else bounds[1]


@dataclass(frozen=True)
class OutputInfo:
    name: str
    shape: list
    dtype: str
    meaning: str


@dataclass(frozen=True)
class SourceInfo:
    checkpoint: str
    sha256: str
    package_version: str | None


_INPUT_FIELDS = [f.name for f in dataclasses.fields(InputInfo) if f.name != "extra"]


@dataclass(frozen=True)
class Manifest:
    artifact: ArtifactInfo
    model: ModelInfo
    input: InputInfo
    output: OutputInfo
    preprocess: dict
    source: SourceInfo
    export: dict
    manifest_version: int = MANIFEST_VERSION

    @property
    def format(self) -> Format:
        return Format(self.artifact.format)

    @property
    def precision(self) -> Precision:
        return Precision(self.artifact.precision)

    def with_export(self, **entries: Any) -> Manifest:
        """The manifest with ``entries`` set in its ``export`` section (timings and rewrites known only later)."""
        return dataclasses.replace(self, export={**self.export, **entries})

    def with_artifact(self, **entries: Any) -> Manifest:
        return dataclasses.replace(self, artifact=dataclasses.replace(self.artifact, **entries))

    def to_json(self) -> dict[str, Any]:
        artifact = {k: v for k, v in dataclasses.asdict(self.artifact).items() if v is not None}
        inp = {name: getattr(self.input, name) for name in _INPUT_FIELDS}
        return {
            "format": MANIFEST_FORMAT,
            "manifest_version": self.manifest_version,
            "artifact": artifact,
            "model": dataclasses.asdict(self.model),
            "input": {**inp, **self.input.extra},
            "output": dataclasses.asdict(self.output),
            "preprocess": self.preprocess,
            "source": dataclasses.asdict(self.source),
            "export": self.export,
        }

    @classmethod
    def from_json(cls, data: Any, where: str) -> Manifest:
        """The manifest in ``data`` (parsed JSON); :class:`ManifestError` naming ``where`` when it is none."""
        if not isinstance(data, dict) or data.get("format") != MANIFEST_FORMAT:
            raise ManifestError(f"{where}: not an {MANIFEST_FORMAT} manifest")
        version = data.get("manifest_version")
        if not isinstance(version, int):
            raise ManifestError(f"{where}: an incomplete manifest (no manifest_version); re-export the model")
        if version > MANIFEST_VERSION:
            raise ManifestError(
                f"{where}: manifest version {version!r}; this aestheticnet reads versions up to {MANIFEST_VERSION} "
                "(upgrade aestheticnet, or re-export the model with this one)"
            )
        try:
            inp = dict(data["input"])
            return cls(
                artifact=_section(ArtifactInfo, data["artifact"]),
                model=_section(ModelInfo, data["model"]),
                input=InputInfo(**{k: inp.pop(k) for k in _INPUT_FIELDS}, extra=inp),
                output=_section(OutputInfo, data["output"]),
                preprocess=dict(data["preprocess"]),
                source=_section(SourceInfo, data["source"]),
                export=dict(data["export"]),
                manifest_version=version,
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ManifestError(
                f"{where}: an incomplete manifest (missing or malformed {exc}); re-export the model with "
                "`aestheticnet export`"
            ) from None


def _section(cls, data: dict):
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = set(data) - names
    if unknown:
        raise ValueError(f"unknown keys {sorted(unknown)} in {cls.__name__}")
    return cls(**data)
