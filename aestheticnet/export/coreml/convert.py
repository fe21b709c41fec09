"""``torch.export`` -> coremltools ML program (``.mlpackage``) with flexible shapes, optional image input.

* Shapes: ``range`` (default) gives bounded ``RangeDim``s for batch, height and width (from the
  :class:`~aestheticnet.export.dynamic.DynamicSpec`; the network needs multiples of 32, which a RangeDim cannot
  express, so the manifest carries ``multiple: 32`` and runtimes check it). ``enumerated`` gives
  ``EnumeratedShapes``: a RangeDim model runs off the Neural Engine except at its default shape, an enumerated one
  can run on it at every listed shape.
* Image input (``input_kind="image"``): ``ImageType`` RGB, batch 1, so iOS code passes a ``CVPixelBuffer``.
  Normalisation ``(pixel / 255 - mean_c) / std_c`` has a per-channel std but ``ImageType`` has one scale:
  the image input applies ``scale = 1/255`` and ``bias = -mean_c`` (giving ``pixel / 255 - mean_c``) and the
  per-channel ``1 / std_c`` is folded into the first convolution's weights
  (:func:`~aestheticnet.export.prepare.fold_input_std`; exact, zero padding included). Scale, bias and the fold are
  recorded in the manifest.
* Precision: ``fp32`` = FLOAT32 compute; ``fp16`` = FLOAT16 compute (coremltools' default, ~1e-2 drift upstream);
  ``int8`` = int8 weights (the weight part of the :class:`~aestheticnet.export.int8.recipe.Int8Recipe`, through
  ``coremltools.optimize``, :func:`quantize_weights`) with FLOAT16 compute, the usual on-device setting. Activation
  quantisation calibrates by running predict, which needs macOS: not offered.
* Inputs and outputs are float32 in every precision (callers pass float32 arrays).
"""

from __future__ import annotations

import contextlib
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from aestheticnet.artifacts import INPUT_NAME, OUTPUT_NAME, SPECS, Format, Manifest, Precision
from aestheticnet.artifacts.embedded import coreml_entries
from aestheticnet.artifacts.files import atomic_dir, failure_text, quiet_fds, scratch_dir
from aestheticnet.export.dynamic import DynamicSpec, example_input
from aestheticnet.export.errors import ExportError
from aestheticnet.export.int8.recipe import DEFAULT_RECIPE, Int8Recipe
from aestheticnet.export.options import CoreMLInput, CoreMLOptions

__all__ = ["convert_checkpoint_coreml", "convert_coreml", "quantize_weights"]


def _image_program(prepared: torch.nn.Module, std, spec: DynamicSpec, example_size):
    from aestheticnet.export.prepare import fold_input_std

    folded = fold_input_std(prepared, tuple(std))
    dims = spec.dims()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # batch 1: ImageType inputs are single images; H and W stay 32 x Dim.
        program = torch.export.export(
            folded, (example_input(example_size, batch=1),), dynamic_shapes=({2: dims[2], 3: dims[3]},)
        )
        return program.run_decompositions({})


