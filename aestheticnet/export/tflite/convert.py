"""ONNX -> onnx2tf -> TFLite with NHWC input ``[-1, -1, -1, 3]`` (dynamic batch, height and width).

* onnx2tf never sees the source ``.onnx``: it gets a rewritten copy in a scratch directory (it rewrites its input
  in place). The copy carries two exact rewrites (:mod:`aestheticnet.export.onnx.rewrites`): dilated convolutions
  as zero-tap undilated ones (the "CBAM residual": wrong SpaceToBatch/BatchToSpace phases under dynamic shapes)
  and max pools with edge padding (no -inf in int8 calibration ranges). After conversion the zero-tap kernels are
  compacted back into natively dilated TFLite convolutions (:mod:`aestheticnet.export.tflite.rewrites`; exact,
  and 1.9x faster for the default model than leaving the zeros in).
* Full int8 applies the :class:`~aestheticnet.export.int8.recipe.Int8Recipe` (:mod:`aestheticnet.export.tflite.int8`).
* onnx2tf only builds the Keras graph (``disable_model_save=True``): no SavedModel is written and its own
  quantisation code, the only place it downloads sample images, never runs; the download function is also
  replaced by one that raises for the duration of the call. Calibration always comes from our own images.
* The TFLite converter then runs from a concrete function per precision: fp32 (builtin ops only), fp16 (float16
  weights), int8-dynamic (dynamic-range: int8 weights, float activations) and int8 (full integer inside, calibrated
  on dataset images; float32 input and output so callers never quantise by hand).
* The manifest is embedded as a TFLite metadata entry (:data:`~aestheticnet.artifacts.embedded.EMBED_KEY`) as
  well as the sidecar JSON.

:func:`convert_tflite` is a plain function of paths so the export API can run it in a worker process while the
main process converts CoreML.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
import warnings
from pathlib import Path

import numpy as np

from aestheticnet.artifacts import INPUT_NAME, SPECS, Format, Precision
from aestheticnet.artifacts.embedded import EMBED_KEY, embed_tflite_metadata
from aestheticnet.artifacts.files import failure_text, quiet_fds, scratch_dir
from aestheticnet.export.errors import ExportError
from aestheticnet.export.int8.recipe import DEFAULT_RECIPE, Int8Recipe
from aestheticnet.export.tflite.normaliser import NormaliserSpec, cut_input_normaliser, tensorflow_normaliser
from aestheticnet.export.tflite.rewrites import redilate
from aestheticnet.io import atomic_path

__all__ = ["TFLITE_PRECISIONS", "convert_tflite", "convert_tflite_job"]

TFLITE_PRECISIONS = tuple(p.value for p in SPECS[Format.TFLITE].precisions)


def _onnx_for_onnx2tf(
    src: Path,
    dst: Path,
    equalize_on: list[np.ndarray] | None,
    recipe: Int8Recipe,
    normaliser: NormaliserSpec | None,
) -> tuple[list[str], NormaliserSpec | None]:
    """The rewrites made on onnx2tf's copy, and ``normaliser`` when it was cut off the copy (None: left in it)."""
    import onnx

    from aestheticnet.export.int8.equalize import equalize_activation_ranges
    from aestheticnet.export.onnx.average_pools import same_pad_average_pools
    from aestheticnet.export.onnx.rewrites import same_pad_max_pools, separable_average_pools, undilate_convolutions

    model = onnx.load(str(src))
    rewrites = []
    if equalize_on and recipe.equalize:
        # For full int8. The float function is unchanged (1e-8), so the fp32 and fp16 files of the same conversion
        # share the equalised weights; the manifests of all of them record it.
        n = equalize_activation_ranges(model, equalize_on, cap=recipe.equalize_cap)["pairs"]
        if n:
            rewrites.append(f"activation_range_equalisation x{n}")
    # After the equalisation, which feeds the images to the whole graph.
    cut = normaliser is not None and cut_input_normaliser(model, normaliser)
    if cut:
        rewrites.append("input_normaliser_in_tensorflow")
    for rewrite in (undilate_convolutions, same_pad_max_pools, same_pad_average_pools, separable_average_pools):
        n = rewrite(model)
        if n:
            rewrites.append(f"{rewrite.__name__} x{n}")
    onnx.save(model, str(dst))
    return rewrites, normaliser if cut else None


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


