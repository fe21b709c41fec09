"""The TorchScript exporter is a fallback only, and the manifest says when it ran."""

import numpy as np
import pytest
import torch

from aestheticnet.export.onnx import build as onnx_export
from aestheticnet.export.onnx.build import build_onnx
from aestheticnet.export.options import OnnxExporter
from aestheticnet.export.prepare import prepare_for_export
from aestheticnet.models import create_model

ort = pytest.importorskip("onnxruntime")


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    model = create_model("aestheticnet_star", layers=3, init_channels=4).eval()
    prepared, _ = prepare_for_export(model)
    return model, prepared


def test_torchscript_fallback_runs_only_when_dynamo_fails_and_is_recorded(tiny, tmp_path, monkeypatch):
    model, prepared = tiny

    def broken(*args, **kwargs):
        raise RuntimeError("simulated dynamo failure")

    monkeypatch.setattr(onnx_export, "_dynamo", broken)
    result = build_onnx(prepared, tmp_path / "m.onnx")
    assert result.exporter == "torchscript"
    assert "dynamo failed: RuntimeError: simulated dynamo failure" in result.fallback_reason
    info = result.exporter_info()
    assert info["exporter"] == "torch.onnx (torchscript)" and info["fallback_reason"] == result.fallback_reason
    assert all(isinstance(result.dims["input"][k], str) for k in (0, 2, 3))
    session = ort.InferenceSession(str(result.path), providers=["CPUExecutionProvider"])
    x = np.random.default_rng(0).standard_normal((3, 3, 96, 160)).astype(np.float32)
    with torch.no_grad():
        ref = model(torch.from_numpy(x)).numpy()
    assert np.abs(session.run(None, {"image": x})[0] - ref).max() < 1e-5
    with pytest.raises(Exception, match="dynamo ONNX exporter failed"):
        build_onnx(prepared, tmp_path / "n.onnx", exporter=OnnxExporter.DYNAMO)
    assert not (tmp_path / "n.onnx").exists()


def test_old_opsets_are_refused(tiny, tmp_path):
    with pytest.raises(ValueError, match="opset 17 is too old"):
        build_onnx(tiny[1], tmp_path / "m.onnx", opset=17)
