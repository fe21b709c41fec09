"""What an export can be asked for besides formats and precisions, as typed values: :class:`ExportOptions` and the
choices it holds (CoreML shapes and input, the ONNX exporter). Names become these members at the command-line and
config edge; every check of them is here, once."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from aestheticnet.export.dynamic import DynamicSpec
from aestheticnet.export.errors import ExportError
from aestheticnet.export.int8.recipe import DEFAULT_RECIPE, Int8Recipe
from aestheticnet.imagenet import IMAGENET_MEAN, IMAGENET_STD
from aestheticnet.sizes import MAX_BATCH, MAX_SIDE, SIZE_MULTIPLE

__all__ = ["DEFAULT_ENUMERATED", "CoreMLInput", "CoreMLOptions", "CoreMLShapes", "ExportOptions", "OnnxExporter"]

# (H, W) sizes for EnumeratedShapes: square and both 4:3 orientations at the training size and one up.
DEFAULT_ENUMERATED = ((224, 224), (224, 288), (288, 224), (256, 256), (320, 256), (256, 320), (384, 512), (512, 384))


class CoreMLShapes(StrEnum):
    """Bounded ``RangeDim``s, or ``EnumeratedShapes`` (which the Neural Engine can run at every listed size)."""

    RANGE = "range"
    ENUMERATED = "enumerated"


class CoreMLInput(StrEnum):
    """A normalised float tensor, or an ``ImageType`` (pixel buffers, normalisation inside the model)."""

    TENSOR = "tensor"
    IMAGE = "image"


class OnnxExporter(StrEnum):
    """``auto`` = dynamo, TorchScript only if dynamo fails (the manifest records which ran)."""

    AUTO = "auto"
    DYNAMO = "dynamo"
    TORCHSCRIPT = "torchscript"


def _member(value: Any, enum: type[StrEnum], field: str) -> StrEnum:
    if isinstance(value, enum):
        return value
    valid = ", ".join(f"{enum.__name__}.{m.name}" for m in enum)
    raise ExportError(f"{field}={value!r}: expected one of {valid} (names are parsed at the command line)")


def _bound(value: Any, option: str, lo: int, hi: int, unit: str) -> None:
    """Refuse an upper bound that is not an integer in ``lo..hi`` (the size grammar's limits), naming ``option``."""
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise ExportError(
            f"{option} {value!r}: expected an integer from {lo} to {hi} ({unit}), or none to follow the "
            "checkpoint's preprocessing"
        )


@dataclass(frozen=True)
class CoreMLOptions:
    """How a CoreML package is made; one value for the converter here and in its worker process."""

    shapes: CoreMLShapes = CoreMLShapes.RANGE
    input_kind: CoreMLInput = CoreMLInput.TENSOR
    mean: tuple[float, ...] = IMAGENET_MEAN
    std: tuple[float, ...] = IMAGENET_STD
    spec: DynamicSpec = DynamicSpec()
    enumerated: tuple[tuple[int, int], ...] = DEFAULT_ENUMERATED
    recipe: Int8Recipe = DEFAULT_RECIPE

    def __post_init__(self) -> None:
        _member(self.shapes, CoreMLShapes, "coreml shapes")
        _member(self.input_kind, CoreMLInput, "coreml input")
        bad = [hw for hw in self.enumerated if hw[0] % self.spec.multiple or hw[1] % self.spec.multiple]
        if self.shapes == CoreMLShapes.ENUMERATED and bad:
            raise ExportError(f"enumerated sizes {bad} are not multiples of {self.spec.multiple}")

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> CoreMLOptions:
        """The inverse of :meth:`to_json`, for the worker process that reads it from its job file."""
        return cls(
            shapes=CoreMLShapes(data["shapes"]),
            input_kind=CoreMLInput(data["input_kind"]),
            mean=tuple(data["mean"]),
            std=tuple(data["std"]),
            spec=DynamicSpec(**data["spec"]),
            enumerated=tuple(tuple(hw) for hw in data["enumerated"]),
            recipe=Int8Recipe(**data["recipe"]),
        )


@dataclass(frozen=True)
class ExportOptions:
    data: Path | None = None  # dataset or image folder for int8 calibration
    calibration_samples: int = 100
    opset: int = 18
    spec: DynamicSpec | None = None  # None: the checkpoint's input multiple, default bounds
    coreml_shapes: CoreMLShapes = CoreMLShapes.RANGE
    coreml_input: CoreMLInput = CoreMLInput.TENSOR
    exporter: OnnxExporter = OnnxExporter.AUTO
    recipe: Int8Recipe = DEFAULT_RECIPE
    # The upper bounds of the formats that plan memory for them (ExecuTorch; the others keep ``spec``'s). None:
    # batch 1 and the longest side the checkpoint's preprocessing produces (export/dynamic.py planned_spec).
    max_batch: int | None = None
    max_side: int | None = None

    def __post_init__(self) -> None:
        if self.calibration_samples < 1:
            raise ExportError(f"--calibration-samples must be >= 1, got {self.calibration_samples}")
        _bound(self.max_batch, "--max-batch", 1, MAX_BATCH, "images per call")
        _bound(self.max_side, "--max-side", SIZE_MULTIPLE, MAX_SIDE, f"pixels, a multiple of {SIZE_MULTIPLE}")
        if self.max_side is not None and self.max_side % SIZE_MULTIPLE:
            raise ExportError(
                f"--max-side {self.max_side}: expected a multiple of {SIZE_MULTIPLE} (the network's stride)"
            )
        _member(self.coreml_shapes, CoreMLShapes, "coreml_shapes")
        _member(self.coreml_input, CoreMLInput, "coreml_input")
        _member(self.exporter, OnnxExporter, "exporter")
        if self.data is not None and not isinstance(self.data, Path):
            object.__setattr__(self, "data", Path(self.data))