def convert_tflite(
    onnx_path: str | os.PathLike,
    outputs: dict[str, str | os.PathLike],
    calibration=None,
    manifests: dict[str, dict] | None = None,
    quiet: bool = True,
    recipe: Int8Recipe = DEFAULT_RECIPE,
    normaliser: NormaliserSpec | None = None,
) -> dict[str, dict]:
    """Convert ``onnx_path`` (fp32, dynamic NCHW) to one ``.tflite`` per precision in ``outputs``.

    ``calibration``: NCHW float32 images (list, or a ``.npz`` path) for ``int8``. ``manifests``: per precision,
    the manifest to embed. ``recipe``: the int8 recipe. ``normaliser``: the model's input normaliser, written in
    TensorFlow in front of the rest (:mod:`aestheticnet.export.tflite.normaliser`). Returns
    per precision ``{"seconds": {...}, "rewrites": [...]}``; shared steps are reported under the first precision.
    """
    bad = [p for p in outputs if p not in TFLITE_PRECISIONS]
    if bad:
        raise ExportError(f"TFLite precision(s) {bad} unknown; expected {', '.join(TFLITE_PRECISIONS)}")
    cpu0 = time.process_time()
    images = _load_calibration(calibration)
    if Precision.INT8 in outputs and not images:
        raise ExportError("full-int8 TFLite needs calibration images; pass --data DIR")
    results: dict[str, dict] = {p: {"seconds": {}, "rewrites": []} for p in outputs}
    first = next(iter(outputs))
    with scratch_dir(prefix="aestheticnet-tflite-") as tmp:
        log = tmp / "convert.log"
        t0 = time.perf_counter()
        copy = tmp / "model.onnx"
        int8 = Precision.INT8 in outputs
        rewrites, native = _onnx_for_onnx2tf(Path(onnx_path), copy, images if int8 else None, recipe, normaliser)
        for p in outputs:
            results[p]["rewrites"] = list(rewrites)
        try:
            with quiet_fds(log) if quiet else contextlib.nullcontext(), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                import onnx2tf  # noqa: F401 - its import (TensorFlow's) is timed with TensorFlow's
                import tensorflow as tf

                results[first]["seconds"]["import_tf"] = round(time.perf_counter() - t0, 3)
                t0 = time.perf_counter()
                function, concrete = _keras_function(copy, tmp / "onnx2tf", native)
                results[first]["seconds"]["onnx2tf"] = round(time.perf_counter() - t0, 3)
                session = _Session(tf, function, concrete, tmp, images, recipe, int8)
                for precision, path in outputs.items():
                    t0 = time.perf_counter()
                    flat = session.convert(Precision(precision), results[precision]["rewrites"])
                    if manifests and precision in manifests:
                        manifests[precision]["export"]["rewrites"] = results[precision]["rewrites"]
                        flat = embed_tflite_metadata(flat, {EMBED_KEY: json.dumps(manifests[precision])})
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


def convert_tflite_job(
    onnx_path: str, outputs: dict, calibration, manifests: dict, quiet: bool, recipe: dict, normaliser: dict | None
):
    """Worker-process entry: :func:`convert_tflite` with the arguments of a JSON job file (the recipe and the
    normaliser as dicts)."""
    spec = NormaliserSpec(**normaliser) if normaliser else None
    return convert_tflite(onnx_path, outputs, calibration, manifests, quiet, Int8Recipe(**recipe), spec)


def _keras_function(onnx_copy: Path, folder: Path, normaliser: NormaliserSpec | None):
    """onnx2tf's Keras model of ``onnx_copy`` as a ``tf.function`` and its concrete function; with ``normaliser``
    (cut off the copy), the TensorFlow normaliser first."""
    import onnx2tf
    import tensorflow as tf

    with _no_downloads():
        keras_model = onnx2tf.convert(
            input_onnx_file_path=str(onnx_copy),
            output_folder_path=str(folder),
            non_verbose=True,
            not_use_onnxsim=True,
            disable_model_save=True,
        )
    if normaliser is None:
        signature = [tf.TensorSpec(keras_model.inputs[0].shape, tf.float32, name=INPUT_NAME)]
        function = tf.function(lambda x: keras_model(x), input_signature=signature)
    else:
        normalise = tensorflow_normaliser(tf, normaliser)
        signature = [tf.TensorSpec([None, None, None, 3], tf.float32, name=INPUT_NAME)]
        function = tf.function(lambda x: keras_model(normalise(x)), input_signature=signature)
    return function, function.get_concrete_function()


class _Session:
    """The TFLite conversions of one Keras graph; the float conversion is kept for int8's float parts."""

    def __init__(self, tf, function, concrete, tmp: Path, images, recipe: Int8Recipe, int8_asked: bool):
        self.tf, self.function, self.concrete = tf, function, concrete
        self.images, self.recipe, self.int8_asked = images, recipe, int8_asked
        self.float_path = tmp / "float.tflite"
        self.tmp = tmp

    def converter(self):
        converter = self.tf.lite.TFLiteConverter.from_concrete_functions([self.concrete], self.function)
        converter.target_spec.supported_ops = [self.tf.lite.OpsSet.TFLITE_BUILTINS]
        return converter

    def float_model(self) -> Path:
        """The plain float conversion (the fp32 file's bytes before re-dilation, when fp32 was asked first)."""
        if not self.float_path.exists():
            plain = self.tf.lite.TFLiteConverter.from_concrete_functions([self.concrete], self.function)
            self.float_path.write_bytes(plain.convert())
        return self.float_path

    def convert(self, precision: Precision, rewrites: list[str]) -> bytes:
        if precision == Precision.INT8:
            from aestheticnet.export.tflite.int8 import convert_int8

            flat, redilated = convert_int8(
                self.converter(), self.float_model(), self.images, self.recipe, self.tmp, rewrites
            )
        else:
            converter = self.converter()
            if precision != Precision.FP32:
                converter.optimizations = [self.tf.lite.Optimize.DEFAULT]
            if precision == Precision.FP16:
                converter.target_spec.supported_types = [self.tf.float16]
            converted = converter.convert()
            if precision == Precision.FP32 and self.int8_asked:
                self.float_path.write_bytes(converted)  # reused for the float parts of int8
            flat, redilated = redilate(converted)
        if redilated:
            rewrites.append(f"redilate_convolutions x{redilated}")
        return flat
