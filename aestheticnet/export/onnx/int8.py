"""ONNX int8: the :class:`~aestheticnet.export.int8.recipe.Int8Recipe` applied to an fp32 ONNX file, as static QDQ.

Per-channel int8 weights and int8 activations calibrated (MinMax) on dataset images through the checkpoint's
preprocessing, after activation range equalisation; the recipe's float parts stay float and the classifier's bias
is corrected for the int8 offset. ``calibration`` is used as given: ``export_checkpoint`` leaves the recipe's
outlier images out of it first (:mod:`aestheticnet.export.int8.outliers`).
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from aestheticnet.artifacts import INPUT_NAME
from aestheticnet.artifacts.embedded import embed_onnx_metadata
from aestheticnet.artifacts.files import scratch_dir
from aestheticnet.export.errors import ExportError
from aestheticnet.export.int8.recipe import DEFAULT_RECIPE, Int8Recipe
from aestheticnet.io import atomic_path

__all__ = ["calibration_reader", "quantize_int8"]


def calibration_reader(images: Iterable[np.ndarray]):
    """An onnxruntime ``CalibrationDataReader`` over NCHW float32 arrays, one image per call."""
    from onnxruntime.quantization import CalibrationDataReader

    class Reader(CalibrationDataReader):
        def __init__(self):
            self._it = iter(images)

        def get_next(self):
            x = next(self._it, None)
            return None if x is None else {INPUT_NAME: np.ascontiguousarray(x[None] if x.ndim == 3 else x, np.float32)}

    return Reader()


def quantize_int8(
    src: str | Path,
    dst: str | Path,
    calibration: list[np.ndarray],
    metadata: dict[str, str] | None = None,
    recipe: Int8Recipe = DEFAULT_RECIPE,
) -> Path:
    """Write the int8 model of the fp32 ONNX file ``src`` to ``dst`` (atomically), calibrated on ``calibration``."""
    import onnx
    from onnxruntime.quantization.shape_inference import quant_pre_process

    from aestheticnet.export.int8.bias import measured_shift
    from aestheticnet.export.int8.equalize import equalize_activation_ranges
    from aestheticnet.export.onnx.graph import shift_onnx_head
    from aestheticnet.runtime.backends import OnnxBackend

    if not calibration:
        raise ExportError("int8 quantisation needs calibration images; pass --data DIR (or calibration arrays)")

    with scratch_dir() as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pre = tmp / "pre.onnx"
        # onnxruntime's symbolic shape inference cannot follow 32*h_blocks through the graph; ONNX's own
        # shape inference is enough for the quantiser.
        quant_pre_process(str(src), str(pre), skip_symbolic_shape=True)
        prepared = onnx.load(str(pre))
        if recipe.equalize:  # equal channel ranges before the per-tensor int8 scales are chosen
            equalize_activation_ranges(prepared, calibration, cap=recipe.equalize_cap)
        onnx.save(prepared, str(pre))
        out = tmp / "int8.onnx"
        _quantize_static(pre, out, prepared, calibration, recipe)
        model = onnx.load(str(out))
        _integer_graph_rewrites(model, recipe)
        onnx.save(model, str(out))
        if recipe.bias_correction:  # measured on the calibration images
            shift_onnx_head(model, measured_shift(OnnxBackend, src, out, calibration))
        if metadata:
            embed_onnx_metadata(model, metadata)
        with atomic_path(dst) as final:
            onnx.save(model, str(final))
    return Path(dst)


def _quantize_static(pre: Path, out: Path, prepared, calibration: list[np.ndarray], recipe: Int8Recipe) -> None:
    """onnxruntime's static QDQ quantisation of ``pre`` as the recipe says, the recipe's float nodes left out."""
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_static

    from aestheticnet.export.onnx.graph import float_nodes

    quantize_static(
        str(pre),
        str(out),
        calibration_reader(calibration),
        quant_format=QuantFormat.QDQ,
        per_channel=recipe.per_channel_weights,
        reduce_range=recipe.onnx_weight_bits == 7,
        activation_type=QuantType.QInt8,
        weight_type=QuantType.QInt8,
        nodes_to_exclude=float_nodes(prepared, recipe),
        extra_options={
            "ActivationSymmetric": recipe.symmetric_activations,
            "WeightSymmetric": recipe.symmetric_weights,
        },
    )


def _integer_graph_rewrites(model, recipe: Int8Recipe) -> None:
    """The recipe's rewrites of the quantised graph; before the bias is measured, which is measured on the final
    graph."""
    from aestheticnet.export.onnx.depthwise import pad_depthwise_channels
    from aestheticnet.export.onnx.relu import quantised_relus_as_leaky_relu
    from aestheticnet.export.onnx.uint8 import uint8_activations

    if recipe.onnx_uint8_activations:
        uint8_activations(model)
    if recipe.onnx_relu_as_leaky_relu:
        quantised_relus_as_leaky_relu(model)
    if recipe.onnx_depthwise_channel_multiple > 1:
        pad_depthwise_channels(model, recipe.onnx_depthwise_channel_multiple)
