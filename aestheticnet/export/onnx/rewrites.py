"""Exact rewrites of ONNX graphs: names, dynamic-dim labels, and two converter work-arounds for onnx2tf.

The converter rewrites are applied only to the private copy of the graph that goes to onnx2tf; the ``.onnx``
artifact keeps the original operators.

``undilate_convolutions`` -- a TFLite conversion error that looks like a small CBAM residual. It is not CBAM: it
is every dilated convolution (DARTS ``dil_conv_3x3``/``dil_conv_5x5`` and AestheticNet*'s dilated ``sep_conv``s).
onnx2tf turns a padded dilated Conv into ``tf.pad`` + ``depthwise_conv2d(VALID, dilations=2)``, which TensorFlow
lowers to SpaceToBatchND -> DepthwiseConv2D -> BatchToSpaceND. With a dynamic batch/H/W the batch-to-space step
puts the phases back wrongly: only output pixels at (even row, even column) are right. On a random network the
softmax barely moves (3e-6 .. 1.6e-5), which is why it looked like a small residual, but the dilated conv
outputs themselves are off by up to 85% of their range, and at odd feature-map sizes (224 -> 7x7 in the last
stage, 96 -> 3) the shapes no longer match and XNNPACK refuses to run at all. Writing each dilated kernel as an
ordinary kernel with zeros between the taps ((k-1)*d+1 wide) computes exactly the same sums, is converted to a
plain DEPTHWISE_CONV_2D, and brings TFLite to 1.5e-8 of ONNX Runtime at every size.

``same_pad_max_pools`` -- a padded ``MaxPool`` as TFLite's own ``SAME`` pooling, which ignores padded positions as
PyTorch's -inf padding does. onnx2tf keeps ``SAME`` only when it knows H and W; with dynamic sizes it pads
explicitly, with -inf (the calibrated int8 range becomes infinite and the full-int8 interpreter aborts while
allocating tensors) or, after an edge ``Pad``, with four ``MIRROR_PAD``s per pool, which XNNPACK does not take:
a network of searched cells with 58 max pools split into many delegate partitions and ran at 39 ms on LiteRT
against 7 ms on ONNX Runtime. Stride 1 with pads ``(k-1)/2`` is ``auto_pad=SAME_UPPER`` exactly. Stride 2 is
the stride-1 pooling followed by a 1x1 depthwise ``Conv`` of stride 2 with weight 1 (output ``i`` is the window
centred on input ``2i`` in both), which XNNPACK runs; exact in float, one more int8 rounding in full int8. Other
pools (even kernels, other pads, unknown channel counts) become ``Pad(mode=edge)`` + unpadded ``MaxPool``, exact
because every window that covers a padded position also covers the border pixel the edge padding copies.

``separable_average_pools`` -- a count-including ``AveragePool`` of a k x k window (k >= 5) as a 1 x k pool then
a k x 1 pool: the same mean (a box filter is separable), 2k taps instead of k^2. XNNPACK vectorises pooling over
channels, so on the 3-channel input of the MSCN normaliser its 7x7 window means at 224x224 dominated the demo
model's LiteRT time (11.3 ms, 6.3 ms separable, one thread). Smaller windows, on the many channels of the cells,
are left as they are.
"""

from __future__ import annotations

import re

import numpy as np
import onnx
from onnx import helper, numpy_helper

from aestheticnet.export.onnx.graph import node_attribute as _attr

__all__ = [
    "channel_counts",
    "dynamic_dims",
    "label_dynamic_dims",
    "prune_initializers",
    "rename_io",
    "same_pad_max_pools",
    "separable_average_pools",
    "topological_sort",
    "undilate_convolutions",
]


def _value_infos(graph: onnx.GraphProto):
    return list(graph.input) + list(graph.output) + list(graph.value_info)


def rename_io(model: onnx.ModelProto, input_name: str, output_name: str) -> None:
    """Give the single graph input and output the given names (every reference is renamed)."""
    g = model.graph
    inputs = [i for i in g.input if i.name not in {t.name for t in g.initializer}]
    if len(inputs) != 1 or len(g.output) != 1:
        raise ValueError(
            f"expected one input and one output, got {[i.name for i in inputs]} -> {[o.name for o in g.output]}"
        )
    mapping = {inputs[0].name: input_name, g.output[0].name: output_name}
    mapping = {k: v for k, v in mapping.items() if k != v}
    if not mapping:
        return
    for node in g.node:
        for i, name in enumerate(node.input):
            if name in mapping:
                node.input[i] = mapping[name]
        for i, name in enumerate(node.output):
            if name in mapping:
                node.output[i] = mapping[name]
    for vi in _value_infos(g):
        if vi.name in mapping:
            vi.name = mapping[vi.name]


