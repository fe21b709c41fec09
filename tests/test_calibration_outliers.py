"""Calibration images with out-of-line activations are left out of int8 calibration, and only those."""

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from aestheticnet.export.int8.outliers import drop_calibration_outliers, find_outliers
from aestheticnet.export.int8.recipe import DEFAULT_RECIPE, Int8Recipe

OUTLIER_FACTOR = DEFAULT_RECIPE.outlier_factor


def graph(tail: bool = False) -> onnx.ModelProto:
    """image -> Conv (3->4) -> Relu -> Conv (4->4) -> out; with ``tail``, the out tensor continues through a float
    tail, GlobalAveragePool -> Mul(2) -> Exp, whose values differ by orders of magnitude between images."""
    rng = np.random.default_rng(0)
    weights = {
        "w1": rng.standard_normal((4, 3, 3, 3)).astype(np.float32),
        "w2": rng.standard_normal((4, 4, 1, 1)).astype(np.float32),
    }
    nodes = [
        helper.make_node("Conv", ["image", "w1"], ["c1"], name="conv1", pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c1"], ["r1"], name="relu1"),
        helper.make_node("Conv", ["r1", "w2"], ["c2"], name="conv2"),
    ]
    out = "c2"
    if tail:
        weights["k"] = np.array(2.0, np.float32)
        nodes += [
            helper.make_node("GlobalAveragePool", ["c2"], ["pooled"], name="pool"),
            helper.make_node("Mul", ["pooled", "k"], ["scaled"], name="scale"),
            helper.make_node("Exp", ["scaled"], ["tail_out"], name="exp"),
        ]
        out = "tail_out"
    g = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, [None, 3, None, None])],
        [helper.make_tensor_value_info(out, TensorProto.FLOAT, None)],
        [numpy_helper.from_array(v, k) for k, v in weights.items()],
    )
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 18)])


def images(n: int, gains: dict[int, float], seed: int = 1) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.standard_normal((3, 16, 16)).astype(np.float32) * gains.get(i, 1.0) for i in range(n)]


def test_an_image_with_far_larger_activations_is_found_and_only_it():
    calib = images(20, {7: 50.0, 3: 2.5})  # 2.5x is an ordinary spread, 50x is not
    found = find_outliers(graph(), calib, [f"img{i}" for i in range(20)])
    assert [(o.index, o.image) for o in found] == [(7, "img7")]
    assert found[0].ratio > OUTLIER_FACTOR and found[0].tensor in {"c1", "r1", "c2"}
    assert find_outliers(graph(), images(20, {3: 2.5})) == []


def test_at_most_a_tenth_of_the_images_is_left_out_worst_first():
    calib = images(20, {5: 90.0, 9: 60.0})
    assert [o.index for o in find_outliers(graph(), calib)] == [5, 9]  # 10% of 20, the larger first
    assert find_outliers(graph(), images(9, {4: 90.0})) == []  # fewer than 10 images: nothing is left out


def test_a_heavy_tail_keeps_every_image_unless_the_recipe_cuts_it():
    calib = images(20, {2: 30.0, 5: 90.0, 9: 60.0, 11: 40.0})  # 4 of 20 beyond the factor: a tail, not outliers
    assert find_outliers(graph(), calib) == []
    cut = Int8Recipe(keep_heavy_tails=False)
    assert [o.index for o in find_outliers(graph(), calib, recipe=cut)] == [5, 9]  # the two largest
    with pytest.raises(ValueError, match="factor"):
        find_outliers(graph(), calib, recipe=Int8Recipe(outlier_factor=1.0))


def test_the_float_tail_does_not_make_an_image_an_outlier():
    # Image 4 is 1.8x brighter: unremarkable in the convolutions, but exp(2 * mean) in the tail is huge.
    calib = images(20, {4: 1.8})
    tail = graph(tail=True)
    assert find_outliers(tail, calib) == []
    # the same tensors counted without the tail exclusion would flag it (the check is not vacuous)
    from aestheticnet.export.activations import iter_activations

    exp = np.array([v["tail_out"].max() for v in iter_activations(tail, ["tail_out"], calib)])
    assert exp[4] / np.median(exp) > OUTLIER_FACTOR


def test_dropping_returns_the_other_images_and_records_why(tmp_path):
    path = tmp_path / "g.onnx"
    onnx.save(graph(), str(path))
    calib = images(20, {7: 50.0})
    names = [f"img{i}" for i in range(20)]
    kept, info = drop_calibration_outliers(path, calib, names, {"samples": 20, "source": "x"})
    assert len(kept) == 19 and not any(k is calib[7] for k in kept)
    assert info["samples"] == 20 and info["used"] == 19 and info["source"] == "x"
    assert [o["image"] for o in info["outliers"]] == ["img7"] and "8x the median" in info["outlier_rule"]
    assert info["beyond_factor"] == 1
    same, info = drop_calibration_outliers(path, images(20, {}), names, None)
    assert len(same) == 20 and info["used"] == 20 and info["outliers"] == [] and info["beyond_factor"] == 0
    tail, info = drop_calibration_outliers(path, images(20, {2: 30.0, 5: 90.0, 9: 60.0}), names, None)
    assert len(tail) == 20 and info["outliers"] == [] and info["beyond_factor"] == 3
    assert "a heavy tail, not outliers" in info["outlier_rule"]
