"""ONNX fp16: float16 weights and compute, float32 graph inputs and outputs, so callers pass float32 arrays.

Two parts stay float32: the input normalisation (a local variance is a small difference of two large means, which
half precision cancels away in flat image regions) and the tail (CBAM gates, global pooling, classifier, softmax:
sums over the whole image). An x86 CPU upcasts fp16 ONNX to float32 anyway; an ARM CPU with half-precision
arithmetic computes it in fp16, where the all-fp16 file of the demo's trained AestheticNet* missed the fp16 tolerance
on real images (emulated Neoverse-N1: max abs 6.3e-3, mean score 0.057, against 2e-3 and 0.01) and this one kept
it (3.5e-4, 1.5e-3). Keeping only the normalisation float32 left 1.3e-3 and 4.2e-3.
"""

from __future__ import annotations

import warnings
from pathlib import Path

from aestheticnet.artifacts.embedded import embed_onnx_metadata
from aestheticnet.io import atomic_path

__all__ = ["CONVERSION", "to_fp16"]


CONVERSION = (
    "onnxruntime.transformers.float16 (keep_io_types=True); the input normalisation and the tail (CBAM, pooling, "
    "classifier, softmax) stay float32"
)


def to_fp16(src: str | Path, dst: str | Path, metadata: dict[str, str] | None = None) -> Path:
    """float16 weights and compute but for the input normalisation and the tail; float32 inputs and outputs."""
    import onnx
    from onnxruntime.transformers.float16 import convert_float_to_float16

    from aestheticnet.export.onnx.graph import input_prefix_nodes, onnx_tail_nodes

    model = onnx.load(str(src))
    float32_nodes = input_prefix_nodes(model) + onnx_tail_nodes(model)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        half = convert_float_to_float16(model, keep_io_types=True, node_block_list=float32_nodes)
    from aestheticnet.export.onnx.rewrites import topological_sort

    topological_sort(half)  # the converter appends the input casts after the nodes that read them
    if metadata:
        embed_onnx_metadata(half, metadata)
    onnx.checker.check_model(half)
    with atomic_path(dst) as tmp:
        onnx.save(half, str(tmp))
    return Path(dst)
