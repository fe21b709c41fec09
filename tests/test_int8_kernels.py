"""The int8 rewrites for the runtimes' kernels keep the function: outputs compared on random inputs."""

import numpy as np
import pytest
import torch
from torch import nn


class _Cellish(nn.Module):
    """A DARTS cell's shape: a ReLU'd state feeding two convolutions, an Add whose sum is read both through a ReLU
    (the next cell's preprocessing) and directly (the Concat)."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, padding=1)
        self.a = nn.Conv2d(8, 8, 3, padding=1, groups=8)
        self.b = nn.Conv2d(8, 8, 1)
        self.c = nn.Conv2d(16, 8, 1)

    def forward(self, x):
        s = torch.relu(self.stem(x))
        y = self.a(s) + self.b(s)
        return self.c(torch.cat([torch.relu(y), y], 1))


class _Separable(nn.Module):
    """DARTS's edges at a channel count off ONNX Runtime's 16-channel int8 depthwise blocks: a separable and a
    dilated convolution reading a convolution's ReLU'd output, a separable one reading a ReLU'd sum, and a
    depthwise convolution whose output is summed directly (which the rewrite must leave alone)."""

    def __init__(self, c: int = 12):
        super().__init__()
        self.stem = nn.Conv2d(3, c, 3, padding=1)

        def sep(dilation: int = 1) -> nn.Sequential:
            return nn.Sequential(
                nn.Conv2d(c, c, 3, padding=dilation, dilation=dilation, groups=c, bias=False),
                nn.Conv2d(c, c, 1),
                nn.ReLU(),
                nn.Conv2d(c, c, 3, padding=1, groups=c, bias=False),
                nn.Conv2d(c, c, 1),
            )

        self.sep, self.after_sum = sep(), sep()
        self.dil = nn.Sequential(nn.Conv2d(c, c, 3, padding=2, dilation=2, groups=c, bias=False), nn.Conv2d(c, c, 1))
        self.bare = nn.Conv2d(c, c, 3, padding=1, groups=c)
        self.head = nn.Conv2d(c, 4, 1)

    def forward(self, x):
        s = torch.relu(self.stem(x))
        y = self.sep(s) + self.dil(s)
        return self.head(self.after_sum(torch.relu(y)) + self.bare(y))


def _qdq_model(tmp_path, module: nn.Module | None = None):
    import onnx
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    torch.manual_seed(0)
    src = tmp_path / "f.onnx"
    module = _Cellish() if module is None else module
    torch.onnx.export(module.eval(), torch.randn(1, 3, 16, 16), str(src), input_names=["image"], dynamo=False)
    rng = np.random.default_rng(0)

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.items = iter([{"image": rng.standard_normal((1, 3, 16, 16)).astype(np.float32)} for _ in range(8)])

        def get_next(self):
            return next(self.items, None)

    dst = tmp_path / "q.onnx"
    quantize_static(
        str(src),
        str(dst),
        Reader(),
        quant_format=QuantFormat.QDQ,
        per_channel=True,
        activation_type=QuantType.QInt8,
        weight_type=QuantType.QInt8,
    )
    return onnx.load(str(dst))


def _run_onnx(model, x, level):
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.graph_optimization_level = level
    so.intra_op_num_threads = 1
    sess = ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])
    return sess.run(None, {"image": x})[0]


def test_uint8_activations_are_the_same_grid(tmp_path):
    import onnxruntime as ort
    from onnx import TensorProto, numpy_helper

    from aestheticnet.export.onnx.uint8 import uint8_activations

    signed = _qdq_model(tmp_path)
    unsigned = _qdq_model(tmp_path)
    assert uint8_activations(unsigned) == sum(n.op_type == "QuantizeLinear" for n in unsigned.graph.node) > 3
    inits = {t.name: t for t in unsigned.graph.initializer}
    for node in unsigned.graph.node:  # every activation zero point is uint8, every weight stays int8
        if node.op_type == "QuantizeLinear":
            assert inits[node.input[2]].data_type == TensorProto.UINT8
        if node.op_type == "DequantizeLinear" and node.input[0] in inits:
            assert inits[node.input[0]].data_type in (TensorProto.INT8, TensorProto.INT32)  # weights, biases
    x = np.random.default_rng(1).standard_normal((1, 3, 16, 16)).astype(np.float32) * 2
    literal = ort.GraphOptimizationLevel.ORT_DISABLE_ALL  # each Q and DQ executed as written
    np.testing.assert_array_equal(_run_onnx(unsigned, x, literal), _run_onnx(signed, x, literal))
    # optimised, the fused integer kernels round differently from float Conv: within a few quantisation steps
    step = float(numpy_helper.to_array(inits[unsigned.graph.node[-1].input[1]]))
    full = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    assert np.abs(_run_onnx(unsigned, x, full) - _run_onnx(signed, x, literal)).max() <= 4 * step


def test_quantised_relus_become_leaky_relus_onnx_runtime_fuses(tmp_path):
    import onnx
    import onnxruntime as ort

    from aestheticnet.export.onnx.relu import quantised_relus_as_leaky_relu
    from aestheticnet.export.onnx.uint8 import uint8_activations

    plain = _qdq_model(tmp_path)
    uint8_activations(plain)
    leaky = onnx.ModelProto()
    leaky.CopyFrom(plain)
    relus = [n for n in plain.graph.node if n.op_type == "Relu"]
    assert relus and quantised_relus_as_leaky_relu(leaky) == len(relus)
    assert not any(n.op_type == "Relu" for n in leaky.graph.node)
    x = np.random.default_rng(2).standard_normal((1, 3, 16, 16)).astype(np.float32) * 2
    for level in (ort.GraphOptimizationLevel.ORT_DISABLE_ALL, ort.GraphOptimizationLevel.ORT_ENABLE_ALL):
        np.testing.assert_array_equal(_run_onnx(leaky, x, level), _run_onnx(plain, x, level))
    # what it is for: ONNX Runtime runs them as integer tables, with no float requantisation left
    so = ort.SessionOptions()
    so.optimized_model_filepath = str(tmp_path / "optimised.onnx")
    ort.InferenceSession(leaky.SerializeToString(), so, providers=["CPUExecutionProvider"])
    fused = [n.op_type for n in onnx.load(so.optimized_model_filepath).graph.node]
    assert fused.count("QLinearLeakyRelu") == len(relus)


def test_float_relus_are_left_alone():
    from onnx import TensorProto, helper

    from aestheticnet.export.onnx.relu import quantised_relus_as_leaky_relu

    relu = helper.make_node("Relu", ["x"], ["y"])
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])
    model = helper.make_model(helper.make_graph([relu], "g", [x], [y]))
    assert quantised_relus_as_leaky_relu(model) == 0
    assert model.graph.node[0].op_type == "Relu"


def test_uint8_activations_refuse_a_dequantize_without_zero_point(tmp_path):
    from aestheticnet.export.onnx.uint8 import uint8_activations

    model = _qdq_model(tmp_path)
    q = next(n for n in model.graph.node if n.op_type == "QuantizeLinear")
    dq = next(n for n in model.graph.node if n.op_type == "DequantizeLinear" and n.input[0] == q.output[0])
    del dq.input[2]
    with pytest.raises(ValueError, match="without an int8 zero point"):
        uint8_activations(model)


def _int8_tflite():
    import tensorflow as tf

    rng = np.random.default_rng(0)
    w1 = tf.constant(rng.standard_normal((3, 3, 3, 8)).astype(np.float32))
    w2 = tf.constant(rng.standard_normal((1, 1, 8, 8)).astype(np.float32))

    @tf.function(input_signature=[tf.TensorSpec([1, 16, 16, 3], tf.float32)])
    def net(x):
        a = tf.nn.conv2d(x, w1, 1, "SAME")  # a state read raw and through a ReLU: the ReLU cannot be fused
        b = tf.nn.conv2d(tf.nn.relu(a), w2, 1, "SAME") + tf.nn.conv2d(a, w2, 1, "SAME")
        return tf.nn.conv2d(tf.nn.relu(b), w2, 1, "SAME") + b

    conv = tf.lite.TFLiteConverter.from_concrete_functions([net.get_concrete_function()], net)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = lambda: ([rng.standard_normal((1, 16, 16, 3)).astype(np.float32)] for _ in range(16))
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    return conv.convert()


def _run_tflite(flat, x, delegate: bool):
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    kind = OpResolverType.AUTO if delegate else OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
    it = Interpreter(model_content=flat, num_threads=1, experimental_op_resolver_type=kind)
    it.allocate_tensors()
    it.set_tensor(it.get_input_details()[0]["index"], x)
    it.invoke()
    return it.get_tensor(it.get_output_details()[0]["index"]).copy()


def _op_names(flat):
    from ai_edge_litert import schema_py_generated as schema

    from aestheticnet.artifacts.flatbuffer import unpack

    names = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
    model, codes = unpack(flat)
    return [names[codes[op.opcodeIndex]] for sg in model.subgraphs for op in sg.operators]


def _output_step(flat) -> float:
    """The int8 grid step of the model's output (the scale of the tensor its final DEQUANTIZE reads)."""
    from ai_edge_litert.interpreter import Interpreter

    it = Interpreter(model_content=flat)
    ops = it._get_ops_details()
    last_dequantize = next(op for op in reversed(ops) if op["op_name"] == "DEQUANTIZE")
    return float(it._get_tensor_details(last_dequantize["inputs"][0], 0)["quantization"][0])


