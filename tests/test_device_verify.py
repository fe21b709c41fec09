"""`verify` with outputs from a device (aestheticnet.bench.verify_on_device), here through the local device runner."""

import platform

import numpy as np
import pytest

from aestheticnet.artifacts import Format, Precision
from aestheticnet.bench import BenchError, LocalDevice, verify_on_device
from aestheticnet.export.verify import VerifyOptions, verify_artifact
from aestheticnet.sizes import Shape

pytestmark = pytest.mark.slow

SHAPES = (Shape(96, 128), Shape(128, 96, batch=2))


@pytest.fixture(scope="module")
def onnx_fp32(tmp_path_factory, small_checkpoint):
    from aestheticnet.export import ExportOptions, export_checkpoint

    out = tmp_path_factory.mktemp("device_verify")
    report = export_checkpoint(small_checkpoint, [Format.ONNX], [Precision.FP32], out, ExportOptions(), log=None)
    return report.artifacts[0].path


class ShiftedDevice(LocalDevice):
    """The local runner's outputs, moved by ``shift``: a device whose kernels compute something else."""

    def __init__(self, shift: float):
        super().__init__()
        self.shift = shift
        self.inputs_sent = 0

    def run(self, model, jobs, progress=None, files=None):
        results = super().run(model, jobs, progress, files)
        for r in results:
            self.inputs_sent += len(r.get("outputs", {}))
            r["outputs"] = {k: (np.asarray(v) + self.shift).tolist() for k, v in r.get("outputs", {}).items()}
        return results


def test_device_outputs_are_the_ones_compared(onnx_fp32, small_checkpoint, tiny_synth):
    options = VerifyOptions(shapes=SHAPES, data=tiny_synth, samples=6)
    same = verify_on_device(onnx_fp32, small_checkpoint, LocalDevice(), options)
    here = verify_artifact(onnx_fp32, small_checkpoint, options)
    assert same.passed and same.device["machine"] == platform.machine() and same.device["runtime"] == "onnxruntime"
    assert [s["max_abs"] for s in same.shapes] == [s["max_abs"] for s in here.shapes]
    assert same.real["srocc"] == here.real["srocc"]

    device = ShiftedDevice(0.05)
    moved = verify_on_device(onnx_fp32, small_checkpoint, device, options)
    # one input per shape and per real image, those equal to another sent once
    assert 6 <= device.inputs_sent <= len(SHAPES) + 6
    assert moved.device["passed_on_this_machine"] and not moved.passed
    assert {m.check for m in moved.mismatches} >= {"max_abs"}
    assert all(m.where != "interface" for m in moved.mismatches)


def test_a_device_that_fails_is_a_clear_error(onnx_fp32, small_checkpoint, tmp_path):
    class Broken(LocalDevice):
        def run(self, model, jobs, progress=None, files=None):
            return [{"ok": False, "error_kind": "missing_runtime", "error": "onnxruntime is not installed"}]

    with pytest.raises(BenchError, match="missing_runtime: onnxruntime is not installed"):
        verify_on_device(onnx_fp32, small_checkpoint, Broken(), VerifyOptions(shapes=SHAPES))
    with pytest.raises(FileNotFoundError, match="no such artifact"):
        verify_on_device(tmp_path / "none.onnx", small_checkpoint, LocalDevice(), VerifyOptions(shapes=SHAPES))


def test_bench_checks_the_outputs_it_times(onnx_fp32, small_checkpoint, tmp_path):
    import json

    import torch
    from click.testing import CliRunner

    from aestheticnet.cli import main
    from aestheticnet.models import create_model, save

    args = ["bench", str(onnx_fp32), "--runs", "2", "--shapes", "96x128", "--quiet", "--json", str(tmp_path / "r.json")]
    result = CliRunner().invoke(main, [*args, "--verify-against", str(small_checkpoint)])
    assert result.exit_code == 0, result.output
    (verdict,) = json.loads((tmp_path / "r.json").read_text())["verify"].values()
    assert verdict["passed"] and verdict["device"]["machine"] == platform.machine()

    torch.manual_seed(3)
    other = save(create_model("aestheticnet_star", layers=5, init_channels=16), tmp_path / "other.safetensors")
    result = CliRunner().invoke(main, [*args, "--verify-against", str(other)])
    assert result.exit_code == 1 and "verify" in result.output


def test_verify_cli_names_an_unreachable_device(onnx_fp32, small_checkpoint):
    from click.testing import CliRunner

    from aestheticnet.cli import main

    args = ["verify", str(onnx_fp32), "--reference", str(small_checkpoint), "--shapes", "96x128"]
    result = CliRunner().invoke(
        main, [*args, "--device", "ssh://nobody@127.0.0.1:1", "--ssh-option", "-o ConnectTimeout=2"]
    )
    assert result.exit_code == 2 and "ssh://nobody@127.0.0.1:1" in result.output, result.output
