"""Export checkpoints to ONNX, TFLite and CoreML with dynamic shapes, manifests and verified parity.

Heavy dependencies (torch.onnx, onnx2tf/TensorFlow, coremltools) are imported by the functions that need them,
so importing this package is cheap. Main entry points::

    from aestheticnet.export import export_checkpoint, check_parity, verify_artifact
    export_checkpoint("model.safetensors", "onnx,tflite,coreml", "fp32", "out/")
    check_parity("out/model.fp32.tflite", "model.safetensors")   # raises ParityError listing every mismatch
"""

from __future__ import annotations

from aestheticnet.export.specs import (
    FORMATS,
    PRECISIONS,
    SPECS,
    TOLERANCES,
    ExportError,
    Tolerance,
    UnknownFormatError,
    UnknownPrecisionError,
)

__all__ = [
    "FORMATS",
    "PRECISIONS",
    "SPECS",
    "TOLERANCES",
    "ExportError",
    "ParityError",
    "Tolerance",
    "UnknownFormatError",
    "UnknownPrecisionError",
    "check_parity",
    "export_checkpoint",
    "export_onnx",
    "read_manifest",
    "verify_artifact",
]

_LAZY = {
    "export_checkpoint": "aestheticnet.export.api",
    "export_onnx": "aestheticnet.export.onnx_export",
    "check_parity": "aestheticnet.export.verify",
    "verify_artifact": "aestheticnet.export.verify",
    "ParityError": "aestheticnet.export.verify",
    "read_manifest": "aestheticnet.export.manifest",
}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'aestheticnet.export' has no attribute {name!r}")
