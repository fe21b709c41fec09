"""Local contrast normalisation in front of the stem: values, invariances, checkpoint and ONNX export."""

import numpy as np
import pytest
import torch

from aestheticnet.models import create_model, load, save
from aestheticnet.models.input_norm import LocalContrastNorm


def reference_lcn(x: np.ndarray, k: int = 7, eps: float = 1.0) -> np.ndarray:
    """Direct loops over the window's real pixels only: each pixel minus its window's mean, divided by
    sqrt(window mean of those centred values squared + eps^2)."""
    n, c, h, w = x.shape
    r = k // 2

    def window(a, i, j):
        return a[:, :, max(0, i - r) : i + r + 1, max(0, j - r) : j + r + 1].reshape(n, c, -1)

    centred = np.empty_like(x)
    for i in range(h):
        for j in range(w):
            centred[:, :, i, j] = x[:, :, i, j] - window(x, i, j).mean(-1)
    out = np.empty_like(x)
    for i in range(h):
        for j in range(w):
            out[:, :, i, j] = centred[:, :, i, j] / np.sqrt((window(centred, i, j) ** 2).mean(-1) + eps**2)
    return out


def test_matches_a_direct_computation_including_borders():
    x = torch.randn(2, 3, 11, 9, generator=torch.Generator().manual_seed(0))
    y = LocalContrastNorm()(x)
    assert y.shape == (2, 6, 11, 9)
    assert torch.equal(y[:, :3], x)  # the original channels pass through
    np.testing.assert_allclose(y[:, 3:].numpy(), reference_lcn(x.numpy()), atol=1e-4)


@pytest.mark.parametrize("form", ["quotient", "wide"])
@pytest.mark.parametrize("size", [(11, 9), (5, 12), (32, 64)])
def test_every_form_computes_the_same_function(form, size):
    # The wide form is what ExecuTorch runs; borders (windows overhanging one or two sides) and images smaller
    # than the window are where the forms could part.
    x = 3 * torch.randn(2, 3, *size, generator=torch.Generator().manual_seed(3))
    norm = LocalContrastNorm(keep_input=False)
    norm.form = form
    np.testing.assert_allclose(norm(x).numpy(), reference_lcn(x.numpy()), atol=1e-5)


def test_removes_local_brightness_and_contrast():
    x = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    lcn = LocalContrastNorm(eps=1e-6)
    a = lcn(x)[:, 3:]
    b = lcn(3.0 * x + 0.7)[:, 3:]  # a different exposure and contrast of the same content
    torch.testing.assert_close(a, b, atol=1e-3, rtol=1e-3)
    assert LocalContrastNorm()(torch.full((1, 3, 8, 8), 0.4))[:, 3:].abs().max() < 1e-4  # flat image: nothing left


def test_float32_stays_close_to_float64_on_nearly_flat_regions():
    # A bright, nearly flat patch (sky, a wall): E[x^2] - mu^2 there is float32 rounding noise, which different
    # runtimes round differently; the centred form keeps float32 near the exact value.
    g = torch.Generator().manual_seed(2)
    x = 2.2 + 1e-3 * torch.randn(1, 3, 32, 32, generator=g, dtype=torch.float64)
    norm = LocalContrastNorm(keep_input=False)
    exact = norm(x)
    single = norm(x.float()).double()
    assert (single - exact).abs().max() < 1e-4


def test_option_validation_and_checkpoint_round_trip(tmp_path):
    with pytest.raises(ValueError, match="input_norm='bogus'"):
        create_model("aestheticnet_star", layers=3, init_channels=4, input_norm="bogus")
    torch.manual_seed(0)
    model = create_model("aestheticnet_star", layers=3, init_channels=4, input_norm="lcn").eval()
    assert model.stem0[0].in_channels == 6
    x = torch.randn(2, 3, 64, 96)
    again = load(save(model, tmp_path / "m.safetensors"))
    assert again.config.input_norm == "lcn"
    torch.testing.assert_close(again(x), model(x), atol=0, rtol=0)


def test_onnx_export_with_dynamic_sizes_matches_pytorch(tmp_path):
    ort = pytest.importorskip("onnxruntime")
    import onnx

    from aestheticnet.export.onnx.build import export_onnx
    from aestheticnet.export.onnx.graph import input_prefix_nodes

    torch.manual_seed(0)
    model = create_model("aestheticnet_star", layers=3, init_channels=4, input_norm="lcn").eval()
    path = export_onnx(model, tmp_path / "m.onnx", example_size=(64, 64))
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for shape in [(1, 3, 96, 128), (3, 3, 64, 160)]:
        x = torch.randn(*shape)
        out = session.run(None, {session.get_inputs()[0].name: x.numpy()})[0]
        np.testing.assert_allclose(out, model(x).detach().numpy(), atol=1e-5)
    # int8 keeps the normalisation float: the nodes between the input and the first convolution
    graph = onnx.load(str(path)).graph
    prefix = set(input_prefix_nodes(onnx.load(str(path))))
    ops = sorted({n.op_type for n in graph.node if n.name in prefix})
    assert {"AveragePool", "Sqrt", "Div"} <= set(ops) and "Conv" not in ops
    plain = export_onnx(
        create_model("aestheticnet_star", layers=3, init_channels=4).eval(), tmp_path / "p.onnx", example_size=(64, 64)
    )
    assert input_prefix_nodes(onnx.load(str(plain))) == []
