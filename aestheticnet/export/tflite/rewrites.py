"""Exact rewrites of converted TFLite flatbuffers.

``redilate`` undoes the cost of :func:`~aestheticnet.export.onnx.rewrites.undilate_convolutions`. onnx2tf cannot
be given dilated convolutions (TensorFlow lowers them to SpaceToBatch/BatchToSpace, wrong under dynamic shapes),
so they reach it as ordinary convolutions whose kernels hold zeros between the taps: correct, but a 3x3 dilated
kernel costs 5x5 and a 5x5 one 9x9 (the default AestheticNet* ran 1.66x slower in TFLite). TFLite's own
(DEPTHWISE_)CONV_2D has dilation factors, and XNNPACK runs them natively at any input size, so each such kernel is
compacted back to its k x k taps and the operator gets ``dilation = d``. Exact: a kernel whose only non-zero taps
sit on a d-spaced grid computes the same sums as the compact kernel dilated by d. Works for float32, float16
(through the DEQUANTIZE that feeds the filter) and int8 (symmetric per-channel weights: zero stays zero) filters.
"""

from __future__ import annotations

import numpy as np

from aestheticnet.artifacts.flatbuffer import pack, unpack

__all__ = ["redilate"]

_DILATIONS = (4, 3, 2)  # largest first: fewest taps


def _dtype(schema, tensor_type: int):
    return {
        schema.TensorType.FLOAT32: np.float32,
        schema.TensorType.FLOAT16: np.float16,
        schema.TensorType.INT8: np.int8,
    }.get(tensor_type)


def _dilation_of(w: np.ndarray) -> int:
    """The largest d for which ``w`` (O, kh, kw, I) is a zero-inserted kernel, else 1."""
    kh, kw = w.shape[1], w.shape[2]
    for d in _DILATIONS:
        if kh < d + 1 or kw < d + 1 or (kh - 1) % d or (kw - 1) % d:
            continue
        mask = np.ones((kh, kw), dtype=bool)
        mask[::d, ::d] = False
        if not np.any(w[:, mask, :]):
            return d
    return 1


def redilate(flat: bytes) -> tuple[bytes, int]:
    """Return the rewritten flatbuffer and the number of convolutions given back their dilation."""
    from ai_edge_litert import schema_py_generated as schema

    model, codes = unpack(flat)
    convs = {schema.BuiltinOperator.CONV_2D, schema.BuiltinOperator.DEPTHWISE_CONV_2D}
    buffer_users: dict[int, int] = {}
    for sg in model.subgraphs:
        for t in sg.tensors:
            buffer_users[t.buffer] = buffer_users.get(t.buffer, 0) + 1
    count = 0
    for sg in model.subgraphs:
        producers = {out: op for op in sg.operators for out in (op.outputs if op.outputs is not None else [])}
        for op in sg.operators:
            if codes[op.opcodeIndex] not in convs or op.builtinOptions is None:
                continue
            opts = op.builtinOptions
            if opts.dilationHFactor != 1 or opts.dilationWFactor != 1:
                continue
            filt = sg.tensors[op.inputs[1]]
            chain = [filt]
            producer = producers.get(op.inputs[1])
            if producer is not None and codes[producer.opcodeIndex] == schema.BuiltinOperator.DEQUANTIZE:
                chain.append(sg.tensors[producer.inputs[0]])  # fp16 weights -> DEQUANTIZE -> filter
            source = chain[-1]
            dtype = _dtype(schema, source.type)
            buf = model.buffers[source.buffer]
            if dtype is None or buf.data is None or len(source.shape) != 4 or buffer_users.get(source.buffer, 0) != 1:
                continue
            w = np.frombuffer(np.asarray(buf.data, dtype=np.uint8).tobytes(), dtype=dtype).reshape(source.shape)
            d = _dilation_of(w)
            if d == 1:
                continue
            compact = np.ascontiguousarray(w[:, ::d, ::d, :])
            buf.data = np.frombuffer(compact.tobytes(), dtype=np.uint8)
            for t in chain:
                t.shape = np.asarray(compact.shape, dtype=np.int32)
                if t.shapeSignature is not None and len(t.shapeSignature):
                    t.shapeSignature = np.asarray(compact.shape, dtype=np.int32)
            opts.dilationHFactor = opts.dilationWFactor = d
            code = model.operatorCodes[op.opcodeIndex]
            code.version = max(code.version, 2)  # dilation needs version 2 of both operators
            count += 1
    if not count:
        return flat, 0
    return pack(model, len(flat)), count
