"""What an exported file is: its format, its precision, and how close it must stay to the PyTorch reference.

One table (:data:`SPECS`) holds, per registered format, the file suffix, the input layout, the runtime that runs
it, how its manifest is embedded and, for each precision it offers, the parity :class:`Tolerance`; ``verify`` and
the tests read it, nothing else hard-codes a tolerance. The built-in formats' entries are in
:mod:`~aestheticnet.artifacts.builtin_formats`; a new format registers its own (:func:`register_format`).

Precisions:

* ``fp32``: float32 weights and compute.
* ``fp16``: float16 weights (and compute where the runtime does it); inputs and outputs stay float32 in every
  format, so callers always pass float32 arrays.
* ``int8``: ONNX static QDQ and TFLite full-integer, both calibrated on dataset images; CoreML int8 *weights*
  (activation quantisation calibrates by running predict, which needs macOS).
  ExecuTorch int8 is the PT2E XNNPACK quantizer (int8 activations, per-channel int8 weights), calibrated on
  the same images.
* ``int8-dynamic``: TFLite dynamic-range quantisation (int8 weights, float activations); no calibration.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, fields
from enum import Enum
from pathlib import Path

__all__ = [
    "INPUT_NAME",
    "OUTPUT_NAME",
    "SPECS",
    "ArtifactError",
    "Format",
    "FormatSpec",
    "Precision",
    "Tolerance",
    "UnknownFormatError",
    "UnknownPrecisionError",
    "artifact_name",
    "format_of_path",
    "members",
    "parse_formats",
    "parse_precisions",
    "precision_of_path",
    "register_format",
    "tolerance_for",
    "unregister_format",
]

# The one input and the one output of every exported model, in every format.
INPUT_NAME = "image"
OUTPUT_NAME = "distribution"


class ArtifactError(ValueError):
    """An artifact, format or precision is not what was expected; the message says what was."""


class UnknownFormatError(ArtifactError):
    pass


class UnknownPrecisionError(ArtifactError):
    pass


class _Named(str, Enum):
    """An enum whose members print as their value (``str(Precision.FP32) == "fp32"``)."""

    def __str__(self) -> str:
        return self.value


class _FormatType(type):
    """Iterating ``Format`` gives the registered formats, in registration order (as iterating an Enum would)."""

    def __iter__(cls):
        return iter(tuple(SPECS))

    def __len__(cls) -> int:
        return len(SPECS)


class Format(str, metaclass=_FormatType):
    """The name of a registered artifact format. An open set, unlike :class:`Precision`: a format is added by
    registering its :class:`FormatSpec` (:func:`register_format`), which an exporter's registry line does.

    ``Format("onnx")`` returns the registered ``Format.ONNX``; an unregistered name raises
    :class:`UnknownFormatError` (a ``ValueError``). Formats compare and hash as their names.
    """

    __slots__ = ()

    def __new__(cls, name: str) -> Format:
        if isinstance(name, Format):
            return name
        key = str(name).strip().lower()
        for known in SPECS:
            if known == key:
                return known
        valid = ", ".join(SPECS)
        raise UnknownFormatError(f"unknown export format {name!r}; expected one of {valid}")

    @classmethod
    def _define(cls, name: str) -> Format:
        return str.__new__(cls, name)

    @property
    def value(self) -> str:
        return str.__str__(self)

    @property
    def name(self) -> str:
        return self.value.upper().replace("-", "_")

    def __str__(self) -> str:
        return self.value

    def __repr__(self) -> str:
        return f"Format({self.value!r})"

    def __reduce__(self):
        return (Format, (self.value,))


class Precision(_Named):
    FP32 = "fp32"
    FP16 = "fp16"
    INT8 = "int8"
    INT8_DYNAMIC = "int8-dynamic"


@dataclass(frozen=True)
class Tolerance:
    """Parity gates of one (format, precision) against the PyTorch float32 reference. ``None`` = not gated.

    max_abs: largest absolute difference of any bucket probability (random inputs and real images).
    mean_score: largest absolute difference of the mean score (1..N scale).
    psnr_db: lowest PSNR of the distributions (peak 1.0).
    agreement: lowest fraction of samples on the same side of the high/low threshold.
    srocc / plcc: lowest rank / linear correlation of mean scores on real images (only with --data).
    """

    max_abs: float | None
    mean_score: float | None
    psnr_db: float | None = None
    agreement: float | None = None
    srocc: float | None = None
    plcc: float | None = None
    note: str = ""

    def to_dict(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass(frozen=True)
class FormatSpec:
    format: Format
    suffix: str  # file suffix of the artifact (".mlpackage" is a directory)
    layout: str  # layout of the model input: NCHW or NHWC
    runtime: str  # what runs it
    tolerances: dict[Precision, Tolerance]  # the precisions this format offers, in export order
    notes: str = ""
    directory: bool = False  # the artifact is a folder (an .mlpackage), not a file
    # The JSON text of the manifest embedded in an artifact, or None; None: the format embeds nothing.
    read_embedded: Callable[[Path], str | None] | None = None

    @property
    def name(self) -> str:
        return self.format.value

    @property
    def precisions(self) -> tuple[Precision, ...]:
        return tuple(self.tolerances)


# The registered formats, in registration order; the built-in ones are registered by
# :mod:`aestheticnet.artifacts.builtin_formats` when the package is imported.
SPECS: dict[Format, FormatSpec] = {}

Format.ONNX = Format._define("onnx")
Format.TFLITE = Format._define("tflite")
Format.COREML = Format._define("coreml")
Format.EXECUTORCH = Format._define("executorch")


def register_format(spec: FormatSpec) -> Format:
    """Add ``spec`` to the formats every reader knows; refuses a name or file suffix that is registered already."""
    if not isinstance(spec.format, Format):
        raise ArtifactError(f"{spec.format!r}: a FormatSpec names its format with Format._define(name)")
    clash = [s.name for s in SPECS.values() if s.format == spec.format or s.suffix == spec.suffix]
    if clash:
        raise ArtifactError(f"format {spec.name!r} ({spec.suffix}): the name or suffix is taken by {clash[0]!r}")
    SPECS[spec.format] = spec
    return spec.format


def unregister_format(fmt: Format) -> None:
    """Remove a format added with :func:`register_format` (tests and plug-ins that clean up after themselves)."""
    SPECS.pop(Format(fmt), None)


def _parse(value: str | Iterable, enum: type[Enum], what: str, error: type[ArtifactError]) -> list:
    """The one rule for names to members: comma-separated or a list, members or names, any case, duplicates
    dropped, order kept; an unknown name or nothing at all raises ``error`` listing the valid names."""
    if isinstance(value, Enum):
        value = [value]
    items = value.split(",") if isinstance(value, str) else list(value)
    valid = [m.value for m in enum]
    names: list[str] = []
    for item in items:
        name = (item.value if isinstance(item, enum) else str(item)).strip().lower()
        if name and name not in names:
            names.append(name)
    if not names:
        raise error(f"no {what} given; expected one or more of {', '.join(valid)}")
    bad = [n for n in names if n not in valid]
    if bad:
        raise error(f"unknown {what}(s) {bad}; expected one or more of {', '.join(valid)}")
    return [enum(n) for n in names]


def members(value: Enum | Iterable, enum: type[Enum], what: str, error: type[ArtifactError]) -> list:
    """What a programmatic API takes: members of ``enum`` (one or an iterable), duplicates dropped, order kept.
    Names are parsed once, at the command line or config edge (:func:`parse_formats`, :func:`parse_precisions`)."""
    items = [value] if isinstance(value, (Enum, str)) else list(value)
    bad = [item for item in items if not isinstance(item, enum)]
    if bad:
        raise error(
            f"unknown {what} {bad[0]!r}: pass {enum.__name__} members ({', '.join(m.name for m in enum)}); "
            "names become members at the command-line or config edge (parse_formats, parse_precisions)"
        )
    if not items:
        raise error(f"no {what} given; expected one or more of {', '.join(m.value for m in enum)}")
    return list(dict.fromkeys(items))


def parse_formats(value: str | Iterable[str | Format]) -> list[Format]:
    """``"onnx,tflite"`` -> ``[Format.ONNX, Format.TFLITE]``; unknown names raise :class:`UnknownFormatError`."""
    return _parse(value, Format, "export format", UnknownFormatError)


def parse_precisions(value: str | Iterable[str | Precision]) -> list[Precision]:
    """``"fp32,int8"`` -> ``[Precision.FP32, Precision.INT8]``; unknown names raise :class:`UnknownPrecisionError`."""
    return _parse(value, Precision, "precision", UnknownPrecisionError)


def tolerance_for(fmt: Format | str, precision: Precision | str) -> Tolerance:
    fmt, name = Format(fmt), str(precision)
    spec = SPECS[fmt]
    try:
        return spec.tolerances[Precision(name)]
    except (KeyError, ValueError):
        raise UnknownPrecisionError(
            f"{fmt} has no {name!r} variant; {fmt} precisions: {', '.join(p.value for p in spec.precisions)}"
        ) from None


def format_of_path(path: str | os.PathLike) -> Format:
    """The format an artifact path belongs to, from its suffix (``.onnx``, ``.tflite``, ``.mlpackage``)."""
    name = str(path).rstrip("/\\").lower()
    for spec in SPECS.values():
        if name.endswith(spec.suffix):
            return spec.format
    suffixes = ", ".join(s.suffix for s in SPECS.values())
    raise UnknownFormatError(f"{path}: cannot tell the model format; expected a file ending in {suffixes}")


def artifact_name(stem: str, fmt: Format | str, precision: Precision | str) -> str:
    """``aestheticnet_star`` + tflite + int8 -> ``aestheticnet_star.int8.tflite``."""
    return f"{stem}.{Precision(precision).value}{SPECS[Format(fmt)].suffix}"


def precision_of_path(path: str | os.PathLike) -> Precision | None:
    """The precision an artifact's name carries as :func:`artifact_name` writes it (``x.int8.tflite`` -> int8);
    None when the name carries none. The manifest, not the name, is what says what the file is."""
    name = Path(str(path).rstrip("/\\")).name
    stem = name[: -len(SPECS[format_of_path(path)].suffix)]
    tag = stem.rsplit(".", 1)[-1] if "." in stem else ""
    return next((p for p in Precision if p.value == tag), None)
