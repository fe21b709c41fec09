"""Torch kernels for the MIL operations our Core ML exports contain, one function per op type.

Each kernel takes the op's inputs by their MIL names (tensors for computed values; numpy values, python scalars or
strings for constants) and returns one tensor. A kernel computes in the dtype of its inputs: a float16 program
stays in float16 (torch's CPU kernels round every op's result to float16, as a float16 Core ML program does).
``constexpr_*`` ops decompress weights once, when the program is loaded.

MIL semantics followed here: ``pad`` lists (begin, end) per spatial dim in the op's order (top, bottom, left,
right for 2-D); ``pad_type`` ``same`` puts the odd padding pixel at the end, ``same_lower`` at the start;
``custom`` takes ``pad`` as given and ``valid`` pads nothing.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F

__all__ = ["CONSTEXPR_KERNELS", "KERNELS", "MIL_DTYPES"]

# MIL dtype names (``cast``) -> torch dtypes.
MIL_DTYPES = {
    "fp16": torch.float16,
    "fp32": torch.float32,
    "fp64": torch.float64,
    "int8": torch.int8,
    "uint8": torch.uint8,
    "int16": torch.int16,
    "int32": torch.int32,
    "int64": torch.int64,
    "bool": torch.bool,
}


def _tensor(value, like: torch.Tensor | None = None) -> torch.Tensor:
    """A constant as a tensor (numpy arrays are converted when the program is loaded; scalars here)."""
    if isinstance(value, torch.Tensor):
        return value
    t = torch.as_tensor(np.asarray(value))
    return t.to(like.dtype) if like is not None and t.is_floating_point() else t


def _ints(value) -> list[int]:
    return [int(v) for v in np.asarray(value).reshape(-1)]


def _spatial_pads(x, pad_type: str, pad, kernel: list[int], strides: list[int], dilations: list[int]) -> list[int]:
    """(begin, end) for each spatial dim, in dim order."""
    dims = len(kernel)
    if pad_type == "valid":
        return [0] * (2 * dims)
    if pad_type == "custom":
        return _ints(pad)
    if pad_type not in ("same", "same_lower"):
        raise ValueError(f"pad_type {pad_type!r} is not one of valid, same, same_lower, custom")
    pads = []
    for size, k, s, d in zip(x.shape[-dims:], kernel, strides, dilations):
        total = max((math.ceil(size / s) - 1) * s + (k - 1) * d + 1 - size, 0)
        small, large = total // 2, total - total // 2
        pads += [large, small] if pad_type == "same_lower" else [small, large]
    return pads


def _torch_pad_order(pads: list[int]) -> list[int]:
    """MIL's (begin, end) from the first padded dim on -> torch's (begin, end) from the last dim back."""
    pairs = [pads[i : i + 2] for i in range(0, len(pads), 2)]
    return [p for pair in reversed(pairs) for p in pair]


def _symmetric(pads: list[int]) -> list[int] | None:
    begin, end = pads[0::2], pads[1::2]
    return begin if begin == end else None


def conv(x, weight, bias=None, strides=None, pad_type="valid", pad=None, dilations=None, groups=1):
    weight = _tensor(weight, x)
    dims = weight.dim() - 2
    strides = _ints(strides) if strides is not None else [1] * dims
    dilations = _ints(dilations) if dilations is not None else [1] * dims
    pads = _spatial_pads(x, str(pad_type), pad, list(weight.shape[2:]), strides, dilations)
    same = _symmetric(pads)
    if same is None:  # uneven padding: pad first, then convolve without
        x, same = F.pad(x, _torch_pad_order(pads)), [0] * dims
    fn = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}[dims]
    b = None if bias is None else _tensor(bias, x)
    return fn(x, weight, b, stride=strides, padding=same, dilation=dilations, groups=int(groups))


def _pool(x, kernel_sizes, strides, pad_type, pad, ceil_mode):
    kernel, stride = _ints(kernel_sizes), _ints(strides)
    pads = _spatial_pads(x, str(pad_type), pad, kernel, stride, [1] * len(kernel))
    return kernel, stride, pads, bool(ceil_mode)


def max_pool(x, kernel_sizes, strides, pad_type="valid", pad=None, ceil_mode=False):
    kernel, stride, pads, ceil = _pool(x, kernel_sizes, strides, pad_type, pad, ceil_mode)
    same = _symmetric(pads)
    if same is None or any(p * 2 > k for p, k in zip(same, kernel)):  # torch's own padding covers half a kernel
        x, same = F.pad(x, _torch_pad_order(pads), value=float("-inf")), [0] * len(kernel)
    return F.max_pool2d(x, kernel, stride, same, ceil_mode=ceil)


def avg_pool(x, kernel_sizes, strides, pad_type="valid", pad=None, exclude_padding_from_average=False, ceil_mode=False):
    kernel, stride, pads, ceil = _pool(x, kernel_sizes, strides, pad_type, pad, ceil_mode)
    exclude = bool(exclude_padding_from_average)
    same = _symmetric(pads)
    if same is not None and all(p * 2 <= k for p, k in zip(same, kernel)):
        return F.avg_pool2d(x, kernel, stride, same, ceil_mode=ceil, count_include_pad=not exclude)
    padded = F.pad(x, _torch_pad_order(pads))
    total = F.avg_pool2d(padded, kernel, stride, 0, ceil_mode=ceil) * math.prod(kernel)
    if not exclude:
        return total / math.prod(kernel)
    ones = F.pad(torch.ones_like(x[:1, :1]), _torch_pad_order(pads))
    return total / (F.avg_pool2d(ones, kernel, stride, 0, ceil_mode=ceil) * math.prod(kernel))


def pad(x, pad, mode="constant", constant_val=0.0):
    pads = _torch_pad_order(_ints(pad))
    mode = str(mode)
    if mode == "constant":
        return F.pad(x, pads, value=float(np.asarray(constant_val)))
    if mode not in ("reflect", "replicate"):
        raise ValueError(f"pad mode {mode!r} is not one of constant, reflect, replicate")
    return F.pad(x, pads, mode=mode)


def _axes(x, axes) -> list[int]:
    return list(range(x.dim())) if axes is None else [a % x.dim() for a in _ints(axes)]


def reduce_mean(x, axes=None, keep_dims=False):
    return torch.mean(x, dim=_axes(x, axes), keepdim=bool(keep_dims))


def reduce_max(x, axes=None, keep_dims=False):
    return torch.amax(x, dim=_axes(x, axes), keepdim=bool(keep_dims))


def concat(values, axis, interleave=False):
    axis = int(axis) % values[0].dim()
    if not bool(interleave):
        return torch.cat(list(values), dim=axis)
    stacked = torch.stack(list(values), dim=axis + 1)  # a0 b0 a1 b1 ... along ``axis``
    return stacked.flatten(axis, axis + 1)


def slice_by_index(x, begin, end, stride=None, begin_mask=None, end_mask=None, squeeze_mask=None):
    rank = x.dim()
    begin, end = _ints(begin), _ints(end)
    stride = _ints(stride) if stride is not None else [1] * rank
    bmask = [bool(v) for v in np.asarray(begin_mask).reshape(-1)] if begin_mask is not None else [False] * rank
    emask = [bool(v) for v in np.asarray(end_mask).reshape(-1)] if end_mask is not None else [False] * rank
    index = tuple(
        slice(None if bm else b, None if em else e, s) for b, e, s, bm, em in zip(begin, end, stride, bmask, emask)
    )
    if any(s < 0 for s in stride):  # torch slices forward only
        raise ValueError(f"slice_by_index with negative strides {stride} is not supported")
    out = x[index]
    if squeeze_mask is not None:
        dims = [i for i, v in enumerate(np.asarray(squeeze_mask).reshape(-1)) if v]
        out = out.squeeze(dims) if dims else out
    return out


def fill_like(ref_tensor, value=0.0):
    v = _tensor(value)
    return torch.full(ref_tensor.shape, v.item(), dtype=v.dtype)


def cast(x, dtype):
    name = str(dtype)
    if name not in MIL_DTYPES:
        raise ValueError(f"cast to {name!r}: expected one of {', '.join(MIL_DTYPES)}")
    return x.to(MIL_DTYPES[name])


def linear(x, weight, bias=None):
    return F.linear(x, _tensor(weight, x), None if bias is None else _tensor(bias, x))


def softmax(x, axis=-1):
    return torch.softmax(x, dim=int(axis))


def _binary(fn: Callable) -> Callable:
    def kernel(x, y):
        a = _tensor(x, y if isinstance(y, torch.Tensor) else None)
        b = _tensor(y, a)
        return fn(a, b)

    return kernel


def _unary(fn: Callable) -> Callable:
    return lambda x: fn(x)


KERNELS: dict[str, Callable] = {
    "add": _binary(torch.add),
    "sub": _binary(torch.sub),
    "mul": _binary(torch.mul),
    "real_div": _binary(torch.div),
    "maximum": _binary(torch.maximum),
    "minimum": _binary(torch.minimum),
    "relu": _unary(torch.relu),
    "sigmoid": _unary(torch.sigmoid),
    "tanh": _unary(torch.tanh),
    "sqrt": _unary(torch.sqrt),
    "identity": _unary(lambda x: x),
    "conv": conv,
    "max_pool": max_pool,
    "avg_pool": avg_pool,
    "pad": pad,
    "reduce_mean": reduce_mean,
    "reduce_max": reduce_max,
    "concat": concat,
    "slice_by_index": slice_by_index,
    "fill_like": fill_like,
    "cast": cast,
    "linear": linear,
    "softmax": softmax,
}


# ---------------------------------------------------------------------------------------- weight decompression


def _along(values, axis: int, rank: int) -> torch.Tensor:
    """Per-channel parameters of ``axis`` shaped to broadcast against a tensor of ``rank``."""
    t = _tensor(values).to(torch.float32)
    if t.dim() == 0:
        return t
    shape = [1] * rank
    shape[axis % rank] = t.numel()
    return t.reshape(shape)


def constexpr_affine_dequantize(quantized_data, zero_point, scale, axis=0):
    q = _tensor(quantized_data)
    out_dtype = _tensor(scale).dtype
    axis = int(axis)
    values = (q.to(torch.float32) - _along(zero_point, axis, q.dim())) * _along(scale, axis, q.dim())
    return values.to(out_dtype)


def _blockwise(param, shape) -> torch.Tensor:
    """A scale or offset with one value per block, repeated up to the full ``shape`` (MIL's block layout)."""
    t = _tensor(param).to(torch.float32)
    for dim, (full, blocks) in enumerate(zip(shape, t.shape)):
        if full % blocks:
            raise ValueError(f"block parameter of shape {tuple(t.shape)} does not divide data of shape {shape}")
        t = t.repeat_interleave(full // blocks, dim=dim)
    return t


def constexpr_blockwise_shift_scale(data, scale, offset=None):
    d = _tensor(data)
    out_dtype = _tensor(scale).dtype
    values = d.to(torch.float32)
    if offset is not None:
        values = values - _blockwise(offset, d.shape)
    return (values * _blockwise(scale, d.shape)).to(out_dtype)


def _unpack_indices(packed, entries: int, count: int) -> np.ndarray:
    """iOS 16 palettes: ``log2(entries)``-bit indices packed into bytes, lowest bit first."""
    nbits = int(entries).bit_length() - 1
    bits = np.unpackbits(np.asarray(packed, dtype=np.uint8), bitorder="little")[: count * nbits]
    return (bits.reshape(count, nbits).astype(np.int64) << np.arange(nbits)).sum(axis=1)


def constexpr_lut_to_dense(indices, lut, shape=None, vector_axis=None):
    """Palettised weights. iOS 16 form: one 1-D ``lut`` and packed ``indices`` of a given ``shape``. iOS 18 form:
    ``lut`` has the rank of ``indices`` plus (palette, vector) dims, one palette per block, scalar entries."""
    table = _tensor(lut)
    if shape is not None:
        dims = _ints(shape)
        flat = _unpack_indices(indices, table.numel(), math.prod(dims))
        return table[torch.as_tensor(flat)].reshape(dims)
    idx = torch.as_tensor(np.asarray(indices).astype(np.int64))
    if table.shape[-1] != 1 or vector_axis is not None:
        raise ValueError("constexpr_lut_to_dense with vector palettes (vector_axis) is not supported")
    palette = table[..., 0]  # blocks..., entries
    picks = []
    for dim, (full, blocks) in enumerate(zip(idx.shape, palette.shape[:-1])):
        block = torch.arange(full).div(full // blocks, rounding_mode="floor")
        picks.append(block.reshape([full if d == dim else 1 for d in range(idx.dim())]))
    return palette[(*picks, idx)]


CONSTEXPR_KERNELS: dict[str, Callable] = {
    "constexpr_affine_dequantize": constexpr_affine_dequantize,
    "constexpr_blockwise_shift_scale": constexpr_blockwise_shift_scale,
    "constexpr_lut_to_dense": constexpr_lut_to_dense,
}
