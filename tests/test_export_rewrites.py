"""Export-time rewrites are exact: the prepared PyTorch model and the ONNX graph rewrites used for onnx2tf."""

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper, numpy_helper

from aestheticnet.export.onnx.rewrites import (
    label_dynamic_dims,
    same_pad_max_pools,
    separable_average_pools,
    topological_sort,
    undilate_convolutions,
)
from aestheticnet.export.prepare import FoldedFactorizedReduce, fold_input_std, prepare_for_export
from aestheticnet.models import create_model

ort = pytest.importorskip("onnxruntime")


def _random_bn(model):
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.3, 0.3)
            m.running_var.uniform_(0.4, 1.6)
            if m.affine:
                m.weight.data.uniform_(0.5, 1.5)
                m.bias.data.uniform_(-0.2, 0.2)
    return model


def test_prepared_model_is_exact_and_smaller():
    torch.manual_seed(0)
    model = _random_bn(create_model("aestheticnet_star", layers=5, init_channels=8)).eval()
    prepared, rewrites = prepare_for_export(model)
    assert any(r.startswith("fold_batchnorm") for r in rewrites)
    assert any(r.startswith("static_factorized_reduce") for r in rewrites)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in prepared.modules())
    assert any(isinstance(m, FoldedFactorizedReduce) for m in prepared.modules())
    assert len(prepared.state_dict()) < len(model.state_dict()) / 2
    for shape in [(1, 3, 224, 224), (3, 3, 96, 640), (2, 3, 320, 256)]:
        x = torch.randn(*shape, generator=torch.Generator().manual_seed(1))
        with torch.no_grad():
            assert (prepared(x) - model(x)).abs().max() < 1e-6
    # the checkpoint model is untouched
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules())


def test_folding_the_input_std_into_the_first_conv_is_exact():
    torch.manual_seed(0)
    model = _random_bn(create_model("aestheticnet_star", layers=3, init_channels=8)).eval()
    std = (0.229, 0.224, 0.225)
    folded = fold_input_std(model, std)
    x = torch.randn(2, 3, 64, 96)
    centred = x * torch.tensor(std).view(1, 3, 1, 1)  # what ImageType's scale/bias produce: pixel/255 - mean
    with torch.no_grad():
        assert (folded(centred) - model(x)).abs().max() < 1e-6


def _run(model, x):
    return ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]


def _graph(nodes, inits, out_channels=4):
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 4, "h", "w"])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", out_channels, None, None])
    g = helper.make_graph(nodes, "g", [x], [y], [numpy_helper.from_array(a, k) for k, a in inits.items()])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 18)])


