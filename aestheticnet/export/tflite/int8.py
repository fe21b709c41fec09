"""TFLite full int8: the :class:`~aestheticnet.export.int8.recipe.Int8Recipe` applied in the TFLite converter.

The recipe's float parts stay float through TensorFlow's selective quantisation (``QuantizationDebugger`` with
denylisted nodes; their tensor names come from the float conversion of the same graph), everything else is int8
with float32 input and output so callers never quantise by hand, and the classifier's float bias is corrected for
the int8 offset measured against the float conversion on the calibration images.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np

from aestheticnet.export.int8.recipe import Int8Recipe

__all__ = ["convert_int8", "representative"]


def representative(images: list[np.ndarray]):
    """The converter's representative dataset: NCHW images as NHWC batches of one."""

    def gen() -> Iterable[list[np.ndarray]]:
        for x in images:  # NCHW (3, H, W) or (1, 3, H, W) -> NHWC (1, H, W, 3)
            x = x[None] if x.ndim == 3 else x
            yield [np.ascontiguousarray(x.transpose(0, 2, 3, 1), dtype=np.float32)]

    return gen


def convert_int8(
    converter, float_path: Path, images: list[np.ndarray], recipe: Int8Recipe, tmp: Path, rewrites: list[str]
) -> tuple[bytes, int]:
    """(int8 flatbuffer, convolutions re-dilated) from a builtins-only ``converter``; ``rewrites`` is extended."""
    import tensorflow as tf

    from aestheticnet.export.int8.bias import measured_shift
    from aestheticnet.export.tflite.graph import (
        average_pool_tensors,
        input_prefix_tensors,
        shift_tflite_head,
        tflite_tail_tensors,
    )
    from aestheticnet.export.tflite.relu import relus_as_requantize
    from aestheticnet.export.tflite.rewrites import redilate
    from aestheticnet.runtime.backends import TFLiteBackend

    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = representative(images)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = tf.float32
    converter.inference_output_type = tf.float32
    float_bytes = float_path.read_bytes()
    prefix = input_prefix_tensors(float_bytes) if recipe.float_input_prefix else []
    tail = tflite_tail_tensors(float_bytes) if recipe.float_tail else []
    floats = set(prefix + tail)
    pools = (
        [t for t in average_pool_tensors(float_bytes) if t not in floats] if recipe.tflite_float_average_pools else []
    )
    debugger = tf.lite.experimental.QuantizationDebugger(
        converter=converter,
        debug_dataset=representative(images),
        debug_options=tf.lite.experimental.QuantizationDebugOptions(denylisted_nodes=prefix + tail + pools),
    )
    flat, redilated = redilate(debugger.get_nondebug_quantized_model())
    if recipe.tflite_relu_as_requantize:
        flat, swapped = relus_as_requantize(flat)
        if swapped:
            rewrites.append(f"int8_relu_as_quantize x{swapped}")
    if prefix:
        rewrites.append(f"float_input_normalisation x{len(prefix)} tensors")
    if tail:
        rewrites.append(f"float_tail x{len(tail)} tensors")
    if pools:
        rewrites.append(f"float_average_pools x{len(pools)}")
    if recipe.bias_correction:
        quantized = tmp / "int8.tflite"
        quantized.write_bytes(flat)
        corrected = shift_tflite_head(flat, measured_shift(TFLiteBackend, float_path, quantized, images))
        if corrected is not None:
            flat = corrected
            rewrites.append("classifier_bias_correction")
    return flat, redilated
