"""ONNX -> onnx2tf -> TFLite with NHWC input ``[-1, -1, -1, 3]`` (dynamic batch, height and width).

* onnx2tf never sees the source ``.onnx``: it gets a rewritten copy in a scratch directory (it rewrites its input
  in place). The copy carries two exact rewrites (:mod:`aestheticnet.export.onnx_rewrites`): dilated convolutions
  as zero-tap undilated ones (the "CBAM residual": wrong SpaceToBatch/BatchToSpace phases under dynamic shapes)
  and max pools with edge padding (no -inf in int8 calibration ranges). After conversion the zero-tap kernels are
  compacted back into natively dilated TFLite convolutions (:mod:`aestheticnet.export.tflite_rewrites`; exact,
  and 1.9x faster for the default model than leaving the zeros in).
* Full int8 keeps a model's input normalisation (``input_norm``: every operator before the first convolution
  other than padding) and its tail (CBAM, pooling, classifier, softmax) in float, through TensorFlow's selective
  quantisation (``QuantizationDebugger`` with denylisted nodes), and corrects the classifier's bias for the int8
  offset (:mod:`aestheticnet.export.int8_recipe`); the rest is int8. Quantising the normalisation's division by
  a local deviation took the SROCC of an MSCN model's int8 scores against fp32 from 0.98 down to 0.44 (200
  images).
* onnx2tf only builds the Keras graph (``disable_model_save=True``): no SavedModel is written and its own
  quantisation code, the only place it downloads sample images, never runs; the download function is also
  replaced by one that raises for the duration of the call. Calibration always comes from our own images.
* The TFLite converter then runs from a concrete function per precision: fp32 (builtin ops only), fp16 (float16
  weights), int8-dynamic (dynamic-range: int8 weights, float activations) and int8 (full integer inside, calibrated
  on dataset images; float32 input and output so callers never quantise by hand).
* The manifest is embedded as a TFLite metadata entry (``aestheticnet.manifest``) as well as the sidecar JSON.

:func:`convert_tflite` is a plain function of paths so the export API can run it in a worker process while the
main process converts CoreML.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
import warnings
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from aestheticnet.export.files import failure_text, quiet_fds, scratch_dir
from aestheticnet.export.int8_recipe import (
    input_prefix_tensors,
    measured_shift,
    shift_tflite_head,
    tflite_tail_tensors,
)
from aestheticnet.export.specs import ExportError
from aestheticnet.export.tflite_rewrites import pack, redilate, unpack
from aestheticnet.io import atomic_path

__all__ = ["TFLITE_PRECISIONS", "convert_tflite", "embed_tflite_metadata", "read_tflite_metadata"]

TFLITE_PRECISIONS = ("fp32", "fp16", "int8-dynamic", "int8")
METADATA_NAME = "aestheticnet.manifest"


def _onnx_for_onnx2tf(src: Path, dst: Path, equalize_on: list[np.ndarray] | None = None) -> list[str]:
    import onnx

    from aestheticnet.export.equalize import equalize_activation_ranges
    from aestheticnet.export.onnx_rewrites import edge_pad_max_pools, undilate_convolutions

    model = onnx.load(str(src))
    rewrites = []
    if equalize_on:
        # For full int8 (equalize.py). The float function is unchanged (1e-8), so the fp32 and fp16 files of the
        # same conversion share the equalised weights; the manifests of all of them record it.
        n = equalize_activation_ranges(model, equalize_on)["pairs"]
        if n:
            rewrites.append(f"activation_range_equalisation x{n}")
    n = undilate_convolutions(model)
    if n:
        rewrites.append(f"undilate_convolutions x{n}")
    n = edge_pad_max_pools(model)
    if n:
        rewrites.append(f"edge_pad_max_pools x{n}")
    onnx.save(model, str(dst))
    return rewrites


@contextlib.contextmanager
def _no_downloads():
    """onnx2tf fetches sample images from GitHub for static shapes or int8; we never let it."""
    import onnx2tf.onnx2tf as o2t

    def refuse(*_a, **_k):
        raise ExportError("onnx2tf tried to download sample images; aestheticnet supplies its own calibration data")

    saved = getattr(o2t, "download_test_image_data", None)
    o2t.download_test_image_data = refuse
    try:
        yield
    finally:
        if saved is not None:
            o2t.download_test_image_data = saved


def _load_calibration(calibration) -> list[np.ndarray]:
    if calibration is None:
        return []
    if isinstance(calibration, (str, os.PathLike)):
        with np.load(calibration) as data:
            return [data[k] for k in sorted(data.files, key=lambda k: int(k.split("_")[-1]))]
    return list(calibration)


def _representative(images: list[np.ndarray]):
    def gen() -> Iterable[list[np.ndarray]]:
        for x in images:  # NCHW (3, H, W) or (1, 3, H, W) -> NHWC (1, H, W, 3)
            x = x[None] if x.ndim == 3 else x
            yield [np.ascontiguousarray(x.transpose(0, 2, 3, 1), dtype=np.float32)]

    return gen


def convert_tflite(
    onnx_path: str | os.PathLike,
    outputs: dict[str, str | os.PathLike],
    calibration=None,
    manifests: dict[str, dict] | None = None,
    quiet: bool = True,
) -> dict[str, dict]:
    """Convert ``onnx_path`` (fp32, dynamic NCHW) to one ``.tflite`` per precision in ``outputs``.

    ``calibration``: NCHW float32 images (list, or a ``.npz`` path) for ``int8``. ``manifests``: per precision,
    the manifest to embed. Returns per precision ``{"seconds": {...}, "rewrites": [...]}``; shared steps are
    reported under the first precision.
    """
    bad = [p for p in outputs if p not in TFLITE_PRECISIONS]
    if bad:
        raise ExportError(f"TFLite precision(s) {bad} unknown; expected {', '.join(TFLITE_PRECISIONS)}")
    cpu0 = time.process_time()
    images = _load_calibration(calibration)
    if "int8" in outputs and not images:
        raise ExportError("full-int8 TFLite needs calibration images; pass --data DIR")
    results: dict[str, dict] = {p: {"seconds": {}, "rewrites": []} for p in outputs}
    first = next(iter(outputs))
    with scratch_dir(prefix="aestheticnet-tflite-") as tmp:
        log = tmp / "convert.log"
        t0 = time.perf_counter()
        copy = tmp / "model.onnx"
        rewrites = _onnx_for_onnx2tf(Path(onnx_path), copy, images if "int8" in outputs else None)
        for p in outputs:
            results[p]["rewrites"] = list(rewrites)
        try:
            with quiet_fds(log) if quiet else contextlib.nullcontext(), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                import onnx2tf
                import tensorflow as tf

                results[first]["seconds"]["import_tf"] = round(time.perf_counter() - t0, 3)
                t0 = time.perf_counter()
                with _no_downloads():
                    keras_model = onnx2tf.convert(
                        input_onnx_file_path=str(copy), output_folder_path=str(tmp / "onnx2tf"),
                        non_verbose=True, not_use_onnxsim=True, disable_model_save=True,
                    )  # fmt: skip
                results[first]["seconds"]["onnx2tf"] = round(time.perf_counter() - t0, 3)
                signature = [tf.TensorSpec(keras_model.inputs[0].shape, tf.float32, name="image")]
                function = tf.function(lambda x: keras_model(x), input_signature=signature)
                concrete = function.get_concrete_function()
                # int8 keeps the input normalisation and the tail in float (int8_recipe.py); their TFLite tensor
                # names, and the reference for the bias correction, come from a float conversion (the fp32
                # one when it is asked for).
                float_path = tmp / "float.tflite"

                def float_model() -> bytes:
                    if not float_path.exists():
                        plain = tf.lite.TFLiteConverter.from_concrete_functions([concrete], function)
                        float_path.write_bytes(plain.convert())
                    return float_path.read_bytes()

                for precision, path in outputs.items():
                    t0 = time.perf_counter()
                    converter = tf.lite.TFLiteConverter.from_concrete_functions([concrete], function)
                    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
                    if precision != "fp32":
                        converter.optimizations = [tf.lite.Optimize.DEFAULT]
                    if precision == "fp16":
                        converter.target_spec.supported_types = [tf.float16]
                    if precision == "int8":
                        converter.representative_dataset = _representative(images)
                        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
                        converter.inference_input_type = tf.float32
                        converter.inference_output_type = tf.float32
                        float_bytes = float_model()
                        prefix = input_prefix_tensors(float_bytes)
                        tail = tflite_tail_tensors(float_bytes)
                        # Selective quantisation: the denylisted operators stay float, the rest is int8.
                        debugger = tf.lite.experimental.QuantizationDebugger(
                            converter=converter, debug_dataset=_representative(images),
                            debug_options=tf.lite.experimental.QuantizationDebugOptions(
                                denylisted_nodes=prefix + tail),
                        )  # fmt: skip
                        flat, redilated = redilate(debugger.get_nondebug_quantized_model())
                        if prefix:
                            results[precision]["rewrites"].append(f"float_input_normalisation x{len(prefix)} tensors")
                        if tail:
                            results[precision]["rewrites"].append(f"float_tail x{len(tail)} tensors")
                        quantized = tmp / "int8.tflite"
                        quantized.write_bytes(flat)
                        corrected = shift_tflite_head(flat, measured_shift(float_path, quantized, images))
                        if corrected is not None:
                            flat = corrected
                            results[precision]["rewrites"].append("classifier_bias_correction")
                    else:
                        converted = converter.convert()
                        if precision == "fp32" and "int8" in outputs:
                            float_path.write_bytes(converted)  # reused for the float parts of int8
                        flat, redilated = redilate(converted)
                    if redilated:
                        results[precision]["rewrites"].append(f"redilate_convolutions x{redilated}")
                    if manifests and precision in manifests:
                        manifests[precision]["export"]["rewrites"] = results[precision]["rewrites"]
                        flat = embed_tflite_metadata(flat, {METADATA_NAME: json.dumps(manifests[precision])})
                    with atomic_path(path) as out:
                        Path(out).write_bytes(flat)
                    results[precision]["seconds"]["tflite_convert"] = round(time.perf_counter() - t0, 3)
        except ExportError:
            raise
        except Exception as exc:
            raise ExportError(failure_text(f"TFLite conversion of {onnx_path}", exc, log)) from exc
    # CPU seconds of this call (this process only): with ``jobs=2`` it shows what the wall time would be on idle cores.
    results[first]["cpu_seconds"] = round(time.process_time() - cpu0, 3)
    return results


def embed_tflite_metadata(flat: bytes, entries: dict[str, str]) -> bytes:
    """Add (or replace) named metadata buffers in a TFLite flatbuffer."""
    from ai_edge_litert import schema_py_generated as schema

    model, _ = unpack(flat)
    model.metadata = [m for m in (model.metadata or []) if m.name.decode() not in entries]
    model.buffers = model.buffers or []
    for name, value in entries.items():
        buffer = schema.BufferT()
        buffer.data = np.frombuffer(value.encode(), dtype=np.uint8)
        model.buffers.append(buffer)
        meta = schema.MetadataT()
        meta.name = name.encode()
        meta.buffer = len(model.buffers) - 1
        model.metadata.append(meta)
    return pack(model, len(flat))


def read_tflite_metadata(path_or_bytes) -> dict[str, str]:
    """Named metadata entries of a TFLite file, decoded as UTF-8 where possible."""
    from ai_edge_litert import schema_py_generated as schema

    data = Path(path_or_bytes).read_bytes() if isinstance(path_or_bytes, (str, os.PathLike)) else path_or_bytes
    model = schema.Model.GetRootAsModel(bytearray(data), 0)
    out = {}
    for i in range(model.MetadataLength()):
        meta = model.Metadata(i)
        buf = model.Buffers(meta.Buffer())
        raw = buf.DataAsNumpy()
        if isinstance(raw, np.ndarray):
            try:
                out[meta.Name().decode()] = raw.tobytes().decode()
            except UnicodeDecodeError:
                continue
    return out