def label_dynamic_dims(model: onnx.ModelProto) -> None:
    """Rename the symbols of the input's batch, height and width to readable labels, everywhere they appear.

    The dynamo exporter names symbols after ``torch.export``'s internals (``s77``, ``32*s38``); the labels are
    what users see in Netron and in ONNX Runtime's ``get_inputs()``: ``batch``, ``32*h_blocks``/``32*w_blocks``
    (the symbol counts blocks of 32 pixels), or ``height``/``width`` for a plain symbol.
    """
    g = model.graph
    dims = g.input[0].type.tensor_type.shape.dim
    mapping = {}
    for axis, (plain, blocks) in zip((0, 2, 3), (("batch", "batch"), ("height", "h_blocks"), ("width", "w_blocks"))):
        expr = dims[axis].dim_param
        names = re.findall(r"[A-Za-z_][A-Za-z_0-9]*", expr)
        label = blocks if "*" in expr else plain
        if len(names) == 1 and names[0] != label:
            mapping[names[0]] = label
    if not mapping:
        return
    pattern = re.compile(r"\b(" + "|".join(re.escape(k) for k in mapping) + r")\b")
    for vi in _value_infos(g):
        for d in vi.type.tensor_type.shape.dim:
            if d.dim_param:
                d.dim_param = pattern.sub(lambda m: mapping[m.group(1)], d.dim_param)


def dynamic_dims(model: onnx.ModelProto) -> dict[str, list]:
    """``{"input": [...], "output": [...]}``: each dim as its symbol (str) or size (int)."""

    def dims(vi):
        return [d.dim_param if d.dim_param else int(d.dim_value) for d in vi.type.tensor_type.shape.dim]

    init = {t.name for t in model.graph.initializer}
    inputs = [i for i in model.graph.input if i.name not in init]
    return {"input": dims(inputs[0]), "output": dims(model.graph.output[0])}


def prune_initializers(model: onnx.ModelProto) -> None:
    used = {name for node in model.graph.node for name in node.input}
    keep = [t for t in model.graph.initializer if t.name in used]
    del model.graph.initializer[:]
    model.graph.initializer.extend(keep)


def undilate_convolutions(model: onnx.ModelProto) -> int:
    """Rewrite every dilated ``Conv`` with a constant kernel as an undilated one with zero taps; returns count."""
    g = model.graph
    inits = {t.name: t for t in g.initializer}
    count = 0
    for node in g.node:
        if node.op_type != "Conv":
            continue
        attrs = {a.name: a for a in node.attribute}
        if "dilations" not in attrs or all(d == 1 for d in attrs["dilations"].ints):
            continue
        if node.input[1] not in inits:
            continue  # a kernel computed in the graph: leave it (never the case for our networks)
        dil = list(attrs["dilations"].ints)
        w = numpy_helper.to_array(inits[node.input[1]])
        spatial = w.shape[2:]
        expanded = np.zeros(w.shape[:2] + tuple((k - 1) * d + 1 for k, d in zip(spatial, dil)), dtype=w.dtype)
        expanded[(slice(None), slice(None)) + tuple(slice(None, None, d) for d in dil)] = w
        name = f"{node.input[1]}__undilated"
        if name not in inits:
            tensor = numpy_helper.from_array(expanded, name)
            g.initializer.append(tensor)
            inits[name] = tensor
        node.input[1] = name
        attrs["dilations"].ints[:] = [1] * len(dil)
        if "kernel_shape" in attrs:
            attrs["kernel_shape"].ints[:] = list(expanded.shape[2:])
        count += 1
    if count:
        prune_initializers(model)
    return count


def channel_counts(model: onnx.ModelProto) -> dict[str, int]:
    """Channel count (dim 1) of every tensor whose shape inference knows it."""
    inferred = onnx.shape_inference.infer_shapes(model)
    counts = {}
    for info in [*inferred.graph.input, *inferred.graph.value_info]:
        dims = info.type.tensor_type.shape.dim
        if len(dims) == 4 and dims[1].HasField("dim_value"):
            counts[info.name] = dims[1].dim_value
    return counts


def _same_pool(node: onnx.NodeProto, base: str, output: str, kernel: list[int]) -> onnx.NodeProto:
    """The stride-1 ``SAME`` max pool of ``node``'s input (exact for centred pads of an odd kernel)."""
    return helper.make_node(
        "MaxPool",
        [node.input[0]],
        [output],
        kernel_shape=kernel,
        strides=[1] * len(kernel),
        auto_pad="SAME_UPPER",
        name=f"{base}__same",
    )


def _edge_padded(g: onnx.GraphProto, node: onnx.NodeProto, base: str, pads: list[int]) -> list[onnx.NodeProto]:
    rank = len(pads) // 2
    pads_name = f"{base}__edge_pads"
    widths = np.array([0, 0] + pads[:rank] + [0, 0] + pads[rank:], np.int64)
    g.initializer.append(numpy_helper.from_array(widths, pads_name))
    padded = f"{node.input[0]}__{base}__edge_padded"
    pad = helper.make_node("Pad", [node.input[0], pads_name], [padded], mode="edge", name=f"{base}__edge_pad")
    node.input[0] = padded
    next(a for a in node.attribute if a.name == "pads").ints[:] = [0] * len(pads)
    return [pad, node]


