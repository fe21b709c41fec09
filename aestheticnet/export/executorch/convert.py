"""``torch.export`` -> ExecuTorch program (``.pte``) with every supported op delegated to XNNPACK.

* Shapes: bounded dynamic batch and H/W (``multiple x Dim``, as for ONNX and CoreML), with bounds of their own
  (:func:`~aestheticnet.export.dynamic.planned_spec`): ExecuTorch plans the memory of the program's input, output
  and the tensors between delegated parts for the upper bounds when a method loads, and XNNPACK's workspace grew
  with them too, so the bounds are what a runtime allocates. Measured on the demo's model (5 cells, C=16, MSCN):
  batch 8 and sides up to 1024 planned 104 MiB, and the process grew by 105 MiB at load and 294 MiB more at the
  first 224x224 inference; batch 1 and sides up to 640 planned 5.1 MiB, +6.5 and +20 MiB. So by default they
  follow the checkpoint's preprocessing (batch 1, the longest side it produces), and ``ExportOptions.max_batch`` /
  ``max_side`` set others. The manifest records the bounds and, in its sidecar, the planned bytes (known only once
  the program is laid out, after the embedded copy was written).
* Precision: ``fp32``; ``int8`` = the PT2E flow with ExecuTorch's XNNPACK quantizer (static int8 activations,
  symmetric int8 weights, per-channel as the :class:`~aestheticnet.export.int8.recipe.Int8Recipe` says),
  calibrated on the same images as the ONNX and TFLite int8 exports; the recipe's float parts (input
  normalisation, tail) are left unquantised. Inputs and outputs are float32 in every precision.
* Metadata: the manifest JSON is a constant method of the program
  (:data:`~aestheticnet.artifacts.embedded.EXECUTORCH_METHOD`) and the sidecar manifest as for every format.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from aestheticnet.artifacts import SPECS, Format, Precision
from aestheticnet.artifacts.embedded import EMBED_KEY, EXECUTORCH_METHOD, flat_entries
from aestheticnet.export.dynamic import DynamicSpec, example_input
from aestheticnet.export.errors import ExportError
from aestheticnet.export.int8.recipe import DEFAULT_RECIPE, Int8Recipe

__all__ = ["Converted", "conversion_text", "convert_executorch", "export_program", "xnnpack_pools"]


def xnnpack_pools(model: torch.nn.Module) -> torch.nn.Module:
    """``model``, or a copy whose :class:`~aestheticnet.nas.operations.AvgPool3x3` blocks are one
    ``avg_pool2d(count_include_pad=False)`` and whose input normaliser takes its window means in the "wide" form
    (:class:`~aestheticnet.models.input_norm.LocalContrastNorm`). The blocks' ``pool(x) / pool(ones)`` form, which
    the other converters need, averages with padded zeros counted, which XNNPACK does not take; ExecuTorch then ran
    those pools in its portable kernel (measured: 6 ms for one pool of a 16x112x112 map, PyTorch 0.5 ms; most of a
    5-cell network's 10 ms at 224x224). XNNPACK's average pooling leaves padding out, as the blocks do; the result
    differs from the quotient by float rounding only. The normaliser's 7x7 means on the image's 3 channels were
    most of the demo model's time even in XNNPACK (5.2 of 6.5 ms at 224x224, 1 thread); in the wide form they
    pool over hundreds of channels."""
    import copy

    from aestheticnet.models.input_norm import LocalContrastNorm
    from aestheticnet.nas.operations import AvgPool3x3

    if not any(isinstance(m, (AvgPool3x3, LocalContrastNorm)) for m in model.modules()):
        return model
    model = copy.deepcopy(model)
    for parent in list(model.modules()):
        if isinstance(parent, LocalContrastNorm):
            parent.form = "wide"
        for name, child in list(parent._modules.items()):
            if isinstance(child, AvgPool3x3):
                parent._modules[name] = torch.nn.AvgPool2d(3, child.stride, padding=1, count_include_pad=False)
    return model


def export_program(model: torch.nn.Module, spec: DynamicSpec, example_size: tuple[int, int] | None = None):
    """The float program every ExecuTorch precision starts from (quantisation works on a copy of its module), with
    :func:`xnnpack_pools`; ``example_size`` defaults to the spec's example (inside its bounds)."""
    model = xnnpack_pools(model)
    example = example_input(example_size or spec.example_size, spec.example_batch)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return torch.export.export(model, (example,), dynamic_shapes=(spec.dims(),))


def _quantized_modules(model: torch.nn.Module, recipe: Int8Recipe) -> list[str]:
    """Names of the network's modules that become int8: all but the ones the recipe keeps in float (the quantizer
    takes no "leave this one float" setting, so the int8 ones are named; a module list by its items)."""
    floats = (["input_norm"] if recipe.float_input_prefix else []) + (
        ["attention", "head"] if recipe.float_tail else []
    )
    names = []
    for name, child in model.named_children():
        if name in floats or child is None:
            continue
        if isinstance(child, torch.nn.ModuleList):
            names += [f"{name}.{i}" for i in range(len(child))]
        else:
            names.append(name)
    return names


def _in_modules(names: list[str]):
    """A quantizer filter: True for the nodes that one of the modules ``names`` (or a submodule) computes, and for
    nodes no module computes, such as the weight and bias constants of an unlifted program."""

    def accepts(node) -> bool:
        stack = node.meta.get("nn_module_stack")
        if not stack:
            return True
        paths = [path.removeprefix("L['self'].") for path, _ in stack.values()]
        return any(path == name or path.startswith(name + ".") for path in paths for name in names)

    return accepts


def _quantize(model, program, images: list[np.ndarray], recipe: Int8Recipe, spec: DynamicSpec, example_size=None):
    from executorch.backends.xnnpack.quantizer.xnnpack_quantizer import (
        XNNPACKQuantizer,
        get_symmetric_quantization_config,
    )
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

    if not images:
        raise ExportError("ExecuTorch int8 is calibrated on real images: pass --data DIR")
    quantizer = XNNPACKQuantizer()
    quantizer.set_global(get_symmetric_quantization_config(is_per_channel=recipe.per_channel_weights))
    # Not set_module_name: its filter must accept every node of a pattern, and the weights of an unlifted program
    # carry no module, so no convolution was ever quantised (the int8 program ran XNNPACK's float kernels between
    # quantise and dequantise steps, slower than fp32).
    quantizer.set_filter_function(_in_modules(_quantized_modules(model, recipe)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        observed = prepare_pt2e(program.module(), quantizer)
        with torch.no_grad():
            for x in images:
                observed(torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)).reshape(1, *x.shape[-3:]))
        converted = convert_pt2e(observed)
    return export_program(converted, spec, example_size)


def conversion_text(precision: Precision, recipe: Int8Recipe) -> str:
    """The ``export.conversion`` entry of an ExecuTorch manifest."""
    text = (
        "AvgPool3x3 as avg_pool2d(count_include_pad=False), the input normaliser's means as 1-D passes over "
        "wide views; torch.export -> "
        "executorch.exir.to_edge -> to_backend(XnnpackPartitioner) -> to_executorch"
    )
    if precision != Precision.INT8:
        return text
    weights = "per-channel" if recipe.per_channel_weights else "per-tensor"
    return (
        f"{text}; PT2E XNNPACKQuantizer (static int8 activations, symmetric {weights} int8 weights, "
        f"MinMax calibration); {recipe.float_parts()}"
    )


@dataclass(frozen=True)
class Converted:
    """What :func:`convert_executorch` made: the seconds of each step and the program's planned memory."""

    seconds: dict[str, float]
    planned_memory_bytes: int


def convert_executorch(
    prepared: torch.nn.Module,
    path: str | Path,
    *,
    precision: Precision = Precision.FP32,
    spec: DynamicSpec = DynamicSpec(),  # noqa: B008 - frozen dataclass
    images: list[np.ndarray] | None = None,
    recipe: Int8Recipe = DEFAULT_RECIPE,
    manifest: dict[str, Any] | None = None,
    program=None,
) -> Converted:
    """Write ``path`` (a ``.pte`` file) atomically; returns the seconds of each step and the bytes the runtime
    plans for the method (:func:`~aestheticnet.export.executorch.lowering.planned_memory_bytes`).

    ``program`` is the float ``torch.export`` of ``prepared`` under ``spec`` (:func:`export_program`), shared by
    the precisions of one export so that the model is traced once; without it, it is made here."""
    precision = Precision(precision)
    if precision not in SPECS[Format.EXECUTORCH].tolerances:
        offered = ", ".join(p.value for p in SPECS[Format.EXECUTORCH].precisions)
        raise ExportError(f"ExecuTorch precision {precision.value!r} is not offered; expected one of {offered}")
    from aestheticnet.export.executorch.lowering import lower_program, planned_memory_bytes
    from aestheticnet.io import atomic_path

    seconds: dict[str, float] = {}
    if program is None:
        t0 = time.perf_counter()
        program = export_program(prepared, spec)
        seconds["torch_export"] = round(time.perf_counter() - t0, 3)
    if precision == Precision.INT8:
        t0 = time.perf_counter()
        program = _quantize(prepared, program, list(images or []), recipe, spec)
        seconds["quantize"] = round(time.perf_counter() - t0, 3)
    t0 = time.perf_counter()
    constants = {EXECUTORCH_METHOD: flat_entries(manifest)[EMBED_KEY]} if manifest else None
    lowered = lower_program(program, constants)
    seconds["lower"] = round(time.perf_counter() - t0, 3)
    with atomic_path(Path(path)) as tmp:
        Path(tmp).write_bytes(lowered.buffer)
    return Converted(seconds, planned_memory_bytes(lowered))
