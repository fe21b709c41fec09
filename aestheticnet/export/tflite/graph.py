"""Where the int8 recipe's float parts and bias correction sit in a TFLite flatbuffer (the same parts as in ONNX:
:mod:`aestheticnet.export.onnx.graph`), found on the float conversion of the same Keras graph."""

from __future__ import annotations

import numpy as np

from aestheticnet.artifacts.flatbuffer import pack, unpack
from aestheticnet.export.graphs import walk

__all__ = ["average_pool_tensors", "input_prefix_tensors", "shift_tflite_head", "tflite_tail_tensors"]


def _tflite_maps(sg):
    producer = {int(o): op for op in sg.operators for o in (op.outputs if op.outputs is not None else [])}
    consumers: dict[int, list] = {}
    for op in sg.operators:
        for i in op.inputs if op.inputs is not None else []:
            consumers.setdefault(int(i), []).append(op)
    return producer, consumers


def _inputs(op) -> list[int]:
    return [int(i) for i in (op.inputs if op.inputs is not None else []) if i >= 0]


def input_prefix_tensors(flat: bytes) -> list[str]:
    """Output tensor names of the TFLite operators that compute the first convolution's input from the model
    input; empty when that prefix is only padding (a model without ``input_norm``)."""
    from ai_edge_litert import schema_py_generated as schema

    model, codes = unpack(flat)
    convs = {schema.BuiltinOperator.CONV_2D, schema.BuiltinOperator.DEPTHWISE_CONV_2D}
    sg = model.subgraphs[0]
    producer, _ = _tflite_maps(sg)
    first = next((op for op in sg.operators if codes[op.opcodeIndex] in convs), None)
    if first is None:
        return []
    ops = walk([producer.get(int(first.inputs[0]))], lambda op: [producer.get(i) for i in _inputs(op)])
    kinds = {codes[op.opcodeIndex] for op in ops}
    if not kinds - {schema.BuiltinOperator.PAD, schema.BuiltinOperator.PADV2}:
        return []
    return [sg.tensors[i].name.decode() for op in ops for i in op.outputs]


def tflite_tail_tensors(flat: bytes) -> list[str]:
    """Output tensor names of the operators from the first spatial reduction (NHWC output 1x1) to the output."""
    from ai_edge_litert import schema_py_generated as schema

    model, codes = unpack(flat)
    reductions = {
        schema.BuiltinOperator.MEAN,
        schema.BuiltinOperator.REDUCE_MAX,
        schema.BuiltinOperator.SUM,
        schema.BuiltinOperator.REDUCE_MIN,
    }
    sg = model.subgraphs[0]

    def shape(i):
        t = sg.tensors[i]
        return list(t.shapeSignature if t.shapeSignature is not None else t.shape)

    def spatial(op) -> bool:
        if codes[op.opcodeIndex] not in reductions:
            return False
        out, src = shape(op.outputs[0]), shape(op.inputs[0])
        return len(src) == 4 and (len(out) == 2 or (len(out) == 4 and out[1] == out[2] == 1))

    _, consumers = _tflite_maps(sg)
    ops = walk(
        [op for op in sg.operators if spatial(op)],
        lambda op: [c for o in op.outputs for c in consumers.get(int(o), [])],
    )
    return [sg.tensors[i].name.decode() for op in ops for i in op.outputs]


def average_pool_tensors(flat: bytes) -> list[str]:
    """Output tensor names of the file's ``AVERAGE_POOL_2D`` operators."""
    from ai_edge_litert import schema_py_generated as schema

    model, codes = unpack(flat)
    sg = model.subgraphs[0]
    pools = [op for op in sg.operators if codes[op.opcodeIndex] == schema.BuiltinOperator.AVERAGE_POOL_2D]
    return [sg.tensors[i].name.decode() for op in pools for i in op.outputs]


def shift_tflite_head(flat: bytes, shift: np.ndarray) -> bytes | None:
    """Subtract ``shift`` from the float bias of the FULLY_CONNECTED that feeds the output SOFTMAX.

    Returns the rewritten flatbuffer, or None when the head is not a float fully-connected layer with a bias
    buffer of its own.
    """
    from ai_edge_litert import schema_py_generated as schema

    model, codes = unpack(flat)
    sg = model.subgraphs[0]
    producer, _ = _tflite_maps(sg)
    softmax = producer.get(int(sg.outputs[0]))
    if softmax is None or codes[softmax.opcodeIndex] != schema.BuiltinOperator.SOFTMAX:
        return None
    fc = producer.get(int(softmax.inputs[0]))
    if fc is None or codes[fc.opcodeIndex] != schema.BuiltinOperator.FULLY_CONNECTED or len(fc.inputs) < 3:
        return None
    bias_index = int(fc.inputs[2])
    tensor = sg.tensors[bias_index] if bias_index >= 0 else None
    if tensor is None or tensor.type != schema.TensorType.FLOAT32:
        return None
    shared = sum(t.buffer == tensor.buffer for t in sg.tensors)
    buffer = model.buffers[tensor.buffer]
    if shared != 1 or buffer.data is None:
        return None
    bias = np.frombuffer(bytes(bytearray(buffer.data)), dtype=np.float32)
    if bias.shape != shift.shape:
        return None
    buffer.data = np.frombuffer((bias - shift).astype(np.float32).tobytes(), dtype=np.uint8)
    return pack(model, len(flat))
