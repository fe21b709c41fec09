"""Quantised ReLUs as ``LeakyRelu(alpha=0)``: the same function, in the form ONNX Runtime runs as an integer table.

In a QDQ graph a ReLU sits between a ``DequantizeLinear`` and a ``QuantizeLinear``. ONNX Runtime's optimiser drops
such a ``Relu`` into the ``QuantizeLinear`` (its zero point is the bottom of the range, so the clamp does the
ReLU) and leaves ``DequantizeLinear -> QuantizeLinear``: a requantisation through float that no kernel fuses. The
default AestheticNet* has 60 (every cell's preprocessing and every separable convolution starts with a ReLU), and
they took 1.25 ms of its 11 ms int8 run. ``LeakyRelu`` with ``alpha=0`` is the ReLU (``0 * x`` for ``x < 0``), and
ONNX Runtime fuses ``DequantizeLinear -> LeakyRelu -> QuantizeLinear`` into ``QLinearLeakyRelu``, a 256-entry
lookup from the input's quantised value to the output's. The graph computes the same function; on the default
AestheticNet* the outputs were bit-identical with ONNX Runtime's optimisations on.
"""

from __future__ import annotations

import onnx
from onnx import helper

from aestheticnet.export.onnx.graph import onnx_maps

__all__ = ["quantised_relus_as_leaky_relu"]


def quantised_relus_as_leaky_relu(model: onnx.ModelProto) -> int:
    """Turn every ``Relu`` that reads a ``DequantizeLinear`` and feeds only ``QuantizeLinear``s into ``LeakyRelu(0)``.

    Changes ``model`` in place; returns the number of nodes changed. Float ReLUs (those of the float prefix and
    tail) are left as they are.
    """
    graph = model.graph
    producer, consumers = onnx_maps(graph)
    outputs = {o.name for o in graph.output}
    count = 0
    for node in graph.node:
        if node.op_type != "Relu":
            continue
        source = producer.get(node.input[0])
        readers = consumers.get(node.output[0], [])
        if source is None or source.op_type != "DequantizeLinear" or node.output[0] in outputs:
            continue
        if not readers or any(r.op_type != "QuantizeLinear" for r in readers):
            continue
        node.op_type = "LeakyRelu"
        del node.attribute[:]
        node.attribute.append(helper.make_attribute("alpha", 0.0))
        count += 1
    return count
