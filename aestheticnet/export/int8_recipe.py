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

* **Float tail** (:func:`onnx_tail_nodes`, :func:`tflite_tail_tensors`): every operator from the first global
  spatial reduction on (CBAM's channel and spatial attention, the global average pool, the classifier and the
  softmax). These run on 1x1 maps or gate a few channels: a negligible share of the MACs, but an int8 softmax
  has a step of 1/256 per bucket, and CBAM's sigmoid gates multiply every error of the last cell.
* **Bias correction** (:func:`logit_shift`): after quantisation the int8 network's pooled features carry a
  per-channel offset (most of their error: at the logits 84% of the squared error was the same for every image).
  The mean difference of the log-probabilities between the int8 and the float model over the calibration
  images is that offset seen at the logits (a constant added to all logits cancels in the softmax); it is
  subtracted from the classifier's float bias (Nagel et al. 2019, "Data-Free Quantization Through Weight
  Equalization and Bias Correction", section 4.2, empirical variant).
"""

from __future__ import annotations

import numpy as np

__all__ = ["logit_shift", "onnx_tail_nodes", "shift_onnx_head", "shift_tflite_head", "tflite_tail_tensors"]

_GLOBAL_POOLS = {"GlobalAveragePool", "GlobalMaxPool"}
_REDUCTIONS = {"ReduceMean", "ReduceMax", "ReduceSum", "ReduceMin"}


def _descendants(roots: list, consumers: dict, outputs_of) -> list:
    seen, order, stack = set(), [], list(roots)
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        order.append(node)
        for out in outputs_of(node):
            stack.extend(consumers.get(out, []))
    return order


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

    consumers: dict[str, list] = {}
    for node in g.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    roots = [n for n in g.node if spatial(n)]
    return [n.name for n in _descendants(roots, consumers, lambda n: n.output) if n.name]


def tflite_tail_tensors(flat: bytes) -> list[str]:
    """Output tensor names of the operators from the first spatial reduction (NHWC output 1x1) to the output."""
    from ai_edge_litert import schema_py_generated as schema

    model = schema.ModelT.InitFromObj(schema.Model.GetRootAsModel(bytearray(flat), 0))
    codes = [max(c.builtinCode, c.deprecatedBuiltinCode) for c in model.operatorCodes]
    reductions = {schema.BuiltinOperator.MEAN, schema.BuiltinOperator.REDUCE_MAX, schema.BuiltinOperator.SUM,
                  schema.BuiltinOperator.REDUCE_MIN}  # fmt: skip
    sg = model.subgraphs[0]

    def shape(i):
        t = sg.tensors[i]
        return list(t.shapeSignature if t.shapeSignature is not None else t.shape)

    def spatial(op) -> bool:
        if codes[op.opcodeIndex] not in reductions:
            return False
        out = shape(op.outputs[0])
        src = shape(op.inputs[0])
        return len(src) == 4 and (len(out) == 2 or (len(out) == 4 and out[1] == out[2] == 1))

    consumers: dict[int, list] = {}
    for op in sg.operators:
        for i in op.inputs if op.inputs is not None else []:
            consumers.setdefault(int(i), []).append(op)
    roots = [op for op in sg.operators if spatial(op)]
    ops = _descendants(roots, consumers, lambda op: [int(i) for i in op.outputs])
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


def shift_onnx_head(model, shift: np.ndarray) -> str | None:
    """Subtract ``shift`` from the float bias of the Gemm that feeds the output softmax (in place).

    Returns the bias name, or None when the head is not a float Gemm with its own bias (nothing changed).
    """
    from onnx import numpy_helper

    g = model.graph
    producer = {out: node for node in g.node for out in node.output}
    softmax = producer.get(g.output[0].name)
    gemm = producer.get(softmax.input[0]) if softmax is not None and softmax.op_type == "Softmax" else None
    if gemm is None or gemm.op_type != "Gemm" or len(gemm.input) < 3:
        return None
    init = {t.name: t for t in g.initializer}
    name = gemm.input[2]
    uses = sum(name in node.input for node in g.node)
    if name not in init or uses != 1:
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
    import flatbuffers
    from ai_edge_litert import schema_py_generated as schema

    model = schema.ModelT.InitFromObj(schema.Model.GetRootAsModel(bytearray(flat), 0))
    codes = [max(c.builtinCode, c.deprecatedBuiltinCode) for c in model.operatorCodes]
    sg = model.subgraphs[0]
    producer = {int(o): op for op in sg.operators for o in op.outputs}
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
    builder = flatbuffers.Builder(len(flat) + 1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())