@pytest.mark.filterwarnings("ignore:Statistics for quantized inputs")
def test_int8_relus_become_the_quantize_they_equal():
    pytest.importorskip("tensorflow")
    from aestheticnet.export.tflite.relu import relus_as_requantize

    flat = _int8_tflite()
    relus = _op_names(flat).count("RELU")
    assert relus >= 1
    new, swapped = relus_as_requantize(flat)
    assert swapped == relus and "RELU" not in _op_names(new)
    assert _op_names(new).count("QUANTIZE") == _op_names(flat).count("QUANTIZE") + swapped
    step = _output_step(flat)
    rng = np.random.default_rng(2)
    for _ in range(5):  # inputs well outside the calibrated range included
        x = (rng.standard_normal((1, 16, 16, 3)) * rng.choice([0.1, 1.0, 4.0])).astype(np.float32)
        # TFLite's own kernels: bit-identical
        np.testing.assert_array_equal(_run_tflite(new, x, False), _run_tflite(flat, x, False))
        # XNNPACK rounds its requantisations differently from TFLite's kernels: the original file under XNNPACK
        # differs from itself under the builtin kernels in most outputs; the swap moves a few outputs by a few steps
        # of the output grid (one step where the QUANTIZE rounds the other way, grown by the layers after it)
        swap = np.abs(_run_tflite(new, x, True) - _run_tflite(flat, x, True))
        xnnpack = np.abs(_run_tflite(flat, x, True) - _run_tflite(flat, x, False))
        assert (swap > 0).mean() < 0.1 * (xnnpack > 0).mean()
        assert swap.max() <= 4.01 * step
    assert relus_as_requantize(new) == (new, 0)  # nothing left to swap


