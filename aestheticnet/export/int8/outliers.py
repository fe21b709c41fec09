"""Calibration images whose activations are far out of line with the others are left out of int8 calibration.

Why: MinMax calibration gives each activation one int8 range, the largest value seen on any calibration image.
On the 20-cell default AestheticNet* distilled for 600 steps, one of the 100 synthetic calibration images (an
over-exposed one) drove the middle stage's activations to 91x the median image's largest value, and a second one
to 19x; every other image stayed within 4.9x. Those two images set the range of hundreds of tensors, so every other
image got a few of the 256 steps there: the rounding of a single node sum alone left it 5-13 dB signal-to-noise in
cells 7-13, and 31-36 dB without them. Without them, SROCC of the int8 mean scores against fp32 on 200 images
rose from 0.980 to 0.987 (ONNX QDQ) and from 0.976 to 0.989 (TFLite full int8).

Rule: for every activation, the median over the images of each image's largest |value|; an image is an outlier when
on some activation its own largest |value| exceeds ``Int8Recipe.outlier_factor`` times that median. They are
left out only while they are few, at most ``Int8Recipe.outlier_max_fraction`` of the images; when more exceed the
factor, the activations are heavy-tailed rather than outlying, and every image is kept
(``Int8Recipe.keep_heavy_tails``). The left-out images are named in the manifest, with the count beyond the factor.
Outliers' own int8 outputs are clipped where their activations exceed the range: they are rare inputs, and
``verify --data`` measures the effect on real images.

Whole images are left out, rather than clipping each tensor's range: the TFLite converter calibrates on the images
it is given, so this way ONNX and TFLite calibrate on the same data.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass

import numpy as np

from aestheticnet.export.int8.recipe import DEFAULT_RECIPE, Int8Recipe

__all__ = ["Outlier", "drop_calibration_outliers", "find_outliers"]

# Measured for the recipe's factor: on the 600-step default model with 100 calibration images, ordinary images
# reach at most 4.9x, the two outliers 19x and 91x; the 2000-step one has at most one image at 8.5-8.7x; the
# 5-cell models measured stay within 4x.


@dataclass(frozen=True)
class Outlier:
    index: int  # position in the calibration list
    image: str
    ratio: float  # largest (image's max |value|) / (median image's max |value|) over the activations
    tensor: str  # the activation where that ratio was reached


def _per_image_maxima(model, images: list[np.ndarray], recipe: Int8Recipe) -> tuple[list[str], np.ndarray]:
    """(tensor names, [images x tensors] largest |value|) over the float 4-D activations that full int8
    quantises: everything the recipe does not keep float."""
    from aestheticnet.export.activations import activation_tensors, iter_activations
    from aestheticnet.export.onnx.graph import float_nodes

    tensors = activation_tensors(model, exclude_nodes=float_nodes(model, recipe))
    kept: list[str] | None = None
    rows = []
    for values in iter_activations(model, tensors, images):
        if kept is None:
            kept = [t for t in tensors if values[t].ndim == 4 and np.issubdtype(values[t].dtype, np.floating)]
        rows.append([float(np.abs(values[t]).max()) if values[t].size else 0.0 for t in kept])
    return kept or [], np.asarray(rows, dtype=np.float64).reshape(len(rows), len(kept or []))


def _beyond_factor(model, images: list[np.ndarray], names: list[str] | None, recipe: Int8Recipe) -> list[Outlier]:
    """Every image whose activations exceed ``recipe.outlier_factor`` times the median image's, worst first."""
    tensors, maxima = _per_image_maxima(model, images, recipe)
    if not tensors:
        return []
    median = np.median(maxima, axis=0)
    ratio = np.divide(maxima, median, out=np.zeros_like(maxima), where=median > 0)
    worst = ratio.max(axis=1)
    names = names or [str(i) for i in range(len(images))]
    order = [int(i) for i in np.argsort(-worst, kind="stable") if worst[i] > recipe.outlier_factor]
    return [Outlier(i, names[i], round(float(worst[i]), 2), tensors[int(ratio[i].argmax())]) for i in order]


def _classify(
    model, images: list[np.ndarray], names: list[str] | None, recipe: Int8Recipe
) -> tuple[list[Outlier], list[Outlier]]:
    """(every image beyond the factor, the ones to leave out), both worst first."""
    limit = int(len(images) * recipe.outlier_max_fraction)
    if limit < 1:
        return [], []
    beyond = _beyond_factor(model, images, names, recipe)
    if len(beyond) > limit and recipe.keep_heavy_tails:
        # Cutting a tail this wide would clip exactly the images that make it (Int8Recipe.keep_heavy_tails).
        return beyond, []
    return beyond, beyond[:limit]


def find_outliers(
    model,
    images: list[np.ndarray],
    names: list[str] | None = None,
    recipe: Int8Recipe = DEFAULT_RECIPE,
) -> list[Outlier]:
    """The calibration images to leave out of int8 calibration of ``model`` (ONNX ModelProto), worst first."""
    return _classify(model, images, names, recipe)[1]


def drop_calibration_outliers(
    onnx_path: str | os.PathLike,
    images: list[np.ndarray],
    names: list[str],
    info: dict | None,
    recipe: Int8Recipe = DEFAULT_RECIPE,
) -> tuple[list[np.ndarray], dict]:
    """``images`` without the outliers of the fp32 model at ``onnx_path``, and ``info`` (the manifest's
    calibration entry) extended by what was left out and why."""
    import onnx

    beyond, outliers = _classify(onnx.load(str(onnx_path)), images, names, recipe)
    left_out = {o.index for o in outliers}
    info = dict(info or {})
    info["used"] = len(images) - len(left_out)
    info["outlier_rule"] = recipe.outlier_rule()
    info["beyond_factor"] = len(beyond)
    info["outliers"] = [{k: v for k, v in asdict(o).items() if k != "index"} for o in outliers]
    return [x for i, x in enumerate(images) if i not in left_out], info