def convert_coreml(
    prepared: torch.nn.Module,
    path: str | Path,
    precision: Precision,
    options: CoreMLOptions,
    *,
    traced=None,
    metadata: Manifest | None = None,
    example_size: tuple[int, int] = (224, 224),
    quiet: bool = True,
) -> dict[str, Any]:
    """Write ``path`` (an ``.mlpackage`` directory) atomically; returns timings and the input description."""
    precision = Precision(precision)
    offered = SPECS[Format.COREML].precisions
    if precision not in offered:
        expected = ", ".join(p.value for p in offered)
        raise ExportError(f"CoreML precision {precision.value!r} unknown; expected one of {expected}")
    input_kind, recipe = options.input_kind, options.recipe
    path = Path(path)
    seconds: dict[str, float] = {}
    with scratch_dir(prefix="aestheticnet-coreml-") as tmp:
        log = tmp / "convert.log"
        try:
            with quiet_fds(log) if quiet else contextlib.nullcontext(), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                t0 = time.perf_counter()
                import coremltools as ct

                seconds["import_coremltools"] = round(time.perf_counter() - t0, 3)
                t0 = time.perf_counter()
                program = _program(prepared, options, traced, example_size)
                seconds["trace"] = round(time.perf_counter() - t0, 3)
                t0 = time.perf_counter()
                ct_input, described = _input(ct, options, example_size)
                model = ct.convert(
                    program,
                    convert_to="mlprogram",
                    inputs=[ct_input],
                    outputs=[ct.TensorType(name=OUTPUT_NAME, dtype=np.float32)],
                    compute_precision=ct.precision.FLOAT32
                    if precision == Precision.FP32
                    else ct.transform.FP16ComputePrecision(op_selector=_fp16_after_input_prefix()),
                    minimum_deployment_target=ct.target.iOS16,
                )
                seconds["convert"] = round(time.perf_counter() - t0, 3)
                if precision == Precision.INT8:
                    t0 = time.perf_counter()
                    model = quantize_weights(model, recipe)
                    seconds["quantize_weights"] = round(time.perf_counter() - t0, 3)
                _describe(model, metadata, input_kind)
                t0 = time.perf_counter()
                with atomic_dir(path) as out:
                    model.save(str(out))
                seconds["save"] = round(time.perf_counter() - t0, 3)
        except ExportError:
            raise
        except Exception as exc:
            raise ExportError(failure_text("CoreML conversion", exc, log)) from exc
    return {"seconds": seconds, "input": described}


def _fp16_after_input_prefix():
    """An op selector for fp16 compute that keeps float32 the ops between the input and the first convolution
    (the MSCN normaliser: window means, a square root and a division of small centred values). In float16 they
    moved the demo model's mean scores on real images by 0.011, over the 0.01 fp16 tolerance; everything from
    the first convolution on computes in float16 as before, and a model without such ops converts as before."""
    in_prefix: dict[str, bool] = {}

    def before_first_conv(op) -> bool:
        if op.name not in in_prefix:
            producers = [v.op for v in op.get_flattened_inputs() if v.op is not None]
            in_prefix[op.name] = op.op_type != "conv" and all(before_first_conv(p) for p in producers)
        return in_prefix[op.name]

    return lambda op: op.op_type == "const" or not before_first_conv(op)


def quantize_weights(model, recipe: Int8Recipe = DEFAULT_RECIPE):
    """The CoreML int8 model: the recipe's weight quantisation (activations need predict, so macOS)."""
    import coremltools.optimize.coreml as cto

    config = cto.OptimizationConfig(
        global_config=cto.OpLinearQuantizerConfig(
            mode="linear_symmetric" if recipe.symmetric_weights else "linear",
            dtype="int8",
            granularity="per_channel" if recipe.per_channel_weights else "per_tensor",
            weight_threshold=recipe.coreml_weight_threshold,
        )
    )
    return cto.linear_quantize_weights(model, config)


def _program(prepared: torch.nn.Module, options: CoreMLOptions, traced, example_size: tuple[int, int]):
    """The decomposed ``torch.export`` program to convert: the shared trace's when there is one."""
    if options.input_kind == CoreMLInput.IMAGE:
        return _image_program(prepared, options.std, options.spec, example_size)
    if traced is None:
        from aestheticnet.export.prepare import trace

        traced = trace(prepared, options.spec, example_size)
    return traced.program if traced.program is not None else traced.raw.run_decompositions({})


