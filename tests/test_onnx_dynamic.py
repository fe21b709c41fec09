"""AestheticNet* through the dynamo ONNX exporter with dynamic batch, height and width."""

import numpy as np
import pytest
import torch

ort = pytest.importorskip("onnxruntime")

from aestheticnet.artifacts import INPUT_NAME, OUTPUT_NAME  # noqa: E402
from aestheticnet.export.onnx.build import export_onnx  # noqa: E402
from aestheticnet.models import create_model  # noqa: E402


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    torch.manual_seed(0)
    # 8 cells: both reductions and two dilated last-stage normal cells, small enough for CI
    model = create_model("aestheticnet_star", layers=8, init_channels=8).eval()
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.2, 0.2)
            m.running_var.uniform_(0.5, 1.5)
    path = export_onnx(model, tmp_path_factory.mktemp("onnx") / "star.onnx", example_size=(224, 224))
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return model, session


def test_inputs_and_outputs_are_dynamic(exported):
    _, session = exported
    (inp,), (out,) = session.get_inputs(), session.get_outputs()
    assert inp.name == INPUT_NAME and out.name == OUTPUT_NAME
    assert isinstance(inp.shape[0], str) and isinstance(inp.shape[2], str) and isinstance(inp.shape[3], str)
    assert inp.shape[1] == 3 and out.shape[1] == 10


@pytest.mark.parametrize("shape", [(1, 3, 320, 256), (3, 3, 512, 384), (1, 3, 96, 640), (3, 3, 224, 224)])
def test_onnxruntime_matches_pytorch_at_other_sizes(exported, shape):
    model, session = exported
    x = torch.randn(*shape, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        ref = model(x).numpy()
    got = session.run([OUTPUT_NAME], {INPUT_NAME: x.numpy()})[0]
    assert got.shape == ref.shape
    assert np.abs(got - ref).max() <= 1e-5
