"""Stand-in models: untrained networks for benchmarks that measure speed or conversion, and tiny models for
checking the benchmark harness itself (tests, smoke runs on a new device).

An untrained network's BatchNorm statistics are all 0 and 1, unlike a trained one's, and its int8 quantisation
ranges come out degenerate; :func:`vary_batchnorm` draws them as a trained network's might be, and
:func:`untrained_checkpoint` saves such a network.

The tiny models are not AestheticNet: one 3x3 convolution, global average pooling and a softmax over 10 buckets,
with the same input conventions as the exported networks (ONNX: input ``image`` NCHW ``[N, 3, H, W]`` with dynamic N, H,
W; TFLite: NHWC ``[-1, -1, -1, 3]`` as onnx2tf writes it; ExecuTorch: NCHW with batch 1-8 and H, W multiples of
32 up to 256, delegated to XNNPACK like the exported networks).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

__all__ = ["tiny_onnx", "tiny_pte", "tiny_tflite", "untrained_checkpoint", "vary_batchnorm"]


def tiny_onnx(path: str | Path, channels: int = 10) -> Path:
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    path = Path(path)
    x = helper.make_tensor_value_info("image", TensorProto.FLOAT, ["batch", 3, "height", "width"])
    y = helper.make_tensor_value_info("distribution", TensorProto.FLOAT, ["batch", channels])
    w = np.random.default_rng(0).standard_normal((channels, 3, 3, 3)).astype(np.float32) * 0.1
    nodes = [
        helper.make_node("Conv", ["image", "w"], ["c"], strides=[2, 2], pads=[1, 1, 1, 1]),
        helper.make_node("GlobalAveragePool", ["c"], ["g"]),
        helper.make_node("Flatten", ["g"], ["f"]),
        helper.make_node("Softmax", ["f"], ["distribution"], axis=1),
    ]
    graph = helper.make_graph(nodes, "tiny", [x], [y], [numpy_helper.from_array(w, "w")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8  # readable by older onnxruntime builds on boards too
    onnx.checker.check_model(model)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))
    return path


def tiny_tflite(path: str | Path, channels: int = 10) -> Path:
    """Needs tensorflow (slow to import: about 10 s); NHWC input with dynamic batch, height and width."""
    import tensorflow as tf

    path = Path(path)
    w = tf.constant(np.random.default_rng(0).standard_normal((3, 3, 3, channels)).astype(np.float32) * 0.1)

    @tf.function(input_signature=[tf.TensorSpec([None, None, None, 3], tf.float32)])
    def forward(x):
        y = tf.nn.conv2d(x, w, strides=2, padding="SAME")
        return tf.nn.softmax(tf.reduce_mean(y, axis=[1, 2]), axis=1)

    converter = tf.lite.TFLiteConverter.from_concrete_functions([forward.get_concrete_function()], forward)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(converter.convert())
    return path


def tiny_pte(path: str | Path, channels: int = 10) -> Path:
    """Needs executorch (its lowering takes a few seconds)."""
    import torch
    from torch.export import Dim

    from aestheticnet.export.executorch.lowering import lower_to_executorch

    path = Path(path)
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(3, channels, 3, stride=2, padding=1, bias=False)
    model = torch.nn.Sequential(conv, torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Softmax(1)).eval()
    h, w = Dim("h_blocks", min=1, max=8), Dim("w_blocks", min=1, max=8)
    dims = ({0: Dim("batch", min=1, max=8), 2: 32 * h, 3: 32 * w},)
    program = torch.export.export(model, (torch.rand(2, 3, 64, 96),), dynamic_shapes=dims)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(lower_to_executorch(program))
    return path


def vary_batchnorm(model):
    """``model`` with its BatchNorm running means drawn from U(-0.2, 0.2) and variances from U(0.5, 1.5) (torch's
    global generator), in place; returned in eval mode."""
    import torch

    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.2, 0.2)
            module.running_var.uniform_(0.5, 1.5)
    return model.eval()


def untrained_checkpoint(path: str | Path, variant: str = "aestheticnet_star", seed: int = 0, **overrides) -> Path:
    """A freshly initialised ``variant`` (config ``overrides``, as :func:`~aestheticnet.models.create_model` takes
    them) with :func:`vary_batchnorm`, drawn from ``seed`` and saved to ``path``."""
    import torch

    from aestheticnet.models import create_model, save

    torch.manual_seed(seed)
    return save(vary_batchnorm(create_model(variant, **overrides).eval()), path)
