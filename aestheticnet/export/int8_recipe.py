"""What full-int8 keeps in float, and the bias correction of the classifier; one recipe for ONNX and TFLite.

Measured on the default AestheticNet* (20 cells, C=36, briefly fitted; ONNX QDQ, 200 images, SROCC of the int8
mean scores against fp32), each step on top of the previous one:

====================================================================  =======  ==========
recipe                                                                SROCC    mean |d|
====================================================================  =======  ==========
everything int8 after the input normalisation                         0.539    0.062
+ the head (classifier, softmax) in float                             0.582    0.043
+ the whole tail in float (CBAM gates, global pooling, head)          0.776    0.034
+ bias correction of the classifier                                   0.897    0.015
====================================================================  =======  ==========

* **Float input normalisation** (:func:`input_prefix_nodes`, :func:`input_prefix_tensors`): the operators that
  compute the first convolution's input from the image (``input_norm``: local means, a square root, a division
  by the local deviation). In int8 the deviation near zero is one or two quantisation steps and dividing by it
  destroyed the scores (MSCN model: mean-score difference 4, SROCC 0.44 on 200 images).
* **Float tail** (:func:`onnx_tail_nodes`, :func:`tflite_tail_tensors`): every operator from the first global
  spatial reduction on (CBAM's channel and spatial attention, the global average pool, the classifier and the
  softmax). These run on 1x1 maps or gate a few channels: a negligible share of the MACs, but an int8 softmax
  has a step of 1/256 per bucket, and CBAM's sigmoid gates multiply every error of the last cell.
* **Bias correction** (:func:`logit_shift`, :func:`measured_shift`): after quantisation the int8 network's pooled features carry a
  per-channel offset (most of their error: at the logits 84% of the squared error was the same for every image).
  The mean difference of the log-probabilities between the int8 and the float model over the calibration
  images is that offset seen at the logits (a constant added to all logits cancels in the softmax); it is
  subtracted from the classifier's float bias (Nagel et al. 2019, "Data-Free Quantization Through Weight
  Equalization and Bias Correction", section 4.2, empirical variant).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from aestheticnet.export.tflite_rewrites import pack, unpack

__all__ = [
    "input_prefix_nodes",
    "input_prefix_tensors",
    "logit_shift",
    "measured_shift",
    "onnx_maps",
    "onnx_tail_nodes",
    "shift_onnx_head",
    "shift_tflite_head",
    "tflite_tail_tensors",
]

_GLOBAL_POOLS = {"GlobalAveragePool", "GlobalMaxPool"}
_REDUCTIONS = {"ReduceMean", "ReduceMax", "ReduceSum", "ReduceMin"}


def _walk(roots: list, neighbours) -> list:
    """Every node reachable from ``roots`` through ``neighbours(node)``, each once, roots included."""
    seen, order, stack = set(), [], list(roots)
    while stack:
        node = stack.pop()
        if node is None or id(node) in seen:
            continue
        seen.add(id(node))
        order.append(node)
        stack.extend(neighbours(node))
    return order


def onnx_maps(graph) -> tuple[dict, dict]:
    """(producer of each tensor, consumers of each tensor) of an ONNX graph; initializers count as tensors."""
    producer = {out: node for node in graph.node for out in node.output}
    consumers: dict[str, list] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    return producer, consumers


def _tflite_maps(sg):
    producer = {int(o): op for op in sg.operators for o in (op.outputs if op.outputs is not None else [])}
    consumers: dict[int, list] = {}
    for op in sg.operators:
        for i in op.inputs if op.inputs is not None else []:
            consumers.setdefault(int(i), []).append(op)
    return producer, consumers


def _inputs(op) -> list[int]:
    return [int(i) for i in (op.inputs if op.inputs is not None else []) if i >= 0]


def input_prefix_nodes(model) -> list[str]:
    """Names of the ONNX nodes that compute the first convolution's input from the graph input."""
    producer, _ = onnx_maps(model.graph)
    first_conv = next((n for n in model.graph.node if n.op_type == "Conv"), None)
    if first_conv is None:
        return []
    nodes = _walk([producer.get(first_conv.input[0])], lambda n: [producer.get(i) for i in n.input])
    return [n.name for n in nodes if n.name]


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
    ops = _walk([producer.get(int(first.inputs[0]))], lambda op: [producer.get(i) for i in _inputs(op)])
    kinds = {codes[op.opcodeIndex] for op in ops}
    if not kinds - {schema.BuiltinOperator.PAD, schema.BuiltinOperator.PADV2}:
        return []
    return [sg.tensors[i].name.decode() for op in ops for i in op.outputs]


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
        axes = next((list(a.ints) for a in node.attribute if a.name == "axes"), None)
        if axes is None and len(node.input) > 1 and node.input[1] in consts:
            axes = [int(a) for a in np.ravel(consts[node.input[1]])]
        return axes is not None and {a % 4 for a in axes} >= {2, 3}

    _, consumers = onnx_maps(g)
    nodes = _walk([n for n in g.node if spatial(n)], lambda n: [c for o in n.output for c in consumers.get(o, [])])
    return [n.name for n in nodes if n.name]


def tflite_tail_tensors(flat: bytes) -> list[str]:
    """Output tensor names of the operators from the first spatial reduction (NHWC output 1x1) to the output."""
    from ai_edge_litert import schema_py_generated as schema

    model, codes = unpack(flat)
    reductions = {schema.BuiltinOperator.MEAN, schema.BuiltinOperator.REDUCE_MAX, schema.BuiltinOperator.SUM,
                  schema.BuiltinOperator.REDUCE_MIN}  # fmt: skip
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
    ops = _walk([op for op in sg.operators if spatial(op)],
                lambda op: [c for o in op.outputs for c in consumers.get(int(o), [])])  # fmt: skip
    return [sg.tensors[i].name.decode() for op in ops for i in op.outputs]


def logit_shift(reference: np.ndarray, quantized: np.ndarray, eps: float = 1e-12) -> np.ndarray:
    """Mean over images of ``log quantized - log reference`` (distributions, images x buckets), centred.

    A constant added to every logit does not change a softmax, so the centred mean log-ratio is the mean logit
    error of the quantised model; subtracting it from the classifier's bias removes it.
    """
    ref = np.asarray(reference, np.float64)
    got = np.asarray(quantized, np.float64)
    if ref.shape != got.shape or ref.ndim != 2:
        raise ValueError(f"expected two (images, buckets) arrays of one shape, got {ref.shape} and {got.shape}")
    diff = (np.log(np.maximum(got, eps)) - np.log(np.maximum(ref, eps))).mean(axis=0)
    return (diff - diff.mean()).astype(np.float32)


def measured_shift(reference: str | os.PathLike, quantized: str | os.PathLike, images: list[np.ndarray]):
    """:func:`logit_shift` of two model files (any runtime backend: ``.onnx``, ``.tflite``) on NCHW images, run
    one at a time (their sizes may differ)."""
    from aestheticnet.runtime import load

    def run(path):
        backend = load(Path(path))
        return np.concatenate([backend.run(x[None] if x.ndim == 3 else x) for x in images])

    return logit_shift(run(reference), run(quantized))


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
