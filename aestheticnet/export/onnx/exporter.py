"""The ONNX format: the fp32 file every ONNX-based conversion starts from, then its fp16 and int8 variants."""

from __future__ import annotations

import time
from pathlib import Path

from aestheticnet.artifacts import SPECS, Format, Precision
from aestheticnet.artifacts.embedded import flat_entries
from aestheticnet.export.exporter import ExportContext, Exporter, Started
from aestheticnet.runtime.backends import OnnxBackend
from aestheticnet.runtime_names import RuntimeName

__all__ = ["OnnxExporter", "make_fp32_onnx"]


class OnnxExporter(Exporter):
    spec = SPECS[Format.ONNX]
    backend = OnnxBackend
    from_onnx = True
    calibrated = frozenset({Precision.INT8})
    bench_backend = RuntimeName.ONNXRUNTIME.value

    def uses_trace(self, plan) -> bool:
        return True

    def finish(self, ctx: ExportContext, precisions: list[Precision], started: Started | None) -> None:
        # fp32 is made (and recorded) by make_fp32_onnx, before any exporter runs.
        for precision in precisions:
            if precision != Precision.FP32 and ctx.onnx_fp32 is not None:
                _variant(ctx, precision)


def make_fp32_onnx(ctx: ExportContext) -> None:
    """The fp32 ONNX file: an artifact when ONNX fp32 was asked for, else a scratch file for the converters."""
    from aestheticnet.export.onnx.build import build_onnx

    plan, options = ctx.plan, ctx.plan.options
    keep = (Format.ONNX, Precision.FP32) in plan.pairs
    path = plan.path(Format.ONNX, Precision.FP32) if keep else ctx.scratch / "fp32.onnx"
    t0 = time.perf_counter()
    try:
        result = build_onnx(
            ctx.prepared, path, opset=options.opset, spec=options.spec, exporter=options.exporter, traced=ctx.traced
        )
        # The manifest names the exporter that ran, so it is embedded after the export.
        manifest = ctx.manifests.build(Format.ONNX, Precision.FP32, result.exporter_info())
        _embed(path, manifest)
        ctx.onnx_result = result
        if keep:
            ctx.recorder.artifact(Format.ONNX, Precision.FP32, path, dict(result.seconds), manifest)
        ctx.onnx_fp32 = path
    except Exception as exc:  # noqa: BLE001
        ctx.recorder.failure("onnx/fp32", exc)
    if not keep:
        ctx.recorder.shared("onnx_for_tflite", t0)


def _variant(ctx: ExportContext, precision: Precision) -> None:
    from aestheticnet.export.onnx.fp16 import CONVERSION, to_fp16
    from aestheticnet.export.onnx.int8 import quantize_int8

    dst = ctx.plan.path(Format.ONNX, precision)
    recipe = ctx.plan.options.recipe
    t0 = time.perf_counter()
    info = {**(ctx.onnx_result.exporter_info() if ctx.onnx_result else {}), "derived_from": "onnx/fp32"}
    try:
        if precision == Precision.FP16:
            info["conversion"] = CONVERSION
            manifest = ctx.manifests.build(Format.ONNX, precision, info)
            to_fp16(ctx.onnx_fp32, dst, flat_entries(manifest))
        else:
            info["conversion"] = recipe.onnx_conversion()
            manifest = ctx.manifests.build(Format.ONNX, precision, info, calibration=ctx.calibration_info)
            quantize_int8(ctx.onnx_fp32, dst, ctx.calibration, flat_entries(manifest), recipe)
        seconds = {precision.value: round(time.perf_counter() - t0, 3)}
        ctx.recorder.artifact(Format.ONNX, precision, dst, seconds, manifest)
    except Exception as exc:  # noqa: BLE001
        ctx.recorder.failure(f"onnx/{precision.value}", exc)


def _embed(path: Path, manifest: dict) -> None:
    import onnx

    from aestheticnet.artifacts.embedded import embed_onnx_metadata
    from aestheticnet.io import atomic_path

    model = onnx.load(str(path))
    embed_onnx_metadata(model, flat_entries(manifest))
    with atomic_path(path) as tmp:
        onnx.save(model, str(tmp))
