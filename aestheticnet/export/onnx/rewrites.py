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

``edge_pad_max_pools`` -- ``MaxPool`` with padding becomes ``Pad(mode=edge)`` + unpadded ``MaxPool``. Exact:
every window that covers a padded position also covers the border pixel the edge padding copies (pads <
kernel). onnx2tf otherwise pads with -inf, which makes the calibrated int8 range infinite, and the full-int8
model then aborts the interpreter while allocating tensors.
"""

from __future__ import annotations

import re

import numpy as np
import onnx
from onnx import helper, numpy_helper

__all__ = [
    "dynamic_dims",
    "edge_pad_max_pools",
    "label_dynamic_dims",
    "prune_initializers",
    "rename_io",
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


def edge_pad_max_pools(model: onnx.ModelProto) -> int:
    """``MaxPool(pads=p)`` -> ``Pad(edge, p)`` + ``MaxPool(pads=0)``; exact when every pad < kernel size."""
    g = model.graph
    nodes = []
    count = 0
    for index, node in enumerate(g.node):
        if node.op_type == "MaxPool":
            attrs = {a.name: a for a in node.attribute}
            pads = list(attrs["pads"].ints) if "pads" in attrs else []
            auto_pad = attrs["auto_pad"].s.decode() if "auto_pad" in attrs else "NOTSET"
            kernel = list(attrs["kernel_shape"].ints)
            rank = len(kernel)
            dilations = list(attrs["dilations"].ints) if "dilations" in attrs else [1] * rank
            if (
                any(pads)
                and auto_pad == "NOTSET"
                and all(d == 1 for d in dilations)
                and all(p < k for p, k in zip(pads, kernel + kernel))
                and len(node.output) == 1
            ):
                base = node.name or f"maxpool_{index}"
                pads_name = f"{base}__edge_pads"
                g.initializer.append(
                    numpy_helper.from_array(np.array([0, 0] + pads[:rank] + [0, 0] + pads[rank:], np.int64), pads_name)
                )
                padded = f"{node.input[0]}__{base}__edge_padded"
                nodes.append(
                    helper.make_node("Pad", [node.input[0], pads_name], [padded], mode="edge", name=f"{base}__edge_pad")
                )
                node.input[0] = padded
                attrs["pads"].ints[:] = [0] * len(pads)
                count += 1
        nodes.append(node)
    if count:
        del g.node[:]
        g.node.extend(nodes)
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
