"""Unsigned int8 activations in a QDQ graph: the same quantisation grid, in the type ONNX Runtime fuses on x86.

The quantiser writes signed int8 activations (zero point z in [-128, 127]). ONNX Runtime's x86 CPU provider fuses
``DequantizeLinear -> Conv -> QuantizeLinear`` into an integer ``QLinearConv`` for uint8 activations everywhere,
but for int8 activations only in some places. Measured on the default AestheticNet* (ONNX Runtime 1.32, 224x224,
1 thread): 105 of its 438 convolutions (those whose input feeds more than one operator) stayed
DequantizeLinear -> float Conv -> QuantizeLinear, 505 DequantizeLinear and 275 QuantizeLinear nodes ran at run
time, the Adds and Concats stayed float, and the int8 file was slower than its fp32 original. With uint8
activations every convolution, Add and Concat is fused.

The rewrite is exact: with scale s and the zero point moved by 128,
``clamp(round(x / s) + z + 128, 0, 255) = clamp(round(x / s) + z, -128, 127) + 128`` and
``(q + 128 - (z + 128)) * s = (q - z) * s``, so every quantised value keeps its meaning. Weights stay signed int8
(QLinearConv's u8 x s8 kernels).
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, numpy_helper

__all__ = ["uint8_activations"]


def _shifted_zero_point(graph: onnx.GraphProto, inits: dict, name: str) -> str:
    """The name of a uint8 copy of int8 zero-point initializer ``name`` (made once)."""
    new = f"{name}_uint8"
    if new not in inits:
        z = numpy_helper.to_array(inits[name]).astype(np.int16) + 128
        tensor = numpy_helper.from_array(z.astype(np.uint8), new)
        graph.initializer.append(tensor)
        inits[new] = tensor
    return new


def _is_int8_initializer(inits: dict, name: str) -> bool:
    return name in inits and inits[name].data_type == TensorProto.INT8


def uint8_activations(model: onnx.ModelProto) -> int:
    """Move every int8 activation of ``model`` (in place) to uint8; return the number of QuantizeLinear changed.

    Activations are the outputs of ``QuantizeLinear``; the ``DequantizeLinear`` nodes reading them change with
    them. Weights and biases (``DequantizeLinear`` of an initializer) are left as they are.
    """
    graph = model.graph
    inits = {t.name: t for t in graph.initializer}
    changed: set[str] = set()
    count = 0
    for node in graph.node:
        if node.op_type == "QuantizeLinear" and len(node.input) > 2 and _is_int8_initializer(inits, node.input[2]):
            node.input[2] = _shifted_zero_point(graph, inits, node.input[2])
            changed.add(node.output[0])
            count += 1
    for node in graph.node:
        if node.op_type != "DequantizeLinear" or node.input[0] not in changed:
            continue
        if len(node.input) < 3 or not _is_int8_initializer(inits, node.input[2]):
            raise ValueError(f"DequantizeLinear {node.name!r} reads an int8 activation without an int8 zero point")
        node.input[2] = _shifted_zero_point(graph, inits, node.input[2])
    for info in list(graph.value_info) + list(graph.output):
        if info.name in changed:
            info.type.tensor_type.elem_type = TensorProto.UINT8
    used = {name for node in graph.node for name in node.input}
    keep = [t for t in graph.initializer if t.name in used]
    del graph.initializer[:]
    graph.initializer.extend(keep)
    return count
