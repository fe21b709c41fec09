"""The int8 recipe: which operators stay float, and the classifier's bias correction (export/int8, onnx/graph.py,
tflite/graph.py)."""

import numpy as np
import pytest
import torch

from aestheticnet.export.int8.bias import logit_shift
from aestheticnet.export.onnx.graph import onnx_tail_nodes, shift_onnx_head
from aestheticnet.export.tflite.graph import shift_tflite_head, tflite_tail_tensors


def softmax(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def test_logit_shift_recovers_a_constant_logit_error():
    rng = np.random.default_rng(0)
    z = rng.standard_normal((50, 10))
    delta = rng.standard_normal(10)
    noise = 0.01 * rng.standard_normal((50, 10))
    shift = logit_shift(softmax(z), softmax(z + delta + noise))
    np.testing.assert_allclose(shift, delta - delta.mean(), atol=0.01)
    # subtracting it brings the shifted model back to the reference
    np.testing.assert_allclose(softmax(z + delta - shift), softmax(z), atol=0.005)
    with pytest.raises(ValueError, match="one shape"):
        logit_shift(softmax(z), softmax(z)[:, :5])


class Head(torch.nn.Module):
    """Conv features -> CBAM-like gate -> global pool -> linear -> softmax (the tail int8 keeps float)."""

    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 8, 3, padding=1)
        self.gate = torch.nn.Conv2d(8, 8, 1)
        self.head = torch.nn.Linear(8, 10)

    def forward(self, x):
        f = torch.relu(self.conv(x))
        f = f * torch.sigmoid(self.gate(f.mean(dim=(2, 3), keepdim=True)))
        return torch.softmax(self.head(f.mean(dim=(2, 3))), dim=1)


@pytest.fixture(scope="module")
def head_onnx(tmp_path_factory):
    import onnx

    path = tmp_path_factory.mktemp("recipe") / "head.onnx"
    torch.manual_seed(0)
    torch.onnx.export(
        Head().eval(),
        (torch.randn(1, 3, 32, 32),),
        str(path),
        input_names=["image"],
        dynamic_axes={"image": {0: "batch"}},
        output_names=["distribution"],
        opset_version=18,
        dynamo=False,
    )
    return onnx.load(str(path))


def test_onnx_tail_starts_at_the_first_global_reduction(head_onnx):
    tail = set(onnx_tail_nodes(head_onnx))
    by_type = {}
    for node in head_onnx.graph.node:
        by_type.setdefault(node.op_type, []).append(node.name in tail)
    assert all(by_type["Sigmoid"]) and all(by_type["Gemm"]) and all(by_type["Softmax"])
    assert by_type["Mul"] == [True]  # the gate multiplies the features: downstream of the reduction
    assert by_type["Conv"] == [False, True]  # the feature conv is int8, the gate's 1x1 conv is float
    assert not any(by_type["Relu"])


def test_onnx_head_shift_changes_the_logits_by_exactly_the_shift(head_onnx):
    import onnx
    import onnxruntime as ort

    x = np.random.default_rng(1).standard_normal((4, 3, 32, 32)).astype(np.float32)

    def run(model):
        return ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(
            None, {"image": x}
        )[0]

    shift = np.linspace(-0.5, 0.5, 10).astype(np.float32)
    model = onnx.ModelProto()
    model.CopyFrom(head_onnx)
    assert shift_onnx_head(model, shift) is not None
    before, after = run(head_onnx), run(model)
    np.testing.assert_allclose(logit_shift(before, after), -(shift - shift.mean()), atol=1e-5)


@pytest.mark.filterwarnings("ignore")
def test_tflite_tail_and_head_shift():
    import tensorflow as tf
    from ai_edge_litert.interpreter import Interpreter

    rng = np.random.default_rng(2)
    k = tf.constant(rng.standard_normal((3, 3, 3, 8)).astype(np.float32))
    g = tf.constant(rng.standard_normal((1, 1, 8, 8)).astype(np.float32))
    w = tf.constant(rng.standard_normal((8, 10)).astype(np.float32))
    b = tf.constant(rng.standard_normal(10).astype(np.float32))

    def net(x):
        f = tf.nn.relu(tf.nn.conv2d(x, k, 1, "SAME"))
        f = f * tf.sigmoid(tf.nn.conv2d(tf.reduce_mean(f, axis=[1, 2], keepdims=True), g, 1, "VALID"))
        return tf.nn.softmax(tf.matmul(tf.reduce_mean(f, axis=[1, 2]), w) + b)

    fn = tf.function(net, input_signature=[tf.TensorSpec([None, None, None, 3], tf.float32)])
    flat = tf.lite.TFLiteConverter.from_concrete_functions([fn.get_concrete_function()], fn).convert()
    it = Interpreter(model_content=flat)
    names = {
        d["name"]: d["op_name"]
        for d in [{"name": it.get_tensor_details()[o["outputs"][0]]["name"], **o} for o in it._get_ops_details()]
    }
    kinds = {names[t] for t in tflite_tail_tensors(flat) if t in names}
    assert {"MEAN", "LOGISTIC", "MUL", "FULLY_CONNECTED", "SOFTMAX"} <= kinds
    assert not any(names[t] == "CONV_2D" and "Relu" in t for t in tflite_tail_tensors(flat) if t in names)

    x = rng.standard_normal((2, 16, 16, 3)).astype(np.float32)

    def run(model):
        interp = Interpreter(model_content=model)
        interp.resize_tensor_input(0, x.shape)
        interp.allocate_tensors()
        interp.set_tensor(interp.get_input_details()[0]["index"], x)
        interp.invoke()
        return interp.get_tensor(interp.get_output_details()[0]["index"])

    shift = np.linspace(-0.5, 0.5, 10).astype(np.float32)
    shifted = shift_tflite_head(flat, shift)
    assert shifted is not None
    np.testing.assert_allclose(logit_shift(run(flat), run(shifted)), -(shift - shift.mean()), atol=1e-5)
