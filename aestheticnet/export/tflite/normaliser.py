"""The model's input normaliser in a TFLite file: written in TensorFlow, in front of onnx2tf's graph of the rest.

LiteRT runs the network in XNNPACK, channels-last, and XNNPACK vectorises pooling over channels. The MSCN
normaliser (:class:`~aestheticnet.models.input_norm.LocalContrastNorm`) takes 7x7 window means of the image's
3 channels at full resolution; as onnx2tf converts it (zero padding, count-including pools, the divisor from a
pooled ones map, which needs shape ops outside XNNPACK) it was 5.3 of the demo model's 6.7 ms at 224x224,
1 thread. Here each window mean is two 1-D passes, each an average pooling along one image axis whose channels
are the other axis times the colour channels (a reshape of the NHWC tensor; one transpose per mean), with
TensorFlow's ``SAME`` padding, which leaves padded positions out of the average as the model does: 0.8 ms for
the whole normaliser. onnx2tf cannot convert that form from ONNX (dynamic reshapes), so the converter cuts the
normaliser off the ONNX copy it hands to onnx2tf (:func:`cut_input_normaliser`) and calls the TensorFlow one
(:func:`tensorflow_normaliser`) on the input before onnx2tf's graph. ``verify`` compares the result with PyTorch
like every artifact.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["NormaliserSpec", "cut_input_normaliser", "tensorflow_normaliser"]


@dataclass(frozen=True)
class NormaliserSpec:
    """What the input normaliser computes: its window (odd), epsilon, and whether the input passes through too."""

    kernel: int
    eps: float
    keep_input: bool

    @classmethod
    def of_model(cls, model) -> NormaliserSpec | None:
        """The spec of ``model``'s :class:`~aestheticnet.models.input_norm.LocalContrastNorm`; None without one."""
        from aestheticnet.models.input_norm import LocalContrastNorm

        norm = next((m for m in model.modules() if isinstance(m, LocalContrastNorm)), None)
        return None if norm is None else cls(norm.kernel, float(norm.eps), norm.keep_input)


def cut_input_normaliser(model, spec: NormaliserSpec) -> bool:
    """Make the input of ``model``'s first convolution its graph input (NCHW, 3 or 6 channels as ``spec`` says),
    dropping the nodes that computed it from the image. False, and ``model`` unchanged, when those nodes are not a
    normaliser (no average pooling among them, or padding that belongs to the convolution)."""
    from onnx import helper

    from aestheticnet.export.onnx.graph import input_prefix_nodes, onnx_maps
    from aestheticnet.export.onnx.rewrites import prune_initializers

    graph = model.graph
    prefix = set(input_prefix_nodes(model))
    kinds = {n.op_type for n in graph.node if n.name in prefix}
    if "AveragePool" not in kinds or "Pad" in kinds or len(graph.input) != 1:
        return False
    first_conv = next(n for n in graph.node if n.op_type == "Conv")
    producer, _ = onnx_maps(graph)
    normalised = first_conv.input[0]
    if producer.get(normalised) is None or producer[normalised].name not in prefix:
        return False
    image = graph.input[0]
    dims = [d.dim_param or d.dim_value for d in image.type.tensor_type.shape.dim]
    dims[1] = 6 if spec.keep_input else 3
    kept = [n for n in graph.node if n.name not in prefix]
    del graph.node[:]
    graph.node.extend(kept)
    del graph.input[:]
    graph.input.append(helper.make_tensor_value_info(normalised, image.type.tensor_type.elem_type, dims))
    prune_initializers(model)
    return True


def _window_mean(tf, x, kernel: int):
    """The mean of every ``kernel`` x ``kernel`` window of NHWC ``x`` over its real pixels (module docstring)."""
    shape = tf.shape(x)
    n, h, w, c = shape[0], shape[1], shape[2], x.shape[-1]
    columns = tf.nn.avg_pool2d(tf.reshape(x, [n, h, 1, w * c]), (kernel, 1), 1, "SAME")  # along H
    rows = tf.reshape(tf.transpose(tf.reshape(columns, [n, h, w, c]), [0, 2, 1, 3]), [n, w, 1, h * c])
    rows = tf.nn.avg_pool2d(rows, (kernel, 1), 1, "SAME")  # along W
    return tf.transpose(tf.reshape(rows, [n, w, h, c]), [0, 2, 1, 3])


def tensorflow_normaliser(tf, spec: NormaliserSpec):
    """The normaliser on an NHWC float32 tensor, as TensorFlow ops (the model's function; the channels the model's
    ``torch.cat`` puts first come first here too)."""

    def normalise(x):
        centred = x - _window_mean(tf, x, spec.kernel)
        sigma = tf.sqrt(_window_mean(tf, centred * centred, spec.kernel) + spec.eps * spec.eps)
        normalised = centred / sigma
        return tf.concat([x, normalised], axis=-1) if spec.keep_input else normalised

    return normalise
