"""Export checkpoints to ONNX, TFLite, CoreML and ExecuTorch with dynamic shapes, manifests and verified parity.

Heavy dependencies (torch.onnx, onnx2tf/TensorFlow, coremltools) are imported by the functions that need them,
so importing this package is cheap. Main entry points::

    from aestheticnet.artifacts import Format, Precision
    from aestheticnet.export import ExportOptions, check_parity, export_checkpoint
    export_checkpoint("model.safetensors", [Format.ONNX, Format.TFLITE], [Precision.FP32], "out/")
    export_checkpoint("model.safetensors", [Format.TFLITE], [Precision.INT8], "out/", ExportOptions(data="photos/"))
    check_parity("out/model.fp32.tflite", "model.safetensors")   # raises ParityError listing every mismatch

Layout: ``plan`` (what is made), ``schedule`` (which process makes it), ``steps`` (making it), ``report``;
one package per format (``onnx``, ``tflite``, ``coreml``, ``executorch``), each with its ``Exporter`` object in
``exporter.py``, listed in ``registry``; ``int8`` for the quantisation recipe they share.
"""

from __future__ import annotations

from aestheticnet.export.errors import ExportError
from aestheticnet.lazy import lazy_attributes

__all__ = [
    "CoreMLInput",
    "CoreMLShapes",
    "EXPORTERS",
    "ExportError",
    "ExportFailed",
    "ExportOptions",
    "ExportReport",
    "Exporter",
    "Int8Recipe",
    "OnnxExporter",
    "OutsideBounds",
    "ParityError",
    "VerifyOptions",
    "check_parity",
    "export_checkpoint",
    "export_onnx",
    "register_exporter",
    "unregister_exporter",
    "verify_artifact",
]

_LAZY = {
    "export_checkpoint": "aestheticnet.export.api",
    "ExportFailed": "aestheticnet.export.report",
    "ExportReport": "aestheticnet.export.report",
    "ExportOptions": "aestheticnet.export.options",
    "CoreMLInput": "aestheticnet.export.options",
    "CoreMLShapes": "aestheticnet.export.options",
    "OnnxExporter": "aestheticnet.export.options",
    "Exporter": "aestheticnet.export.exporter",
    "EXPORTERS": "aestheticnet.export.registry",
    "register_exporter": "aestheticnet.export.registry",
    "unregister_exporter": "aestheticnet.export.registry",
    "Int8Recipe": "aestheticnet.export.int8.recipe",
    "export_onnx": "aestheticnet.export.onnx.build",
    "check_parity": "aestheticnet.export.verify",
    "verify_artifact": "aestheticnet.export.verify",
    "ParityError": "aestheticnet.export.verify",
    "OutsideBounds": "aestheticnet.export.verify",
    "VerifyOptions": "aestheticnet.export.verify",
}


__getattr__ = lazy_attributes(__name__, _LAZY)
