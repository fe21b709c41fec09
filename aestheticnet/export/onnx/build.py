"""Export to ONNX with the dynamo exporter and dynamic batch, height and width; fp16 and int8 variants.

Route: :func:`~aestheticnet.export.prepare.prepare_for_export` (exact rewrites) -> ``torch.export`` with
``H = 32 * Dim`` -> ONNX (opset >= 18) -> onnxsim, which keeps the dynamic dims (checked: the input's batch,
height and width stay symbolic). The TorchScript exporter is used only when the dynamo route raises, and the
result records which exporter ran and why (``OnnxExport.exporter`` / the manifest's ``export`` section).

When a :class:`~aestheticnet.export.prepare.Traced` program is passed (the export API does), the already
decomposed program is translated directly; that step is private API of ``torch.onnx``, so any failure there
falls back to the public ``torch.onnx.export(..., dynamo=True)``.

fp16: weights and compute in float16, graph inputs and outputs kept float32 (``keep_io_types``)
so callers pass the same float32 arrays (:mod:`aestheticnet.export.onnx.fp16`). int8 applies the
:class:`~aestheticnet.export.int8.recipe.Int8Recipe` (:mod:`aestheticnet.export.onnx.int8`).
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from aestheticnet.artifacts import INPUT_NAME, OUTPUT_NAME
from aestheticnet.export.dynamic import DynamicSpec, example_input
from aestheticnet.export.errors import ExportError
from aestheticnet.export.options import OnnxExporter
from aestheticnet.io import atomic_path

__all__ = ["OnnxExport", "build_onnx", "export_onnx"]


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


def export_onnx(model: torch.nn.Module, path: str | Path, **options) -> Path:
    """Write ``model`` to ``path`` atomically; input ``image`` NCHW float32, output ``distribution``.

    ``options`` are :func:`build_onnx`'s (``opset``, ``example_size``, ``spec``, ``simplify``, ``exporter``).
    """
    from aestheticnet.export.prepare import prepare_for_export

    prepared, _ = prepare_for_export(model)
    return build_onnx(prepared, path, **options).path


def build_onnx(
    prepared: torch.nn.Module,
    path: str | Path,
    *,
    opset: int = 18,
    example_size: tuple[int, int] = (224, 224),
    spec: DynamicSpec = DynamicSpec(),  # noqa: B008
    simplify: bool = True,
    exporter: OnnxExporter = OnnxExporter.AUTO,
    traced=None,
) -> OnnxExport:
    """Export an already prepared model; see the module docstring."""
    import onnx

    if opset < 18:
        raise ExportError(f"opset {opset} is too old for the dynamo exporter; use 18 or newer")
    if not isinstance(exporter, OnnxExporter):
        raise ExportError(f"exporter={exporter!r}; expected one of {', '.join(repr(e) for e in OnnxExporter)}")
    path = Path(path)
    seconds: dict[str, float] = {}
    fallback_reason = None
    used = "dynamo"
    t0 = time.perf_counter()
    if exporter == OnnxExporter.TORCHSCRIPT:
        used, fallback_reason = "torchscript", "requested"
        model = _torchscript(prepared, opset, example_size)
    else:
        try:
            model = _dynamo(prepared, opset, example_size, spec, traced)
        except Exception as exc:
            if exporter == OnnxExporter.DYNAMO:
                raise ExportError(f"the dynamo ONNX exporter failed: {type(exc).__name__}: {exc}") from exc
            used, fallback_reason = "torchscript", f"dynamo failed: {type(exc).__name__}: {str(exc)[:300]}"
            model = _torchscript(prepared, opset, example_size)
    seconds["export"] = round(time.perf_counter() - t0, 3)

    from aestheticnet.export.onnx.rewrites import dynamic_dims, label_dynamic_dims, rename_io

    rename_io(model, INPUT_NAME, OUTPUT_NAME)
    label_dynamic_dims(model)
    simplified = False
    if simplify:
        t0 = time.perf_counter()
        model, simplified = _simplify(model)
        seconds["onnxsim"] = round(time.perf_counter() - t0, 3)
    dims = dynamic_dims(model)
    _check_dynamic(dims, path)
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
            prepared,
            (x,),
            dynamo=True,
            opset_version=opset,
            input_names=[INPUT_NAME],
            output_names=[OUTPUT_NAME],
            dynamic_shapes=(spec.dims(),),
            verbose=False,
        )
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
            prepared,
            (x,),
            buffer,
            dynamo=False,
            opset_version=opset,
            input_names=[INPUT_NAME],
            output_names=[OUTPUT_NAME],
            dynamic_axes={INPUT_NAME: {0: "batch", 2: "height", 3: "width"}, OUTPUT_NAME: {0: "batch"}},
        )
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
    from aestheticnet.export.onnx.rewrites import dynamic_dims

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