@pytest.mark.parametrize("kernel, dilation, group", [(3, 2, 4), (5, 2, 4), (3, 3, 1)])
def test_undilated_convolution_is_exact(kernel, dilation, group):
    rng = np.random.default_rng(0)
    w = rng.standard_normal((4, 4 // group, kernel, kernel)).astype(np.float32)
    pad = dilation * (kernel // 2)
    conv = helper.make_node(
        "Conv", ["x", "w"], ["y"], dilations=[dilation] * 2, group=group, pads=[pad] * 4, kernel_shape=[kernel] * 2
    )
    model = _graph([conv], {"w": w})
    rewritten = _graph([conv], {"w": w})
    assert undilate_convolutions(rewritten) == 1
    node = rewritten.graph.node[0]
    assert next(a.ints for a in node.attribute if a.name == "dilations") == [1, 1]
    for shape in [(1, 4, 7, 7), (2, 4, 10, 8), (1, 4, 3, 20)]:
        x = rng.standard_normal(shape).astype(np.float32)
        np.testing.assert_allclose(_run(rewritten, x), _run(model, x), rtol=0, atol=2e-6)


@pytest.mark.parametrize(
    "kernel, stride, pads, ops",
    [
        (3, 1, [1, 1, 1, 1], ["MaxPool"]),
        (3, 2, [1, 1, 1, 1], ["MaxPool", "Conv"]),
        (5, 2, [2, 2, 2, 2], ["MaxPool", "Conv"]),
        (3, 2, [0, 1, 0, 1], ["Pad", "MaxPool"]),  # not centred: edge padding
    ],
)
def test_rewritten_max_pool_is_exact(kernel, stride, pads, ops):
    pool = helper.make_node("MaxPool", ["x"], ["y"], kernel_shape=[kernel] * 2, strides=[stride] * 2, pads=pads)
    model = _graph([pool], {})
    rewritten = _graph([pool], {})
    assert same_pad_max_pools(rewritten) == 1
    assert [n.op_type for n in rewritten.graph.node] == ops
    rng = np.random.default_rng(0)
    for shape in [(1, 4, 14, 14), (2, 4, 7, 9), (1, 4, 1, 5)]:
        x = rng.standard_normal(shape).astype(np.float32) - 3.0  # all negative: zero padding would be wrong
        np.testing.assert_array_equal(_run(rewritten, x), _run(model, x))


def test_unpadded_and_ceil_mode_max_pools_are_left_alone():
    plain = helper.make_node("MaxPool", ["x"], ["y"], kernel_shape=[2, 2], strides=[2, 2])
    ceil = helper.make_node("MaxPool", ["x"], ["y"], kernel_shape=[3, 3], strides=[2, 2], pads=[1] * 4, ceil_mode=1)
    for node in (plain, ceil):
        model = _graph([node], {})
        assert same_pad_max_pools(model) == 0
        assert [n.op_type for n in model.graph.node] == ["MaxPool"]


@pytest.mark.parametrize("kernel, pads", [(7, [3, 3, 3, 3]), (5, [2, 1, 2, 1]), (5, [0, 0, 0, 0])])
def test_separable_average_pool_is_the_same_mean(kernel, pads):
    pool = helper.make_node("AveragePool", ["x"], ["y"], kernel_shape=[kernel] * 2, pads=pads, count_include_pad=1)
    model = _graph([pool], {})
    rewritten = _graph([pool], {})
    assert separable_average_pools(rewritten) == 1
    assert [n.op_type for n in rewritten.graph.node] == ["AveragePool", "AveragePool"]
    rng = np.random.default_rng(0)
    for shape in [(1, 4, 14, 14), (2, 4, 9, 12)]:
        x = rng.standard_normal(shape).astype(np.float32) * 3 + 1
        np.testing.assert_allclose(_run(rewritten, x), _run(model, x), rtol=0, atol=2e-6)


def test_small_excluding_or_strided_average_pools_are_left_alone():
    cases = [
        helper.make_node("AveragePool", ["x"], ["y"], kernel_shape=[3, 3], pads=[1] * 4, count_include_pad=1),
        helper.make_node("AveragePool", ["x"], ["y"], kernel_shape=[7, 7], pads=[3] * 4),  # excludes padding
        helper.make_node("AveragePool", ["x"], ["y"], kernel_shape=[7, 7], strides=[2, 2], count_include_pad=1),
    ]
    for node in cases:
        model = _graph([node], {})
        assert separable_average_pools(model) == 0
        assert len(model.graph.node) == 1


def test_topological_sort_and_dim_labels():
    relu = helper.make_node("Relu", ["t"], ["y"])
    neg = helper.make_node("Neg", ["x"], ["t"])
    model = _graph([relu, neg], {})  # out of order
    topological_sort(model)
    assert [n.op_type for n in model.graph.node] == ["Neg", "Relu"]
    model.graph.input[0].type.tensor_type.shape.dim[0].dim_param = "s77"
    model.graph.input[0].type.tensor_type.shape.dim[2].dim_param = "32*s38"
    model.graph.input[0].type.tensor_type.shape.dim[3].dim_param = "w"
    model.graph.output[0].type.tensor_type.shape.dim[0].dim_param = "s77"
    label_dynamic_dims(model)
    dims = [d.dim_param for d in model.graph.input[0].type.tensor_type.shape.dim]
    assert dims[0] == "batch" and dims[2] == "32*h_blocks" and dims[3] == "width"
    assert model.graph.output[0].type.tensor_type.shape.dim[0].dim_param == "batch"
    onnx.checker.check_model(model)


def _quotient_pool(kernel, stride, divisor_source="ones"):
    """``pool(x) / pool(ones)`` as the export-safe padding-excluding pool writes it, ones of x's run-time shape."""
    attrs = {"kernel_shape": [kernel] * 2, "strides": [stride] * 2, "pads": [kernel // 2] * 4, "count_include_pad": 1}
    nodes = [
        helper.make_node("Shape", ["x"], ["shape"]),
        helper.make_node("Expand", ["one", "shape"], ["ones"]),
        helper.make_node("AveragePool", ["x"], ["sums"], **attrs),
        helper.make_node("AveragePool", [divisor_source], ["valid"], **attrs),
        helper.make_node("Div", ["sums", "valid"], ["y"]),
    ]
    return _graph(nodes, {"one": np.array(1.0, np.float32)})


@pytest.mark.parametrize(
    "kernel, stride, ops",
    [(3, 1, ["AveragePool"]), (3, 2, ["AveragePool", "Conv"]), (7, 1, ["AveragePool", "AveragePool"])],
)
def test_quotient_average_pool_becomes_one_padding_excluding_pool(kernel, stride, ops):
    from aestheticnet.export.onnx.average_pools import same_pad_average_pools

    model, rewritten = _quotient_pool(kernel, stride), _quotient_pool(kernel, stride)
    assert same_pad_average_pools(rewritten) == 1
    assert [n.op_type for n in rewritten.graph.node] == ops  # the ones map and the divisions are gone
    assert all(a.s == b"SAME_UPPER" for n in rewritten.graph.node for a in n.attribute if a.name == "auto_pad")
    rng = np.random.default_rng(0)
    for shape in [(1, 4, 14, 14), (2, 4, 9, 12), (1, 4, 2, 7)]:
        x = rng.standard_normal(shape).astype(np.float32) * 3 + 1
        np.testing.assert_allclose(_run(rewritten, x), _run(model, x), rtol=0, atol=2e-6)


def test_a_division_by_anything_but_pooled_ones_is_left_alone():
    from aestheticnet.export.onnx.average_pools import same_pad_average_pools

    model = _quotient_pool(3, 1, divisor_source="x")  # x / x pooled alike: not a padding-excluding mean
    assert same_pad_average_pools(model) == 0
    assert "Div" in [n.op_type for n in model.graph.node]
