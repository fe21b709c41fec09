"""The MIL evaluator on an exported package: verify computes CoreML numbers on every OS, and they are not vacuous
(a package with one convolution weight changed, or a relu swapped for a sigmoid, fails)."""

import platform
import shutil
import struct

import numpy as np
import pytest
import torch

from aestheticnet.artifacts import Format, Precision, tolerance_for
from aestheticnet.artifacts.coreml_package import operations, read_spec
from aestheticnet.export.verify import VerifyOptions, verify_artifact
from aestheticnet.models import create_model, save
from aestheticnet.runtime import CoreMLRunner, ModelFileError, load
from aestheticnet.sizes import Shape

pytest.importorskip("coremltools")
pytestmark = pytest.mark.slow

SHAPES = [Shape(64, 64), Shape(64, 96, batch=2)]


def _varied_model():
    """A tiny AestheticNet* whose batch-norm statistics come from its inputs, so its scores vary with the
    input (at initial statistics every input scores alike and a broken package could still match)."""
    torch.manual_seed(0)
    model = create_model("aestheticnet_star", layers=3, init_channels=8)
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.momentum = None  # a plain average over the calibration batches
    model.train()
    with torch.no_grad():
        model(torch.randn(8, 3, 64, 64) * torch.rand(8, 1, 1, 1) * 3)
    return model.eval()


@pytest.fixture(scope="module")
def package(tmp_path_factory):
    from aestheticnet.export.api import export_checkpoint

    root = tmp_path_factory.mktemp("mil")
    ckpt = save(_varied_model(), root / "tiny.safetensors")
    report = export_checkpoint(ckpt, [Format.COREML], [Precision.FP32], root / "out", log=None)
    assert not report.failures
    return ckpt, root / "out" / "tiny.fp32.mlpackage"


def _edited_copy(src, dst, edit):
    """A copy of the package whose spec ``edit(ops, consts)`` changed (the weight blob stays shared-format)."""
    shutil.copytree(src, dst)
    spec = read_spec(dst)
    ops = operations(spec)
    edit(ops, {op.outputs[0].name: op for op in ops if op.type == "const"}, dst)
    (spec_file,) = (dst / "Data").rglob("*.mlmodel")
    spec_file.write_bytes(spec.SerializeToString())
    return dst


def test_verify_computes_coreml_numbers(package):
    ckpt, path = package
    report = verify_artifact(path, ckpt, VerifyOptions(shapes=SHAPES))
    assert report.passed, report.mismatches
    assert report.runtime == "mil-evaluator" or platform.system() == "Darwin"
    assert report.evaluated_by and report.spec["ops"]["conv"] > 10
    assert [row["max_abs"] <= tolerance_for(Format.COREML, Precision.FP32).max_abs for row in report.shapes] == [
        True,
        True,
    ]
    outputs = load(path, coreml=CoreMLRunner.MIL).run(
        np.random.default_rng(0).standard_normal((4, 3, 64, 64)).astype(np.float32)
        * np.array([0.2, 1, 2, 4], np.float32)[:, None, None, None]
    )
    assert (outputs @ np.arange(1, 11)).std() > 1e-3  # scores vary: the parity above is not vacuous


def test_a_model_with_mscn_input_verifies_and_keeps_its_normaliser_float32_in_fp16(tmp_path):
    from coremltools.proto import MIL_pb2

    from aestheticnet.export.api import export_checkpoint

    torch.manual_seed(0)
    model = create_model("aestheticnet_star", layers=3, init_channels=8, input_norm="mscn").eval()
    ckpt = save(model, tmp_path / "mscn.safetensors")
    export_checkpoint(ckpt, [Format.COREML], [Precision.FP32, Precision.FP16], tmp_path / "out", log=None)
    for precision in ("fp32", "fp16"):
        path = tmp_path / "out" / f"mscn.{precision}.mlpackage"
        report = verify_artifact(path, ckpt, VerifyOptions(shapes=SHAPES))
        assert report.passed, (precision, report.mismatches)
        assert report.spec["ops"]["sqrt"] >= 1  # the normaliser's deviation ran in the evaluator
    dtypes = {}
    for op in operations(read_spec(tmp_path / "out" / "mscn.fp16.mlpackage")):
        dtypes.setdefault(op.type, set()).add(op.outputs[0].type.tensorType.dataType)
    assert dtypes["sqrt"] == {MIL_pb2.FLOAT32}  # the normaliser stays float32
    assert dtypes["conv"] == {MIL_pb2.FLOAT16}  # the network computes in float16


def test_a_changed_convolution_weight_fails_verify(package, tmp_path):
    ckpt, path = package

    def change_weight(ops, consts, dst):
        conv = [op for op in ops if op.type == "conv"][5]
        blob = consts[conv.inputs["weight"].arguments[0].name].attributes["val"].blobFileValue
        weights = dst / "Data" / "com.apple.CoreML" / "weights" / "weight.bin"
        data = bytearray(weights.read_bytes())
        sentinel, _, _, start = struct.unpack_from("<IIQQ", data, blob.offset)  # the blob record's header
        assert sentinel == 0xDEADBEEF
        struct.pack_into("<f", data, start, struct.unpack_from("<f", data, start)[0] + 0.5)
        weights.write_bytes(bytes(data))

    broken = _edited_copy(path, tmp_path / "weight.mlpackage", change_weight)
    report = verify_artifact(broken, ckpt, VerifyOptions(shapes=SHAPES))
    assert not report.passed and {m.check for m in report.mismatches} >= {"max_abs"}
    assert not [m for m in report.mismatches if m.where == "spec"]  # only the numbers can see it


def test_a_relu_swapped_for_a_sigmoid_fails_verify(package, tmp_path):
    ckpt, path = package

    def swap(ops, consts, dst):
        [op for op in ops if op.type == "relu"][2].type = "sigmoid"

    report = verify_artifact(
        _edited_copy(path, tmp_path / "sigmoid.mlpackage", swap), ckpt, VerifyOptions(shapes=SHAPES)
    )
    assert not report.passed and "max_abs" in {m.check for m in report.mismatches}


def test_an_unknown_op_in_a_package_names_the_op_and_the_file(package, tmp_path):
    def unknown(ops, consts, dst):
        [op for op in ops if op.type == "relu"][0].type = "erf"

    broken = _edited_copy(package[1], tmp_path / "erf.mlpackage", unknown)
    with pytest.raises(ModelFileError, match=r"erf\.mlpackage: the MIL evaluator has no kernel for op 'erf'"):
        load(broken, coreml=CoreMLRunner.MIL)


def test_the_evaluator_refuses_shapes_core_ml_refuses(package):
    backend = load(package[1], coreml="mil")
    if platform.system() != "Darwin":
        assert load(package[1]).name == "mil-evaluator"  # the default off macOS
    assert backend.run(np.zeros((1, 3, 64, 2048), np.float32)).shape == (1, 10)
    with pytest.raises(ValueError, match=r"outside the package's ranges"):
        backend.run(np.zeros((1, 3, 32, 2080), np.float32))
