"""Where the int8 recipe's float parts and bias correction sit in an ONNX graph.

* :func:`input_prefix_nodes`: the operators that compute the first convolution's input from the image (a model's
  ``input_norm``: local means, a square root, a division by the local deviation).
* :func:`onnx_tail_nodes`: every operator from the first global spatial reduction on (CBAM's channel and spatial
  attention, the global average pool, the classifier and the softmax). These run on 1x1 maps or gate a few
  channels: a negligible share of the MACs, but an int8 softmax has a step of 1/256 per bucket, and CBAM's
  sigmoid gates multiply every error of the last cell.
* :func:`shift_onnx_head`: subtracts the measured logit offset (:mod:`aestheticnet.export.int8.bias`) from the
  classifier's float bias.
"""

from __future__ import annotations

import numpy as np

from aestheticnet.export.graphs import walk
from aestheticnet.export.int8.recipe import Int8Recipe

__all__ = ["float_nodes", "input_prefix_nodes", "node_attribute", "onnx_maps", "onnx_tail_nodes", "shift_onnx_head"]

_GLOBAL_POOLS = {"GlobalAveragePool", "GlobalMaxPool"}
_REDUCTIONS = {"ReduceMean", "ReduceMax", "ReduceSum", "ReduceMin"}


def node_attribute(node, name: str, default=None):
    """An ONNX node's attribute value (ints as a list, strings decoded), or ``default`` when the node lacks it."""
    from onnx import helper

    for a in node.attribute:
        if a.name == name:
            value = helper.get_attribute_value(a)
            return value.decode() if isinstance(value, bytes) else value
    return default


def onnx_maps(graph) -> tuple[dict, dict]:
    """(producer of each tensor, consumers of each tensor) of an ONNX graph; initializers count as tensors."""
    producer = {out: node for node in graph.node for out in node.output}
    consumers: dict[str, list] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    return producer, consumers


def input_prefix_nodes(model) -> list[str]:
    """Names of the ONNX nodes that compute the first convolution's input from the graph input."""
    producer, _ = onnx_maps(model.graph)
    first_conv = next((n for n in model.graph.node if n.op_type == "Conv"), None)
    if first_conv is None:
        return []
    nodes = walk([producer.get(first_conv.input[0])], lambda n: [producer.get(i) for i in n.input])
    return [n.name for n in nodes if n.name]


def onnx_tail_nodes(model) -> list[str]:
    """Names of the nodes from the first reduction over height and width (NCHW axes 2 and 3) to the output."""
    from onnx import numpy_helper

    g = model.graph
    consts = {t.name: numpy_helper.to_array(t) for t in g.initializer}
    for node in g.node:
        if node.op_type == "Constant" and node.attribute:
            try:
                consts[node.output[0]] = numpy_helper.to_array(node.attribute[0].t)
            except (TypeError, ValueError, AttributeError):  # non-tensor constants: not axes
                pass

    def spatial(node) -> bool:
        if node.op_type in _GLOBAL_POOLS:
            return True
        if node.op_type not in _REDUCTIONS:
            return False
        axes = node_attribute(node, "axes")
        if axes is None and len(node.input) > 1 and node.input[1] in consts:
            axes = [int(a) for a in np.ravel(consts[node.input[1]])]
        return axes is not None and {a % 4 for a in axes} >= {2, 3}

    _, consumers = onnx_maps(g)
    nodes = walk([n for n in g.node if spatial(n)], lambda n: [c for o in n.output for c in consumers.get(o, [])])
    return [n.name for n in nodes if n.name]


def float_nodes(model, recipe: Int8Recipe) -> list[str]:
    """Names of the nodes the recipe keeps float: the input prefix and the tail, as the recipe asks."""
    return (input_prefix_nodes(model) if recipe.float_input_prefix else []) + (
        onnx_tail_nodes(model) if recipe.float_tail else []
    )


def shift_onnx_head(model, shift: np.ndarray) -> str | None:
    """Subtract ``shift`` from the float bias of the Gemm that feeds the output softmax (in place).

    Returns the bias name, or None when the head is not a float Gemm with its own bias (nothing changed).
    """
    from onnx import numpy_helper

    g = model.graph
    producer, consumers = onnx_maps(g)
    softmax = producer.get(g.output[0].name)
    gemm = producer.get(softmax.input[0]) if softmax is not None and softmax.op_type == "Softmax" else None
    if gemm is None or gemm.op_type != "Gemm" or len(gemm.input) < 3:
        return None
    init = {t.name: t for t in g.initializer}
    name = gemm.input[2]
    if name not in init or len(consumers.get(name, [])) != 1:
        return None
    bias = numpy_helper.to_array(init[name])
    if bias.dtype != np.float32 or bias.shape != shift.shape:
        return None
    init[name].CopyFrom(numpy_helper.from_array((bias - shift).astype(np.float32), name))
    return name
