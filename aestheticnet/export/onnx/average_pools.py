"""Padding-excluding average pools, as the model writes them for export, back to one pool for onnx2tf.

The network averages only the real pixels of a window at the border (``AvgPool3x3``, and the input
normaliser's means when it is not cut off): ``pool(x) / pool(ones)``, both pools counting the padded zeros,
because ``count_include_pad=False`` itself converts with the wrong divisor under dynamic shapes. In a TFLite file
that quotient is a ``PAD`` and a pool per branch plus a ones map built at run time (``SHAPE``, ``STRIDED_SLICE``,
``FILL``: operators XNNPACK does not take, so every pool splits the delegated graph) and a ``DIV``. TensorFlow's
own ``SAME`` average pooling leaves padded positions out of the average, which is the quotient exactly when the
padding is centred, so onnx2tf's copy of the graph gets that instead (``AveragePool`` with ``auto_pad=SAME_UPPER``,
which onnx2tf converts to it): a stride-2 pool as the stride-1 pool followed by a 1x1 depthwise convolution of
stride 2 with weight 1 (output ``i`` is the window centred on input ``2i`` in both, as for the max pools of
:func:`~aestheticnet.export.onnx.rewrites.same_pad_max_pools`), windows of 5 or more as two 1-D pools.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import helper, numpy_helper

from aestheticnet.export.onnx.graph import node_attribute as _attr
from aestheticnet.export.onnx.graph import onnx_maps
from aestheticnet.export.onnx.rewrites import channel_counts, prune_initializers

__all__ = ["drop_dead_nodes", "same_pad_average_pools"]


def _constants(graph) -> dict[str, np.ndarray]:
    values = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    for node in graph.node:
        if node.op_type == "Constant" and node.attribute and node.attribute[0].name == "value":
            values[node.output[0]] = numpy_helper.to_array(node.attribute[0].t)
    return values


def _is_ones(name: str, producer: dict, constants: dict[str, np.ndarray]) -> bool:
    """Whether tensor ``name`` holds only ones: a constant, or ones expanded or filled to a run-time shape."""
    if name in constants:
        return bool(np.all(constants[name] == 1))
    node = producer.get(name)
    if node is not None and node.op_type == "Expand":
        return node.input[0] in constants and bool(np.all(constants[node.input[0]] == 1))
    if node is not None and node.op_type == "ConstantOfShape":
        value = _attr(node, "value")
        return value is not None and bool(np.all(numpy_helper.to_array(value) == 1))
    return False


def _counting_pool(node) -> tuple | None:
    """``(kernel, strides)`` of a count-including 2-D ``AveragePool`` with centred padding, else None."""
    if node is None or node.op_type != "AveragePool" or not _attr(node, "count_include_pad", 0):
        return None
    kernel, pads = _attr(node, "kernel_shape", []), _attr(node, "pads", [0, 0, 0, 0])
    if len(kernel) != 2 or _attr(node, "ceil_mode", 0) or _attr(node, "auto_pad", "NOTSET") != "NOTSET":
        return None
    if not all(k % 2 == 1 and p == k // 2 for p, k in zip(pads, kernel + kernel)):
        return None
    return tuple(kernel), tuple(_attr(node, "strides", [1, 1]))


def _same_pools(source: str, output: str, kernel: tuple, base: str) -> list:
    """Stride-1 ``SAME`` padding-excluding pools of ``source`` into ``output``: one, or two 1-D ones from 5 up."""

    def pool(src: str, dst: str, k: list[int], suffix: str):
        attrs = {"kernel_shape": k, "strides": [1, 1], "auto_pad": "SAME_UPPER", "count_include_pad": 0}
        return helper.make_node("AveragePool", [src], [dst], name=f"{base}__{suffix}", **attrs)

    if kernel[0] < 5 and kernel[1] < 5:
        return [pool(source, output, list(kernel), "same")]
    rows = f"{output}__{base}__rows"
    return [pool(source, rows, [1, kernel[1]], "same_rows"), pool(rows, output, [kernel[0], 1], "same_columns")]


def _replacement(div, pooled, base: str, graph, channels) -> list | None:
    kernel, strides = _counting_pool(pooled)
    if strides == (1, 1):
        return _same_pools(pooled.input[0], div.output[0], kernel, base)
    if strides != (2, 2) or channels.get(pooled.input[0]) is None:
        return None
    c = channels[pooled.input[0]]
    weight = f"{base}__subsample_weight"
    graph.initializer.append(numpy_helper.from_array(np.ones((c, 1, 1, 1), np.float32), weight))
    same = f"{pooled.input[0]}__{base}__same_pooled"
    subsample = helper.make_node(
        "Conv", [same, weight], [div.output[0]], kernel_shape=[1, 1], strides=[2, 2], group=c, name=f"{base}__sub"
    )
    return [*_same_pools(pooled.input[0], same, kernel, base), subsample]


def same_pad_average_pools(model: onnx.ModelProto) -> int:
    """Every ``pool(x) / pool(ones)`` of two equal count-including pools with centred padding as ``SAME``
    padding-excluding pooling (module docstring), in place; returns how many were rewritten."""
    graph = model.graph
    producer, _ = onnx_maps(graph)
    constants = _constants(graph)
    channels: dict[str, int] | None = None
    replaced: dict[int, list] = {}
    for index, div in enumerate(graph.node):
        if div.op_type != "Div" or len(div.input) != 2:
            continue
        pooled, divisor = producer.get(div.input[0]), producer.get(div.input[1])
        shape = _counting_pool(pooled)
        if shape is None or _counting_pool(divisor) != shape or not _is_ones(divisor.input[0], producer, constants):
            continue
        if shape[1] != (1, 1) and channels is None:
            channels = channel_counts(model)
        nodes = _replacement(div, pooled, div.name or f"avgpool_{index}", graph, channels or {})
        if nodes is not None:
            replaced[index] = nodes
    if replaced:
        kept = [n for i, node in enumerate(graph.node) for n in replaced.get(i, [node])]
        del graph.node[:]
        graph.node.extend(kept)
        drop_dead_nodes(model)
    return len(replaced)


def drop_dead_nodes(model: onnx.ModelProto) -> int:
    """Remove the nodes whose outputs nothing reads (repeatedly), then the initializers nothing reads; the count."""
    graph, dropped = model.graph, 0
    while True:
        read = {name for node in graph.node for name in node.input} | {o.name for o in graph.output}
        alive = [n for n in graph.node if any(o in read for o in n.output)]
        if len(alive) == len(graph.node):
            break
        dropped += len(graph.node) - len(alive)
        del graph.node[:]
        graph.node.extend(alive)
    prune_initializers(model)
    return dropped