def same_pad_max_pools(model: onnx.ModelProto) -> int:
    """Padded 2-D ``MaxPool``s as ``SAME`` pooling (stride 2: then a 1x1 depthwise subsampling), else edge ``Pad``."""
    g = model.graph
    channels: dict[str, int] | None = None  # shape inference only if a stride-2 pool needs a channel count
    nodes = []
    count = 0
    for index, node in enumerate(g.node):
        pads = _attr(node, "pads", [])
        kernel = _attr(node, "kernel_shape", [])
        if (
            node.op_type != "MaxPool"
            or not any(pads)
            or _attr(node, "auto_pad", "NOTSET") != "NOTSET"
            or len(node.output) != 1
            or len(kernel) != 2
            or _attr(node, "ceil_mode", 0)
            or any(d != 1 for d in _attr(node, "dilations", [1, 1]))
        ):
            nodes.append(node)
            continue
        base = node.name or f"maxpool_{index}"
        strides = _attr(node, "strides", [1, 1])
        centred = all(k % 2 == 1 and p == k // 2 for p, k in zip(pads, kernel + kernel))
        if centred and strides == [2, 2] and channels is None:
            channels = channel_counts(model)
        if centred and strides == [1, 1]:
            nodes.append(_same_pool(node, base, node.output[0], kernel))
        elif centred and strides == [2, 2] and node.input[0] in channels:
            c = channels[node.input[0]]
            ones = f"{base}__subsample_weight"
            g.initializer.append(numpy_helper.from_array(np.ones((c, 1, 1, 1), np.float32), ones))
            pooled = f"{node.input[0]}__{base}__same_pooled"
            nodes.append(_same_pool(node, base, pooled, kernel))
            nodes.append(
                helper.make_node(
                    "Conv",
                    [pooled, ones],
                    [node.output[0]],
                    kernel_shape=[1, 1],
                    strides=[2, 2],
                    group=c,
                    name=f"{base}__subsample",
                )
            )
        elif all(p < k for p, k in zip(pads, kernel + kernel)):
            nodes.extend(_edge_padded(g, node, base, pads))
        else:
            nodes.append(node)
            continue
        count += 1
    if count:
        del g.node[:]
        g.node.extend(nodes)
    return count


def separable_average_pools(model: onnx.ModelProto, min_kernel: int = 5) -> int:
    """Square, stride-1, count-including ``AveragePool``s of ``min_kernel`` or more as two 1-D pools (in place)."""
    nodes = []
    count = 0
    for index, node in enumerate(model.graph.node):
        kernel = _attr(node, "kernel_shape", [])
        pads = _attr(node, "pads", [0, 0, 0, 0])
        if (
            node.op_type != "AveragePool"
            or len(kernel) != 2
            or kernel[0] != kernel[1]
            or kernel[0] < min_kernel
            or _attr(node, "strides", [1, 1]) != [1, 1]
            or _attr(node, "auto_pad", "NOTSET") != "NOTSET"
            or _attr(node, "ceil_mode", 0)
            or len(node.output) != 1
            or len(pads) != 4
            or not (_attr(node, "count_include_pad", 0) or not any(pads))
        ):
            nodes.append(node)
            continue
        k, (top, left, bottom, right) = kernel[0], pads
        base = node.name or f"avgpool_{index}"
        rows = f"{node.output[0]}__{base}__rows"
        nodes.append(
            helper.make_node(
                "AveragePool",
                [node.input[0]],
                [rows],
                kernel_shape=[1, k],
                pads=[0, left, 0, right],
                count_include_pad=1,
                name=f"{base}__rows",
            )
        )
        nodes.append(
            helper.make_node(
                "AveragePool",
                [rows],
                [node.output[0]],
                kernel_shape=[k, 1],
                pads=[top, 0, bottom, 0],
                count_include_pad=1,
                name=f"{base}__columns",
            )
        )
        count += 1
    if count:
        del model.graph.node[:]
        model.graph.node.extend(nodes)
    return count


def topological_sort(model: onnx.ModelProto) -> None:
    """Reorder nodes so each comes after the producers of its inputs (some converters append nodes at the end)."""
    g = model.graph
    available = {t.name for t in g.initializer} | {i.name for i in g.input} | {""}
    pending = list(g.node)
    ordered = []
    while pending:
        rest = []
        for node in pending:
            if all(name in available for name in node.input):
                ordered.append(node)
                available.update(node.output)
            else:
                rest.append(node)
        if len(rest) == len(pending):
            missing = sorted({n for node in rest for n in node.input if n not in available})[:5]
            raise ValueError(f"graph has a cycle or undefined inputs: {missing}")
        pending = rest
    del g.node[:]
    g.node.extend(ordered)
