import pytest
import torch
import torch.nn.functional as F
from torch import nn

from aestheticnet.nas.operations import OPS, PRIMITIVES, AvgPool3x3, FactorizedReduce, SepConv, make_op


def reference_factorized_reduce(fr: FactorizedReduce, x: torch.Tensor) -> torch.Tensor:
    """The DARTS form, with the slice, computed with the module's own weights."""
    x = F.relu(x)
    out = torch.cat([fr.conv_1(x), F.conv2d(x[:, :, 1:, 1:], fr.conv_2.weight, stride=2)], dim=1)
    return fr.bn(out)


@pytest.mark.parametrize("size", [(8, 8), (32, 64), (14, 6)])
def test_factorized_reduce_equals_sliced_reference(size):
    torch.manual_seed(0)
    fr = FactorizedReduce(5, 6).eval()
    nn.init.normal_(fr.bn.running_mean)
    x = torch.randn(2, 5, *size)
    torch.testing.assert_close(fr(x), reference_factorized_reduce(fr, x), rtol=0, atol=1e-6)


def test_factorized_reduce_keeps_reference_parameter_count():
    fr = FactorizedReduce(7, 10)
    assert fr.conv_2.weight.shape == (5, 7, 1, 1)
    assert sum(p.numel() for p in fr.parameters()) == 2 * 7 * 5 + 2 * 10


def test_factorized_reduce_rejects_odd_channels():
    with pytest.raises(ValueError, match="even"):
        FactorizedReduce(4, 5)


@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("size", [(7, 9), (16, 16), (32, 96), (1, 1)])
def test_avg_pool_matches_count_include_pad_false(stride, size):
    x = torch.randn(2, 4, *size)
    ref = nn.AvgPool2d(3, stride=stride, padding=1, count_include_pad=False)(x)
    torch.testing.assert_close(AvgPool3x3(stride)(x), ref, rtol=0, atol=1e-6)


def test_ops_table_is_the_primitive_list():
    assert tuple(OPS) == PRIMITIVES
    assert len(PRIMITIVES) == 8


@pytest.mark.parametrize("name", PRIMITIVES)
@pytest.mark.parametrize("stride", [1, 2])
def test_every_op_keeps_channels_and_applies_stride(name, stride):
    op = make_op(name, 8, stride).eval()
    y = op(torch.randn(2, 8, 16, 24))
    assert y.shape == (2, 8, 16 // stride, 24 // stride)


def test_make_op_unknown_name():
    with pytest.raises(ValueError, match="sep_conv_7x7.*valid operations"):
        make_op("sep_conv_7x7", 8, 1)


@pytest.mark.parametrize("name", ["sep_conv_3x3", "sep_conv_5x5"])
def test_dilated_sep_conv_same_parameters_wider_field(name):
    plain, dilated = make_op(name, 8, 1), make_op(name, 8, 1, dilation=2)
    assert isinstance(dilated, SepConv)
    assert sum(p.numel() for p in plain.parameters()) == sum(p.numel() for p in dilated.parameters())
    assert dilated.op[1].dilation == (2, 2)
    # receptive field: a single impulse spreads further through the dilated op
    dilated.load_state_dict(plain.state_dict())
    for m in (plain, dilated):
        for p in m.parameters():
            if p.dim() > 1:  # conv kernels only: BN keeps zero bias, so zeros stay zero
                nn.init.constant_(p, 0.1)
    x = torch.zeros(1, 8, 33, 33)
    x[..., 16, 16] = 1.0

    def reach(y):  # width of the span of touched columns
        cols = (y.abs().sum(1)[0] > 1e-9).any(0).nonzero().flatten()
        return int(cols.max() - cols.min() + 1)

    assert reach(dilated.eval()(x)) > reach(plain.eval()(x))
