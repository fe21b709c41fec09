"""ONNX fp16: float16 weights and compute, float32 graph inputs and outputs, so callers pass float32 arrays."""

from __future__ import annotations

import warnings
from pathlib import Path

from aestheticnet.artifacts.embedded import embed_onnx_metadata
from aestheticnet.io import atomic_path

__all__ = ["to_fp16"]


def to_fp16(src: str | Path, dst: str | Path, metadata: dict[str, str] | None = None) -> Path:
    """float16 weights and compute, float32 graph inputs and outputs."""
    import onnx
    from onnxruntime.transformers.float16 import convert_float_to_float16

    model = onnx.load(str(src))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        half = convert_float_to_float16(model, keep_io_types=True)
    from aestheticnet.export.onnx.rewrites import topological_sort

    topological_sort(half)  # the converter appends the input casts after the nodes that read them
    if metadata:
        embed_onnx_metadata(half, metadata)
    onnx.checker.check_model(half)
    with atomic_path(dst) as tmp:
        onnx.save(half, str(tmp))
    return Path(dst)
