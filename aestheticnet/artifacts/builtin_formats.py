"""The four formats the project exports, registered with :func:`~aestheticnet.artifacts.formats.register_format`
when :mod:`aestheticnet.artifacts` is imported: their suffix, input layout, runtime and, per precision, the parity
:class:`~aestheticnet.artifacts.formats.Tolerance` that ``verify`` gates on.

Tolerances were measured on this project's networks (``benchmarks/export_parity.py`` and the export report) and
leave head-room of about 10x over what was measured.
"""

from __future__ import annotations

from aestheticnet.artifacts import embedded
from aestheticnet.artifacts.formats import Format, FormatSpec, Precision, Tolerance, register_format

__all__: list[str] = []

# fp32 numbers: ONNX measured ~2e-8, TFLite ~1.5e-8 once dilated convolutions reach onnx2tf undilated. The fp16 gate
# is the mean score (<= 0.01). int8 gates are rank agreement on real images (>= 0.98) and a loose mean-score bound
# (1.5 points on 1..10; measured up to ~1.1 on small fitted networks at upscaled sizes, whose ranking still held)
# that catches a broken model; their max_abs is reported, never gated.
_FP32 = Tolerance(1e-5, 1e-4, psnr_db=90.0, agreement=1.0, srocc=0.999, plcc=0.999)
_FP16 = Tolerance(2e-3, 1e-2, psnr_db=50.0, agreement=0.95, srocc=0.99, plcc=0.99)
_INT8 = Tolerance(None, 1.5, psnr_db=15.0, agreement=0.8, srocc=0.98, plcc=0.98)
_INT8_WEIGHTS = Tolerance(None, 0.1, psnr_db=30.0, agreement=0.9, srocc=0.98, plcc=0.98)
_TFLITE_FP32 = Tolerance(
    1e-5,
    1e-4,
    psnr_db=90.0,
    agreement=1.0,
    srocc=0.999,
    plcc=0.999,
    note="1e-4 with dilated convolutions given to onnx2tf; target 1e-5 met",
)
_COREML_FP32 = Tolerance(
    1e-5,
    1e-3,
    psnr_db=70.0,
    agreement=1.0,
    srocc=0.999,
    plcc=0.999,
    note="Core ML on macOS, the MIL evaluator elsewhere (measured 1.5e-8 on AestheticNet*)",
)
_COREML_FP16 = Tolerance(
    1e-2, 1e-2, psnr_db=40.0, agreement=0.95, srocc=0.99, plcc=0.99, note="FP16 compute drifts ~1e-2 upstream"
)

_BUILTIN = (
    FormatSpec(
        Format.ONNX,
        ".onnx",
        "NCHW",
        "onnxruntime",
        {Precision.FP32: _FP32, Precision.FP16: _FP16, Precision.INT8: _INT8},
        "dynamo exporter (opset >= 18), onnxsim; dynamic batch/height/width; fp16 keeps float32 IO; int8 = static "
        "QDQ (see Int8Recipe)",
        read_embedded=embedded.read_onnx_text,
    ),
    FormatSpec(
        Format.TFLITE,
        ".tflite",
        "NHWC",
        "ai-edge-litert (XNNPACK)",
        {
            Precision.FP32: _TFLITE_FP32,
            Precision.FP16: _FP16,
            Precision.INT8: _INT8,
            Precision.INT8_DYNAMIC: _INT8_WEIGHTS,
        },
        "ONNX -> onnx2tf -> TFLite converter; input [-1,-1,-1,3]; int8 = full integer inside (see Int8Recipe); "
        "float32 IO",
        read_embedded=embedded.read_tflite_text,
    ),
    FormatSpec(
        Format.COREML,
        ".mlpackage",
        "NCHW",
        "Core ML (macOS); the MIL evaluator elsewhere",
        {Precision.FP32: _COREML_FP32, Precision.FP16: _COREML_FP16, Precision.INT8: _INT8_WEIGHTS},
        "torch.export -> ML program; RangeDim or EnumeratedShapes; optional ImageType input; int8 = weights only",
        directory=True,
        read_embedded=embedded.read_coreml_text,
    ),
    FormatSpec(
        Format.EXECUTORCH,
        ".pte",
        "NCHW",
        "executorch (XNNPACK delegate)",
        {Precision.FP32: _FP32, Precision.INT8: _INT8},
        "torch.export -> to_edge -> to_backend(XnnpackPartitioner); dynamic batch and bounded H/W (see the "
        "manifest); int8 = PT2E XNNPACK quantizer, static, calibrated; float32 IO",
        read_embedded=embedded.read_executorch_text,
    ),
)

for _spec in _BUILTIN:
    register_format(_spec)