def _optimised_ops(model, tmp_path) -> list[str]:
    import onnx
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.optimized_model_filepath = str(tmp_path / "optimised.onnx")
    ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])
    return [n.op_type for n in onnx.load(so.optimized_model_filepath).graph.node]


def test_depthwise_convolutions_widened_to_16_channel_blocks_compute_the_same(tmp_path):
    import onnx
    import onnxruntime as ort

    from aestheticnet.export.onnx.depthwise import pad_depthwise_channels
    from aestheticnet.export.onnx.relu import quantised_relus_as_leaky_relu
    from aestheticnet.export.onnx.uint8 import uint8_activations

    plain = _qdq_model(tmp_path, _Separable(12))
    uint8_activations(plain)
    quantised_relus_as_leaky_relu(plain)
    wide = onnx.ModelProto()
    wide.CopyFrom(plain)
    assert pad_depthwise_channels(wide, multiple=16) == 5  # every depthwise one but the one summed directly
    onnx.checker.check_model(wide)
    groups = sorted(a.i for n in wide.graph.node if n.op_type == "Conv" for a in n.attribute if a.name == "group")
    assert groups.count(16) == 5 and groups.count(12) == 1
    # a Pad only where the input is not a convolution's own output (the ReLU'd sum), once for its two readers
    assert [n.op_type for n in wide.graph.node].count("Pad") == 1
    rng = np.random.default_rng(3)
    for scale in (1.0, 3.0):
        x = rng.standard_normal((1, 3, 16, 16)).astype(np.float32) * scale
        for level in (ort.GraphOptimizationLevel.ORT_DISABLE_ALL, ort.GraphOptimizationLevel.ORT_ENABLE_ALL):
            np.testing.assert_array_equal(_run_onnx(wide, x, level), _run_onnx(plain, x, level))
    # ONNX Runtime still fuses every convolution into QLinearConv (it checks bias scale = input x weight scale)
    ops = _optimised_ops(wide, tmp_path)
    assert ops.count("QLinearConv") == sum(n.op_type == "Conv" for n in wide.graph.node) and "Conv" not in ops


def test_depthwise_convolutions_already_on_blocks_are_left_alone(tmp_path):
    from aestheticnet.export.onnx.depthwise import pad_depthwise_channels
    from aestheticnet.export.onnx.uint8 import uint8_activations

    model = _qdq_model(tmp_path, _Separable(16))
    uint8_activations(model)
    before = model.SerializeToString()
    assert pad_depthwise_channels(model, multiple=16) == 0
    assert model.SerializeToString() == before
