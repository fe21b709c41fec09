"""Int8 ``RELU`` written as the int8 ``QUANTIZE`` it equals, so that XNNPACK keeps the graph in few partitions.

The TFLite converter leaves a standalone int8 ``RELU`` wherever a ReLU does not follow a convolution (DARTS
operations start with ReLU on a shared cell state). XNNPACK does not take int8 ``RELU`` (it takes the float
one): measured on the default AestheticNet* at 224x224, its 79 int8 RELUs split the delegated graph into 60
partitions instead of 3, and the RELUs ran in the slow builtin kernel between them. The int8 file ran slower
than the float one.

An int8 RELU whose output zero point is -128 (output range [0, max]: every calibrated ReLU output) computes
``clamp(requantize(q), -128, 127)``: its lower clamp at the zero point is the type's own minimum. An int8 ->
int8 ``QUANTIZE`` to the same output scale and zero point computes the same requantisation and clamp, so the
swap is exact (outputs compared bit for bit in the tests); XNNPACK delegates int8 ``QUANTIZE``. A RELU with any
other output zero point clips at a value inside the int8 range and is left as it is.
"""

from __future__ import annotations

from aestheticnet.artifacts.flatbuffer import pack, unpack

__all__ = ["relus_as_requantize"]


def _quantize_opcode(model, codes: list[int], schema) -> int:
    """The opcode index of QUANTIZE, added when the model has none (version 1: per-tensor int8 output)."""
    for i, code in enumerate(codes):
        if code == schema.BuiltinOperator.QUANTIZE:
            return i
    code = schema.OperatorCodeT()
    code.builtinCode = code.deprecatedBuiltinCode = schema.BuiltinOperator.QUANTIZE
    code.version = 1
    model.operatorCodes.append(code)
    codes.append(schema.BuiltinOperator.QUANTIZE)
    return len(codes) - 1


def _is_exact_swap(sg, op, schema) -> bool:
    src, dst = sg.tensors[op.inputs[0]], sg.tensors[op.outputs[0]]
    if src.type != schema.TensorType.INT8 or dst.type != schema.TensorType.INT8:
        return False
    q = dst.quantization
    return q is not None and q.zeroPoint is not None and len(q.zeroPoint) == 1 and int(q.zeroPoint[0]) == -128


def relus_as_requantize(flat: bytes) -> tuple[bytes, int]:
    """The flatbuffer with every int8 RELU of output zero point -128 replaced by QUANTIZE, and how many."""
    from ai_edge_litert import schema_py_generated as schema

    model, codes = unpack(flat)
    swaps = [
        (sg, op)
        for sg in model.subgraphs
        for op in sg.operators
        if codes[op.opcodeIndex] == schema.BuiltinOperator.RELU and _is_exact_swap(sg, op, schema)
    ]
    if not swaps:
        return flat, 0
    quantize = _quantize_opcode(model, codes, schema)
    for _, op in swaps:
        op.opcodeIndex = quantize
        op.builtinOptionsType = 0
        op.builtinOptions = None
    return pack(model, len(flat)), len(swaps)
