"""Intermediate activations of an ONNX graph on calibration images, for the int8 steps that measure them.

Every tensor asked for becomes a graph output of a copy of the model, run by ONNX Runtime with all graph
optimisations off (fused nodes would hide the tensors). Images are run one at a time: calibration images may
differ in size.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import numpy as np

__all__ = ["activation_tensors", "iter_activations"]


def activation_tensors(model, exclude_nodes: Iterable[str] = ()) -> list[str]:
    """Outputs of every node of ``model`` except ``exclude_nodes`` (node names) and constant-producing nodes."""
    skip = set(exclude_nodes)
    return [o for n in model.graph.node if n.name not in skip and n.op_type != "Constant" for o in n.output if o]


def iter_activations(model, tensors: list[str], images: Iterable[np.ndarray]) -> Iterator[dict[str, np.ndarray]]:
    """For each image (CHW or NCHW float32), ``{tensor: value}`` for ``tensors`` of ``model`` (an ONNX
    ModelProto, left unchanged)."""
    import onnx
    import onnxruntime as ort

    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    del probe.graph.output[:]
    for name in tensors:
        probe.graph.output.append(onnx.helper.make_empty_tensor_value_info(name))
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL  # keep every tensor
    session = ort.InferenceSession(probe.SerializeToString(), options, providers=["CPUExecutionProvider"])
    input_name = model.graph.input[0].name
    for x in images:
        x = np.ascontiguousarray(x[None] if x.ndim == 3 else x, np.float32)
        yield dict(zip(tensors, session.run(tensors, {input_name: x})))
