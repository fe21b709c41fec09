"""Every op the MIL evaluator knows, against PyTorch on random inputs: tiny programs built with coremltools' MIL
builder, covering the attributes our exports use (padding types, strides, dilation, groups, exclude-padding)."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

ct = pytest.importorskip("coremltools")
from coremltools.converters.mil import Builder as mb  # noqa: E402

from aestheticnet.runtime.mil import SUPPORTED_OPS, MilProgram, UnsupportedOpError  # noqa: E402

RNG = np.random.default_rng(0)
TESTED: set[str] = set()


def rand(*shape, dtype=np.float32) -> np.ndarray:
    return RNG.standard_normal(shape).astype(dtype)


def evaluate(build, *inputs: np.ndarray, opset=ct.target.iOS16) -> np.ndarray:
    """Build a one-function program from ``build(*input_vars)``, evaluate it, record the op types it used."""
    specs = [mb.TensorSpec(shape=x.shape, dtype=ct.converters.mil.mil.types.fp32) for x in inputs]
    program = mb.program(input_specs=specs, opset_version=opset)(build)
    evaluator = MilProgram("<builder program>", program=program)
    TESTED.update(evaluator.ops)
    names = list(program.functions["main"].inputs)
    (out,) = evaluator.run(dict(zip(names, inputs))).values()
    return out


def close(got, want, atol=1e-5):
    want = want.detach().numpy() if isinstance(want, torch.Tensor) else want
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, atol=atol, rtol=1e-5)


# (pad_type, pad, strides, dilations, groups, expected torch pad (left, right, top, bottom)); input 9x10, kernel 3
CONV_CASES = [
    ("valid", None, (1, 1), (1, 1), 1, (0, 0, 0, 0)),
    ("custom", (1, 1, 1, 1), (2, 2), (1, 1), 1, (1, 1, 1, 1)),
    ("custom", (2, 0, 1, 3), (1, 1), (1, 1), 1, (1, 3, 2, 0)),
    ("custom", (2, 2, 2, 2), (1, 1), (2, 2), 4, (2, 2, 2, 2)),  # dilated depthwise, as in dil_conv
    ("custom", (4, 4, 4, 4), (1, 1), (2, 2), 4, (4, 4, 4, 4)),  # dil_conv_5x5 pads with kernel 3 here
    ("custom", (1, 1, 1, 1), (2, 2), (1, 1), 2, (1, 1, 1, 1)),  # grouped, strided
    ("same", None, (2, 2), (1, 1), 1, (0, 1, 1, 1)),  # out ceil(9/2)=5, ceil(10/2)=5: H total 2, W total 1
    ("same_lower", None, (2, 2), (1, 1), 1, (1, 0, 1, 1)),
    ("same", None, (1, 1), (2, 2), 1, (2, 2, 2, 2)),
]


@pytest.mark.parametrize("pad_type,pad,strides,dilations,groups,torch_pad", CONV_CASES)
def test_conv(pad_type, pad, strides, dilations, groups, torch_pad):
    x, w, b = rand(2, 4, 9, 10), rand(8, 4 // groups, 3, 3), rand(8)
    kw = {"pad": np.array(pad, np.int32)} if pad is not None else {}
    got = evaluate(
        lambda v: mb.conv(
            x=v, weight=w, bias=b, pad_type=pad_type, strides=strides, dilations=dilations, groups=groups, **kw
        ),
        x,
    )
    want = F.conv2d(
        F.pad(torch.from_numpy(x), torch_pad),
        torch.from_numpy(w),
        torch.from_numpy(b),
        stride=strides,
        dilation=dilations,
        groups=groups,
    )
    close(got, want)


def test_conv_in_float16_is_computed_in_float16():
    x, w = rand(1, 4, 8, 8), rand(4, 1, 3, 3)

    def build(v):
        conv = mb.conv(
            x=mb.cast(x=v, dtype="fp16"), weight=w.astype(np.float16), pad_type="custom", pad=[1, 1, 1, 1], groups=4
        )
        return mb.cast(x=conv, dtype="fp32")

    got = evaluate(build, x)
    half = F.conv2d(torch.from_numpy(x).half(), torch.from_numpy(w).half(), padding=1, groups=4).float()
    close(got, half, atol=0)
    exact = F.conv2d(torch.from_numpy(x), torch.from_numpy(w), padding=1, groups=4)
    assert not np.array_equal(got, exact.numpy())  # float16 rounding is there, not a float32 result


# (op, pad_type, pad, exclude padding, ceil_mode, torch pad (l, r, t, b) or None for torch's own padding)
POOL_CASES = [
    ("max", "custom", (1, 1, 1, 1), False, False, None),
    ("avg", "custom", (1, 1, 1, 1), False, False, None),
    ("avg", "custom", (1, 1, 1, 1), True, False, None),
    ("avg", "valid", None, False, True, (0, 0, 0, 0)),
    ("max", "same", None, False, False, (0, 1, 1, 1)),
    ("avg", "custom", (0, 2, 1, 0), False, False, (1, 0, 0, 2)),
    ("avg", "custom", (0, 2, 1, 0), True, False, (1, 0, 0, 2)),
    ("max", "custom", (0, 2, 1, 0), False, False, (1, 0, 0, 2)),
]


def _torch_pool(kind, x, tpad, exclude, ceil):
    if tpad is None:
        if kind == "max":
            return F.max_pool2d(x, 3, 2, 1)
        return F.avg_pool2d(x, 3, 2, 1, count_include_pad=not exclude)
    fill = float("-inf") if kind == "max" else 0.0
    padded = F.pad(x, tpad, value=fill)
    if kind == "max":
        return F.max_pool2d(padded, 3, 2, ceil_mode=ceil)
    total = F.avg_pool2d(padded, 3, 2, ceil_mode=ceil) * 9
    count = F.avg_pool2d(F.pad(torch.ones_like(x), tpad), 3, 2, ceil_mode=ceil) * 9 if exclude else 9
    return total / count


@pytest.mark.parametrize("kind,pad_type,pad,exclude,ceil,tpad", POOL_CASES)
def test_pooling(kind, pad_type, pad, exclude, ceil, tpad):
    x = rand(2, 3, 9, 10)
    kw = {"pad": np.array(pad, np.int32)} if pad is not None else {}
    if kind == "avg":
        kw["exclude_padding_from_average"] = exclude
    op = mb.max_pool if kind == "max" else mb.avg_pool
    got = evaluate(lambda v: op(x=v, kernel_sizes=[3, 3], strides=[2, 2], pad_type=pad_type, ceil_mode=ceil, **kw), x)
    close(got, _torch_pool(kind, torch.from_numpy(x), tpad, exclude, ceil))


@pytest.mark.parametrize("mode", ["constant", "reflect", "replicate"])
def test_pad(mode):
    x = rand(1, 2, 5, 6)
    got = evaluate(lambda v: mb.pad(x=v, pad=np.array([1, 2, 0, 3], np.int32), mode=mode, constant_val=0.5), x)
    kw = {"value": 0.5} if mode == "constant" else {}
    close(got, F.pad(torch.from_numpy(x), (0, 3, 1, 2), mode=mode, **kw))


def test_elementwise_reductions_and_head():
    x, y, w, b = rand(2, 6, 4, 5), rand(1, 6, 1, 1), rand(3, 6), rand(3)
    tx, ty = torch.from_numpy(x), torch.from_numpy(y)
    cases = [
        (lambda a, c: mb.relu(x=a), torch.relu(tx)),
        (lambda a, c: mb.sigmoid(x=a), torch.sigmoid(tx)),
        (lambda a, c: mb.tanh(x=a), torch.tanh(tx)),
        (lambda a, c: mb.sqrt(x=mb.add(x=mb.mul(x=a, y=a), y=mb.mul(x=c, y=c))), torch.sqrt(tx * tx + ty * ty)),
        (lambda a, c: mb.add(x=a, y=c), tx + ty),
        (lambda a, c: mb.sub(x=a, y=c), tx - ty),
        (lambda a, c: mb.mul(x=a, y=c), tx * ty),
        (lambda a, c: mb.real_div(x=a, y=mb.add(x=c, y=3.0)), tx / (ty + 3.0)),
        (lambda a, c: mb.maximum(x=a, y=c), torch.maximum(tx, ty)),
        (lambda a, c: mb.minimum(x=a, y=c), torch.minimum(tx, ty)),
        (lambda a, c: mb.identity(x=a), tx),
        (lambda a, c: mb.reduce_mean(x=a, axes=[2, 3], keep_dims=True), tx.mean((2, 3), keepdim=True)),
        (lambda a, c: mb.reduce_max(x=a, axes=[1], keep_dims=False), tx.amax(1)),
        (lambda a, c: mb.reduce_mean(x=a, axes=[-1], keep_dims=False), tx.mean(-1)),
        (
            lambda a, c: mb.softmax(x=mb.linear(x=mb.reduce_mean(x=a, axes=[2, 3]), weight=w, bias=b), axis=1),
            torch.softmax(F.linear(tx.mean((2, 3)), torch.from_numpy(w), torch.from_numpy(b)), 1),
        ),
        (lambda a, c: mb.concat(values=[a, mb.mul(x=a, y=2.0)], axis=1), torch.cat([tx, tx * 2], 1)),
        (
            lambda a, c: mb.concat(values=[a, mb.mul(x=a, y=2.0)], axis=1, interleave=True),
            torch.stack([tx, tx * 2], 2).flatten(1, 2),
        ),
    ]
    for build, want in cases:
        close(evaluate(build, x, y), want)


def test_slice_fill_and_cast():
    x = rand(2, 6, 4, 5)
    tx = torch.from_numpy(x)
    got = evaluate(
        lambda a: mb.slice_by_index(
            x=a, begin=[0, 1, 0, 1], end=[1, 5, 0, 4], stride=[1, 2, 1, 1], end_mask=[False, False, True, False]
        ),
        x,
    )
    close(got, tx[0:1, 1:5:2, :, 1:4])
    got = evaluate(
        lambda a: mb.slice_by_index(
            x=a,
            begin=[1, 0, 0, 0],
            end=[2, 1, 0, 0],
            begin_mask=[False] * 4,
            end_mask=[False, False, True, True],
            squeeze_mask=[True, False, False, False],
        ),
        x,
    )
    close(got, tx[1, 0:1])
    close(evaluate(lambda a: mb.fill_like(ref_tensor=a, value=1.5), x), torch.full_like(tx, 1.5))
    got = evaluate(lambda a: mb.cast(x=mb.cast(x=a, dtype="fp16"), dtype="fp32"), x)
    close(got, tx.half().float(), atol=0)


def test_weight_decompression_ops():
    q = RNG.integers(-128, 127, (4, 3, 3, 3)).astype(np.int8)
    zp, scale = RNG.integers(-3, 3, 4).astype(np.int8), RNG.random(4).astype(np.float32) + 0.01
    dense = (q.astype(np.float32) - zp[:, None, None, None]) * scale[:, None, None, None]
    x = rand(1, 3, 6, 6)

    def conv_with(weight_op):
        return lambda v: mb.conv(x=v, weight=weight_op(), pad_type="valid")

    want = F.conv2d(torch.from_numpy(x), torch.from_numpy(dense))
    close(
        evaluate(
            conv_with(lambda: mb.constexpr_affine_dequantize(quantized_data=q, zero_point=zp, scale=scale, axis=0)), x
        ),
        want,
    )
    offset = zp.astype(np.int8).reshape(4, 1, 1, 1)
    close(
        evaluate(
            conv_with(
                lambda: mb.constexpr_blockwise_shift_scale(data=q, scale=scale.reshape(4, 1, 1, 1), offset=offset)
            ),
            x,
            opset=ct.target.iOS18,
        ),
        want,
    )
    lut = rand(16)
    idx = RNG.integers(0, 16, (4, 3, 3, 3)).astype(np.uint8)
    want = F.conv2d(torch.from_numpy(x), torch.from_numpy(lut[idx]))
    packed = np.packbits(((idx.reshape(-1, 1) >> np.arange(4)) & 1).astype(np.uint8).reshape(-1), bitorder="little")
    close(
        evaluate(
            conv_with(lambda: mb.constexpr_lut_to_dense(lut=lut, indices=packed, shape=np.array(idx.shape, np.uint32))),
            x,
        ),
        want,
    )
    ios18_idx = idx.astype(ct.converters.mil.mil.types.np_uint4_dtype)
    close(
        evaluate(
            conv_with(lambda: mb.constexpr_lut_to_dense(indices=ios18_idx, lut=lut.reshape(1, 1, 1, 1, 16, 1))),
            x,
            opset=ct.target.iOS18,
        ),
        want,
    )


def test_an_unknown_op_is_named_with_the_file():
    program = mb.program(input_specs=[mb.TensorSpec(shape=(1, 3))])(lambda v: mb.erf(x=v))
    with pytest.raises(UnsupportedOpError, match=r"<builder program>: the MIL evaluator has no kernel for op 'erf'"):
        MilProgram("<builder program>", program=program)


def test_every_supported_op_is_tested():
    """Runs last in this file: each op the evaluator claims was evaluated by a test above."""
    assert set(SUPPORTED_OPS) - TESTED == set()