def _input(ct, options: CoreMLOptions, example_size: tuple[int, int]):
    shapes, input_kind, spec, enumerated = options.shapes, options.input_kind, options.spec, options.enumerated
    lo, hi = max(spec.multiple, spec.min_side), spec.max_side
    h0, w0 = example_size
    described: dict[str, Any] = {"kind": input_kind, "shapes": shapes}
    if input_kind == "image":
        if shapes == "range":
            shape = (1, 3, ct.RangeDim(lo, hi, default=h0), ct.RangeDim(lo, hi, default=w0))
            described["dynamic"] = {"batch": [1, 1], "height": [lo, hi], "width": [lo, hi]}
        else:
            shape = ct.EnumeratedShapes(shapes=[(1, 3, h, w) for h, w in enumerated], default=(1, 3, h0, w0))
            described["enumerated"] = [[1, 3, h, w] for h, w in enumerated]
        scale, bias = 1.0 / 255.0, [-float(m) for m in options.mean]
        described.update(image_scale=scale, image_bias=bias, color_layout="RGB", std_folded_into_first_conv=True)
        return ct.ImageType(
            name=INPUT_NAME, shape=shape, scale=scale, bias=bias, color_layout=ct.colorlayout.RGB
        ), described
    if shapes == "range":
        shape = ct.Shape(
            (
                ct.RangeDim(1, spec.max_batch, default=1),
                3,
                ct.RangeDim(lo, hi, default=h0),
                ct.RangeDim(lo, hi, default=w0),
            )
        )
        described["dynamic"] = {"batch": [1, spec.max_batch], "height": [lo, hi], "width": [lo, hi]}
    else:
        listed = [(1, 3, h, w) for h, w in enumerated]
        shape = ct.EnumeratedShapes(shapes=listed, default=(1, 3, h0, w0))
        described["enumerated"] = [list(s) for s in listed]
    return ct.TensorType(name=INPUT_NAME, shape=shape, dtype=np.float32), described


def _describe(model, metadata: Manifest | None, input_kind: str) -> None:
    model.short_description = "aestheticnet: distribution over aesthetic score buckets"
    model.input_description[INPUT_NAME] = (
        "RGB image (pixel buffer); normalisation is inside the model"
        if input_kind == "image"
        else "float32 NCHW, normalised (pixel/255 - mean)/std, H and W multiples of 32"
    )
    model.output_description[OUTPUT_NAME] = "float32 (batch, buckets): probabilities over scores 1..N"
    if metadata:
        model.version = str(metadata.source.package_version or "")
        user = model.user_defined_metadata
        for key, value in coreml_entries(metadata, input_kind).items():
            user[key] = value


def convert_checkpoint_coreml(checkpoint: str, jobs: list[tuple[str, str, dict]], options: dict) -> dict[str, Any]:
    """Worker-process entry: load ``checkpoint``, prepare and trace it once, convert each ``(precision, path,
    manifest)`` with the :class:`CoreMLOptions` of ``options`` (its JSON form). Returns per precision the result
    dict, or the error text (one failure does not stop the rest)."""
    from aestheticnet.export.prepare import prepare_for_export, trace
    from aestheticnet.models import load

    cpu0 = time.process_time()
    coreml = CoreMLOptions.from_json(options)
    prepared, _ = prepare_for_export(load(checkpoint))
    traced = None
    if coreml.input_kind == CoreMLInput.TENSOR:
        traced = trace(prepared, coreml.spec)
    out: dict[str, Any] = {}
    shared = {f"shared_{k}": v for k, v in (traced.seconds if traced is not None else {}).items()}
    for precision, path, manifest in jobs:
        try:
            metadata = Manifest.from_json(manifest, f"the CoreML job for {path}")
            result = convert_coreml(prepared, path, Precision(precision), coreml, traced=traced, metadata=metadata)
            result["seconds"].update(shared)  # the one trace is counted with the first precision only
            shared = {}
            out[precision] = result
        except Exception as exc:  # noqa: BLE001 - reported per precision to the parent
            out[precision] = f"{type(exc).__name__}: {exc}"
    out["cpu_seconds"] = round(time.process_time() - cpu0, 3)
    return out
