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


def test_fp16_keeps_the_input_normalisation_and_the_tail_float32(tmp_path):
    import onnx
    from onnx import TensorProto

    from aestheticnet.export.onnx.fp16 import to_fp16

    torch.manual_seed(0)
    model = create_model("aestheticnet_star", layers=3, init_channels=8, input_norm="mscn").eval()
    prepared, _ = prepare_for_export(model)
    fp32 = build_onnx(prepared, tmp_path / "m.onnx").path
    half = onnx.shape_inference.infer_shapes(onnx.load(str(to_fp16(fp32, tmp_path / "m.fp16.onnx"))))
    types = {v.name: v.type.tensor_type.elem_type for v in [*half.graph.value_info, *half.graph.output]}
    out_type = {n.op_type: types.get(n.output[0]) for n in half.graph.node}  # the last node of each type
    first: dict[str, int] = {}
    for n in half.graph.node:
        first.setdefault(n.op_type, types.get(n.output[0]))
    assert first["Sqrt"] == TensorProto.FLOAT and first["AveragePool"] == TensorProto.FLOAT, "normaliser in float32"
    convs = [types.get(n.output[0]) for n in half.graph.node if n.op_type == "Conv"]
    assert convs.count(TensorProto.FLOAT16) > 0.8 * len(convs), "the cells in fp16 (CBAM's gates are in the tail)"
    assert out_type["Gemm"] == TensorProto.FLOAT and out_type["Softmax"] == TensorProto.FLOAT, "tail in float32"
    session = ort.InferenceSession(str(tmp_path / "m.fp16.onnx"), providers=["CPUExecutionProvider"])
    x = np.random.default_rng(0).standard_normal((2, 3, 96, 128)).astype(np.float32)
    with torch.no_grad():
        ref = model(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(session.run(None, {"image": x})[0], ref, atol=2e-3)
