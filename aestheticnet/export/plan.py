"""What one ``export_checkpoint`` call will make: the (format, precision) pairs, their paths and their manifests.

Everything here is decided before any model is loaded or converted, so a bad request fails at once with a message
that says what each format offers.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from aestheticnet.artifacts import SPECS, Format, Precision, UnknownFormatError, UnknownPrecisionError, artifact_name
from aestheticnet.artifacts.formats import members
from aestheticnet.artifacts.manifest import build_manifest
from aestheticnet.export.dynamic import DynamicSpec
from aestheticnet.export.errors import ExportError
from aestheticnet.export.int8.recipe import DEFAULT_RECIPE, Int8Recipe

__all__ = ["ExportOptions", "ExportPlan", "Manifests", "make_plan"]

COREML_SHAPE_MODES = ("range", "enumerated")
COREML_INPUT_KINDS = ("tensor", "image")
ONNX_EXPORTERS = ("auto", "dynamo", "torchscript")


@dataclass(frozen=True)
class ExportOptions:
    data: Path | None = None  # dataset or image folder for int8 calibration
    calibration_samples: int = 100
    opset: int = 18
    spec: DynamicSpec | None = None  # None: the checkpoint's input multiple, default bounds
    coreml_shapes: str = "range"  # COREML_SHAPE_MODES
    coreml_input: str = "tensor"  # COREML_INPUT_KINDS
    exporter: str = "auto"  # ONNX_EXPORTERS
    recipe: Int8Recipe = DEFAULT_RECIPE


@dataclass
class ExportPlan:
    checkpoint: Path
    out: Path
    stem: str
    pairs: list[tuple[Format, Precision]]  # what will be made, in request order
    skipped: list[str]  # "format/precision" asked for but not offered by that format
    options: ExportOptions
    meta: dict[str, Any] = field(default_factory=dict)  # the checkpoint's metadata

    def precisions(self, fmt: Format) -> list[Precision]:
        return [p for f, p in self.pairs if f == fmt]

    def path(self, fmt: Format, precision: Precision) -> Path:
        return self.out / artifact_name(self.stem, fmt, precision)

    @property
    def needs_onnx(self) -> bool:  # TFLite converts from the fp32 ONNX file
        return any(f in (Format.ONNX, Format.TFLITE) for f, _ in self.pairs)

    @property
    def needs_calibration(self) -> bool:
        return any(p == Precision.INT8 and f in (Format.ONNX, Format.TFLITE, Format.EXECUTORCH) for f, p in self.pairs)


def make_plan(
    checkpoint: str | os.PathLike,
    formats: Iterable[Format],
    precisions: Iterable[Precision],
    out_dir: str | os.PathLike,
    options: ExportOptions,
    name: str | None = None,
) -> ExportPlan:
    """The plan of one export; raises :class:`ExportError` for anything that cannot be done as asked."""
    from aestheticnet.models import read_metadata

    fmts = members(formats, Format, "export format", UnknownFormatError)
    precs = members(precisions, Precision, "precision", UnknownPrecisionError)
    if options.calibration_samples < 1:
        raise ExportError(f"--calibration-samples must be >= 1, got {options.calibration_samples}")
    for value, valid, what in (
        (options.coreml_shapes, COREML_SHAPE_MODES, "coreml_shapes"),
        (options.coreml_input, COREML_INPUT_KINDS, "coreml_input"),
        (options.exporter, ONNX_EXPORTERS, "exporter"),
    ):
        if value not in valid:
            raise ExportError(f"{what}={value!r}; expected one of {', '.join(valid)}")
    offered = [(f, p) for f in fmts for p in precs if p in SPECS[f].tolerances]
    skipped = [f"{f.value}/{p.value}" for f in fmts for p in precs if p not in SPECS[f].tolerances]
    if not offered:
        raise ExportError(
            f"none of the formats {[f.value for f in fmts]} offers the precisions {[p.value for p in precs]}; "
            + "; ".join(f"{s.name}: {', '.join(p.value for p in s.precisions)}" for s in SPECS.values())
        )
    checkpoint = Path(checkpoint)
    plan = ExportPlan(
        checkpoint, Path(out_dir), name or checkpoint.name.removesuffix(".safetensors"), offered, skipped, options
    )
    if plan.needs_calibration and options.data is None:
        raise ExportError(
            "int8 for ONNX/TFLite/ExecuTorch is calibrated on real images: pass --data DIR (a dataset or a folder of "
            "images)"
        )
    plan.meta = read_metadata(checkpoint)
    if options.spec is None:
        multiple = int(plan.meta.get("preprocess", {}).get("multiple", 32))
        plan.options = replace(options, spec=DynamicSpec(multiple=multiple))
    return plan


def _bounds(spec: DynamicSpec) -> dict[str, list[int]]:
    lo = max(spec.multiple, spec.min_side)
    return {"batch": [1, spec.max_batch], "height": [lo, spec.max_side], "width": [lo, spec.max_side]}


class Manifests:
    """The manifest of each artifact of a plan, from the checkpoint's metadata and the export's rewrites."""

    def __init__(self, plan: ExportPlan, sha256: str, rewrites: list[str]):
        self.plan, self.sha256, self.rewrites = plan, sha256, rewrites
        self.bounds = _bounds(plan.options.spec)

    def build(self, fmt: Format, precision: Precision, exporter: dict, **kw) -> dict:
        return build_manifest(
            checkpoint_meta=self.plan.meta,
            checkpoint_sha256=self.sha256,
            checkpoint_name=self.plan.checkpoint.name,
            fmt=fmt,
            precision=precision,
            dynamic=kw.pop("dynamic", self.bounds),
            exporter={**exporter, "model_rewrites": self.rewrites},
            **kw,
        )

    def tflite(self, precision: Precision, onnx_exporter: str | None, calibration: dict | None) -> dict:
        info = {"exporter": "onnx2tf + TFLiteConverter (from the dynamo ONNX)", "onnx_exporter": onnx_exporter}
        return self.build(
            Format.TFLITE,
            precision,
            info,
            input_shape=["batch", "height", "width", 3],
            calibration=calibration if precision == Precision.INT8 else None,
        )

    @property
    def et_spec(self) -> DynamicSpec:
        from aestheticnet.export.executorch.convert import executorch_spec

        return executorch_spec(self.plan.options.spec)

    def executorch(self, precision: Precision, calibration: dict | None) -> dict:
        from aestheticnet.export.executorch.convert import conversion_text

        dynamic = _bounds(self.et_spec)
        info = {
            "exporter": "torch.export -> ExecuTorch (XNNPACK delegate)",
            "conversion": conversion_text(precision, self.plan.options.recipe),
            "bounds_note": "the runtime plans input memory for the upper bounds",
        }
        return self.build(Format.EXECUTORCH, precision, info, dynamic=dynamic, calibration=calibration)

    def coreml(self, precision: Precision) -> dict:
        from aestheticnet.export.coreml.convert import DEFAULT_ENUMERATED

        options, spec = self.plan.options, self.plan.options.spec
        image = options.coreml_input == "image"
        extra: dict[str, Any] = {}
        mean = self.build(Format.COREML, precision, {})["input"]["mean"]
        if image:
            extra.update(
                image_scale=1 / 255,
                image_bias=[-float(m) for m in mean],
                color_layout="RGB",
                std_folded_into_first_conv=True,
            )
        enumerated = options.coreml_shapes == "enumerated"
        if enumerated:
            extra["enumerated"] = [[1, 3, h, w] for h, w in DEFAULT_ENUMERATED]
        lo = max(spec.multiple, spec.min_side)
        dynamic = (
            None
            if enumerated
            else {
                "batch": [1, 1 if image else spec.max_batch],
                "height": [lo, spec.max_side],
                "width": [lo, spec.max_side],
            }
        )
        weights = options.recipe.coreml_weights() if precision == Precision.INT8 else precision.value
        info = {
            "exporter": "torch.export -> coremltools ML program",
            "compute_precision": "FLOAT32" if precision == Precision.FP32 else "FLOAT16",
            "weights": weights,
            "minimum_deployment_target": "iOS16",
            "shapes": options.coreml_shapes,
        }
        manifest = self.build(
            Format.COREML, precision, info, dynamic=dynamic, input_kind=options.coreml_input, extra_input=extra
        )
        if image:
            manifest["input"]["shape"] = [1, 3, "height", "width"]
        return manifest
