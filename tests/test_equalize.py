"""Activation range equalisation: same float function, equal channel ranges, only safe pairs touched."""

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

from aestheticnet.export.int8.equalize import _channel_maxima, _conv_pairs, equalize_activation_ranges

# Output channel sizes of the first convolution: one channel 500x smaller than the largest.
CHANNEL_GAIN = np.array([1.0, 0.002, 0.1, 5.0], np.float32)


def conv_graph(shared_weight: bool = False) -> onnx.ModelProto:
    """image -> Conv A (3->4, bias) -> Relu -> depthwise Conv B (4) -> Conv C (1x1, 4->2) -> out.

    With ``shared_weight`` a second branch image -> Conv E -> depthwise Conv F reuses B's weight in F, so no pair
    that rescales it may be touched."""
    rng = np.random.default_rng(0)
    w_a = rng.standard_normal((4, 3, 3, 3)).astype(np.float32) * CHANNEL_GAIN.reshape(-1, 1, 1, 1)
    b_a = rng.standard_normal(4).astype(np.float32) * CHANNEL_GAIN * 0.1
    w_b = rng.standard_normal((4, 1, 3, 3)).astype(np.float32)
    w_c = rng.standard_normal((2, 4, 1, 1)).astype(np.float32)
    nodes = [
        helper.make_node("Conv", ["image", "w_a", "b_a"], ["a"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["a"], ["r"]),
        helper.make_node("Conv", ["r", "w_b"], ["b"], pads=[1, 1, 1, 1], group=4),
        helper.make_node("Conv", ["b", "w_c"], ["out"]),
    ]
    outputs = [helper.make_tensor_value_info("out", TensorProto.FLOAT, None)]
    weights = {"w_a": w_a, "b_a": b_a, "w_b": w_b, "w_c": w_c}
    if shared_weight:
        weights["w_e"] = rng.standard_normal((4, 3, 3, 3)).astype(np.float32) * CHANNEL_GAIN.reshape(-1, 1, 1, 1)
        nodes.append(helper.make_node("Conv", ["image", "w_e"], ["e"], pads=[1, 1, 1, 1]))
        nodes.append(helper.make_node("Conv", ["e", "w_b"], ["f"], pads=[1, 1, 1, 1], group=4))
        outputs.append(helper.make_tensor_value_info("f", TensorProto.FLOAT, None))
    inits = [numpy_helper.from_array(v, k) for k, v in weights.items()]
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("image", TensorProto.FLOAT, [None, 3, None, None])], outputs, inits
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])


def run(model, x):
    return ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"image": x})


def test_equalisation_keeps_the_function_and_evens_the_channel_ranges():
    rng = np.random.default_rng(1)
    images = [rng.standard_normal((3, 16, 16)).astype(np.float32) for _ in range(4)]
    model = conv_graph()
    before = _channel_maxima(model, ["a", "b"], images)
    assert before["a"].max() / before["a"].min() > 100  # the situation the rewrite is for

    x = rng.standard_normal((2, 3, 24, 20)).astype(np.float32)  # not a calibration image
    reference = run(model, x)[0]
    report = equalize_activation_ranges(model, images, cap=64.0)
    assert report["pairs"] == 2 and report["max_scale"] == 64.0  # A->Relu->B and B->C; the tiny channel is capped
    np.testing.assert_allclose(run(model, x)[0], reference, rtol=1e-5, atol=1e-5)

    after = _channel_maxima(model, ["a", "b"], images)
    for name in ("a", "b"):
        ratio = after[name] / after[name].max()
        capped = ratio < 0.999
        # every channel reaches the largest one's range, except where the cap stopped it (64x, not 500x)
        assert capped.sum() <= 1, (name, ratio)
        np.testing.assert_allclose(after[name][capped], before[name][capped] * 64.0, rtol=1e-4)


def test_equalisation_leaves_shared_weights_and_graph_outputs_alone():
    images = [np.random.default_rng(2).standard_normal((3, 8, 8)).astype(np.float32)]
    model = conv_graph(shared_weight=True)

    def weight(name):
        return numpy_helper.to_array(next(t for t in model.graph.initializer if t.name == name)).copy()

    kept = {n: weight(n) for n in ("w_a", "w_b", "w_c", "w_e")}
    assert len(_conv_pairs(model)) == 3  # A->B, B->C, E->F
    report = equalize_activation_ranges(model, images)
    assert report["pairs"] == 0  # each pair scales w_b (inputs of B and F, outputs of B), which F also uses
    assert all(np.array_equal(weight(n), v) for n, v in kept.items())

    model = conv_graph()
    model.graph.output.append(helper.make_tensor_value_info("a", TensorProto.FLOAT, None))  # A's output is seen
    assert [(a.output[0], b.output[0]) for a, b, _ in _conv_pairs(model)] == [("b", "out")]


def test_the_recipe_decides_whether_the_tflite_copy_is_equalised(tmp_path):
    from aestheticnet.export.int8.recipe import DEFAULT_RECIPE, Int8Recipe
    from aestheticnet.export.tflite.convert import _onnx_for_onnx2tf

    images = [np.random.default_rng(3).standard_normal((1, 3, 16, 16)).astype(np.float32) for _ in range(2)]
    src = tmp_path / "model.onnx"
    onnx.save(conv_graph(), str(src))

    def weights(path):
        return {t.name: numpy_helper.to_array(t) for t in onnx.load(str(path)).graph.initializer}

    kept, _ = _onnx_for_onnx2tf(src, tmp_path / "kept.onnx", images, DEFAULT_RECIPE, None)
    assert not any(r.startswith("activation_range_equalisation") for r in kept)
    assert all(np.array_equal(weights(tmp_path / "kept.onnx")[k], v) for k, v in weights(src).items())

    equalised, _ = _onnx_for_onnx2tf(src, tmp_path / "eq.onnx", images, Int8Recipe(equalize=True), None)
    assert "activation_range_equalisation x2" in equalised
    assert not np.array_equal(weights(tmp_path / "eq.onnx")["w_a"], weights(src)["w_a"])
