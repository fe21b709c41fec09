"""Export to ONNX with the dynamo exporter and dynamic batch, height and width; fp16 and int8 variants.

Route: :func:`~aestheticnet.export.prepare.prepare_for_export` (exact rewrites) -> ``torch.export`` with
``H = 32 * Dim`` -> ONNX (opset >= 18) -> onnxsim, which keeps the dynamic dims (checked: the input's batch,
height and width stay symbolic). The TorchScript exporter is used only when the dynamo route raises, and the
result records which exporter ran and why (``OnnxExport.exporter`` / the manifest's ``export`` section).

When a :class:`~aestheticnet.export.prepare.Traced` program is passed (the export API does), the already
decomposed program is translated directly; that step is private API of ``torch.onnx``, so any failure there
falls back to the public ``torch.onnx.export(..., dynamo=True)``.

fp16 (:func:`to_fp16`): weights and compute in float16, graph inputs and outputs kept float32 (``keep_io_types``)
so callers pass the same float32 arrays. int8 (:func:`quantize_int8`): static QDQ, per-channel int8 weights (7-bit
range, see the function) and int8 activations calibrated (MinMax) on dataset images through the checkpoint's
preprocessing; the input normalisation and the tail stay float, the classifier's bias is corrected
(:mod:`~aestheticnet.export.int8_recipe`).
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from aestheticnet.export.dynamic import DynamicSpec, example_input
from aestheticnet.export.int8_recipe import input_prefix_nodes, measured_shift, onnx_tail_nodes, shift_onnx_head
from aestheticnet.export.specs import ExportError
from aestheticnet.io import atomic_path

__all__ = [
    "INPUT_NAME",
    "OUTPUT_NAME",
    "OnnxExport",
    "build_onnx",
    "calibration_reader",
    "embed_metadata",
    "export_onnx",
    "quantize_int8",
    "to_fp16",
]

INPUT_NAME = "image"
OUTPUT_NAME = "distribution"


@dataclass
class OnnxExport:
    path: Path
    exporter: str  # "dynamo" or "torchscript"
    fallback_reason: str | None
    opset: int
    simplified: bool
    dims: dict[str, list]
    nodes: int
    seconds: dict[str, float] = field(default_factory=dict)
    rewrites: list[str] = field(default_factory=list)

    def exporter_info(self) -> dict[str, Any]:
        return {
            "exporter": f"torch.onnx ({self.exporter})",
            "fallback_reason": self.fallback_reason,
            "opset": self.opset,
            "simplified_with": "onnxsim" if self.simplified else None,
            "rewrites": list(self.rewrites),
            "seconds": dict(self.seconds),
        }


def export_onnx(
    model: torch.nn.Module,
    path: str | Path,
    opset: int = 18,
    example_size: tuple[int, int] = (224, 224),
    spec: DynamicSpec = DynamicSpec(),  # noqa: B008
    *,
    simplify: bool = True,
    exporter: str = "auto",
) -> Path:
    """Write ``model`` to ``path`` atomically; input ``image`` NCHW float32, output ``distribution``."""
    from aestheticnet.export.prepare import prepare_for_export

    prepared, _ = prepare_for_export(model)
    return build_onnx(
        prepared, path, opset=opset, example_size=example_size, spec=spec, simplify=simplify, exporter=exporter
    ).path


def build_onnx(
    prepared: torch.nn.Module,
    path: str | Path,
    *,
    opset: int = 18,
    example_size: tuple[int, int] = (224, 224),
    spec: DynamicSpec = DynamicSpec(),  # noqa: B008
    simplify: bool = True,
    exporter: str = "auto",
    traced=None,
    metadata: dict[str, str] | None = None,
) -> OnnxExport:
    """Export an already prepared model; see the module docstring. ``exporter``: auto, dynamo or torchscript."""
    import onnx

    if opset < 18:
        raise ExportError(f"opset {opset} is too old for the dynamo exporter; use 18 or newer")
    if exporter not in ("auto", "dynamo", "torchscript"):
        raise ExportError(f"exporter={exporter!r}; expected auto, dynamo or torchscript")
    path = Path(path)
    seconds: dict[str, float] = {}
    fallback_reason = None
    used = "dynamo"
    t0 = time.perf_counter()
    if exporter == "torchscript":
        used, fallback_reason = "torchscript", "requested"
        model = _torchscript(prepared, opset, example_size)
    else:
        try:
            model = _dynamo(prepared, opset, example_size, spec, traced)
        except Exception as exc:
            if exporter == "dynamo":
                raise ExportError(f"the dynamo ONNX exporter failed: {type(exc).__name__}: {exc}") from exc
            used, fallback_reason = "torchscript", f"dynamo failed: {type(exc).__name__}: {str(exc)[:300]}"
            model = _torchscript(prepared, opset, example_size)
    seconds["export"] = round(time.perf_counter() - t0, 3)

    from aestheticnet.export.onnx_rewrites import dynamic_dims, label_dynamic_dims, rename_io

    rename_io(model, INPUT_NAME, OUTPUT_NAME)
    label_dynamic_dims(model)
    simplified = False
    if simplify:
        t0 = time.perf_counter()
        model, simplified = _simplify(model)
        seconds["onnxsim"] = round(time.perf_counter() - t0, 3)
    dims = dynamic_dims(model)
    _check_dynamic(dims, path)
    if metadata:
        embed_metadata(model, metadata)
    onnx.checker.check_model(model)
    with atomic_path(path) as tmp:
        onnx.save(model, str(tmp))
    return OnnxExport(path, used, fallback_reason, opset, simplified, dims, len(model.graph.node), seconds)


def _dynamo(prepared, opset: int, example_size, spec: DynamicSpec, traced):
    if traced is not None:
        try:
            return _translate_traced(traced, opset)
        except Exception:  # noqa: BLE001, S110
            pass  # private API changed: take the public route below
    x = example_input(example_size)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        program = torch.onnx.export(
            prepared, (x,), dynamo=True, opset_version=opset, input_names=[INPUT_NAME],
            output_names=[OUTPUT_NAME], dynamic_shapes=(spec.dims(),), verbose=False,
        )  # fmt: skip
    return program.model_proto


def _translate_traced(traced, opset: int):
    from torch.onnx._internal._lazy_import import onnxscript_apis
    from torch.onnx._internal.exporter import _core, _fx_passes, _registration

    # The decomposed program when there is one (shared with CoreML), else the raw torch.export program.
    program = traced.program if traced.decomposed else traced.raw
    registry = traced.registry or _registration.ONNXRegistry.from_torchlib()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        graph_module = program.graph_module
        _fx_passes.insert_type_promotion_nodes(graph_module)
        graph_module = _fx_passes.remove_assertion_nodes(graph_module)
        program._graph_module = graph_module
        onnx_program = _core._exported_program_to_onnx_program(program, registry=registry)
        if opset != 18:
            onnx_program.model = onnxscript_apis.convert_version(onnx_program.model, opset)
        onnx_program.optimize()
    return onnx_program.model_proto


def _torchscript(prepared, opset: int, example_size):
    import io

    import onnx

    x = example_input(example_size)
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            prepared, (x,), buffer, dynamo=False, opset_version=opset, input_names=[INPUT_NAME],
            output_names=[OUTPUT_NAME],
            dynamic_axes={INPUT_NAME: {0: "batch", 2: "height", 3: "width"}, OUTPUT_NAME: {0: "batch"}},
        )  # fmt: skip
    return onnx.load_from_string(buffer.getvalue())


def _simplify(model):
    try:
        import onnxsim

        simplified, ok = onnxsim.simplify(model)
    except Exception:  # noqa: BLE001
        return model, False
    if not ok:
        return model, False
    # onnxsim must keep the dims dynamic; if it froze any, keep the unsimplified graph.
    from aestheticnet.export.onnx_rewrites import dynamic_dims

    before, after = dynamic_dims(model), dynamic_dims(simplified)
    for key in ("input", "output"):
        if any(isinstance(a, str) and not isinstance(b, str) for a, b in zip(before[key], after[key])):
            return model, False
    return simplified, True


def _check_dynamic(dims: dict[str, list], path: Path) -> None:
    inp, out = dims["input"], dims["output"]
    frozen = [axis for axis in (0, 2, 3) if not isinstance(inp[axis], str)]
    if len(inp) != 4 or inp[1] != 3 or frozen or not isinstance(out[0], str):
        raise ExportError(
            f"{path}: expected input dims [batch, 3, height, width] with batch/height/width symbolic and a "
            f"symbolic output batch, got input {inp} and output {out}"
        )


def embed_metadata(model, entries: dict[str, str]) -> None:
    """Set (replace) ONNX ``metadata_props`` entries."""
    keep = [p for p in model.metadata_props if p.key not in entries]
    del model.metadata_props[:]
    model.metadata_props.extend(keep)
    for key, value in entries.items():
        prop = model.metadata_props.add()
        prop.key, prop.value = str(key), str(value)


def to_fp16(src: str | Path, dst: str | Path, metadata: dict[str, str] | None = None) -> Path:
    """float16 weights and compute, float32 graph inputs and outputs."""
    import onnx
    from onnxruntime.transformers.float16 import convert_float_to_float16

    model = onnx.load(str(src))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        half = convert_float_to_float16(model, keep_io_types=True)
    from aestheticnet.export.onnx_rewrites import topological_sort

    topological_sort(half)  # the converter appends the input casts after the nodes that read them
    if metadata:
        embed_metadata(half, metadata)
    onnx.checker.check_model(half)
    with atomic_path(dst) as tmp:
        onnx.save(half, str(tmp))
    return Path(dst)


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
    src: str | Path, dst: str | Path, calibration: list[np.ndarray], metadata: dict[str, str] | None = None
) -> Path:
    """Static QDQ int8 (per-channel weights, int8 activations, MinMax calibration on ``calibration``).

    Channel ranges are equalised first (:mod:`aestheticnet.export.equalize`). ``calibration`` is used as given;
    ``export_checkpoint`` leaves outlier images out of it first (:mod:`aestheticnet.export.calibration_outliers`).
    The input normalisation and the tail (CBAM, pooling, classifier, softmax) stay float and the classifier's bias
    is corrected for the int8 offset: see :mod:`aestheticnet.export.int8_recipe`.
    """
    import onnx
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    from aestheticnet.export.equalize import equalize_activation_ranges
    from aestheticnet.export.files import scratch_dir

    if not calibration:
        raise ExportError("int8 quantisation needs calibration images; pass --data DIR (or calibration arrays)")

    with scratch_dir() as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pre = tmp / "pre.onnx"
        # onnxruntime's symbolic shape inference cannot follow 32*h_blocks through the graph; ONNX's own
        # shape inference is enough for the quantiser.
        quant_pre_process(str(src), str(pre), skip_symbolic_shape=True)
        prepared = onnx.load(str(pre))
        # Equal channel ranges before the per-tensor int8 scales are chosen (equalize.py).
        equalize_activation_ranges(prepared, calibration)
        onnx.save(prepared, str(pre))
        out = tmp / "int8.onnx"
        # reduce_range: 7-bit weights. On x86 CPUs without VNNI (AVX2 only, like the CI machines) ONNX Runtime's
        # int8 kernels sum u8*s8 pairs in saturating int16 (vpmaddubsw); with 8-bit weights the fused model's
        # scores drifted (SROCC 0.886 vs 0.994 for the same QDQ graph run unfused on an 8-cell C=16 network).
        quantize_static(
            str(pre), str(out), calibration_reader(calibration), quant_format=QuantFormat.QDQ, per_channel=True,
            reduce_range=True, activation_type=QuantType.QInt8, weight_type=QuantType.QInt8,
            nodes_to_exclude=input_prefix_nodes(prepared) + onnx_tail_nodes(prepared),
            extra_options={"ActivationSymmetric": False, "WeightSymmetric": True},
        )  # fmt: skip

        model = onnx.load(str(out))
        # Bias correction of the (float) classifier, measured on the calibration images (int8_recipe.py).
        shift_onnx_head(model, measured_shift(src, out, calibration))
        if metadata:
            embed_metadata(model, metadata)
        with atomic_path(dst) as final:
            onnx.save(model, str(final))
    return Path(dst)
