"""`verify --device` against an emulated ARM64 board (scripts/arm64-board): the small model's ONNX and TFLite files,
fp32, fp16 and int8, run by the board's own onnxruntime and LiteRT, checked at the same tolerances as here.

`.ci/run` starts the board when it can be built (root, apt, binfmt_misc) and exports
  AESTHETICNET_TEST_BOARD=ssh://root@127.0.0.1:PORT
  AESTHETICNET_TEST_BOARD_OPTS='-i KEY -o StrictHostKeyChecking=no ...'
Without AESTHETICNET_TEST_BOARD these tests skip.
"""

import json
import os
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

BOARD = os.environ.get("AESTHETICNET_TEST_BOARD")
OPTS = os.environ.get("AESTHETICNET_TEST_BOARD_OPTS", "")

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not BOARD, reason="AESTHETICNET_TEST_BOARD is not set (.ci/run starts scripts/arm64-board where it can)"
    ),
]

from aestheticnet.artifacts import Format, Precision  # noqa: E402
from aestheticnet.bench import parse_device, verify_on_device  # noqa: E402
from aestheticnet.cli import main  # noqa: E402
from aestheticnet.export.verify import VerifyOptions  # noqa: E402
from aestheticnet.sizes import Shape  # noqa: E402

SHAPES = (Shape(96, 128), Shape(128, 96, batch=2))


@pytest.fixture(scope="module")
def exported(tmp_path_factory, tiny_synth, small_checkpoint):
    from aestheticnet.export import ExportOptions, export_checkpoint

    out = tmp_path_factory.mktemp("board")
    report = export_checkpoint(
        small_checkpoint,
        [Format.ONNX, Format.TFLITE],
        [Precision.FP32, Precision.FP16, Precision.INT8],
        out,
        ExportOptions(data=tiny_synth, calibration_samples=24),
        log=None,
    )
    return {(a.format, a.precision): Path(a.path) for a in report.artifacts}


def board():
    return parse_device(BOARD, ssh_options=[OPTS] if OPTS else [])


@pytest.mark.parametrize("fmt", ["onnx", "tflite"])
@pytest.mark.parametrize("precision", ["fp32", "fp16", "int8"])
def test_every_artifact_passes_on_the_board(exported, small_checkpoint, tiny_synth, fmt, precision):
    options = VerifyOptions(shapes=SHAPES, data=tiny_synth, samples=12)
    report = verify_on_device(exported[(fmt, precision)], small_checkpoint, board(), options)
    assert report.device["machine"] == "aarch64"
    assert report.device["emulated"], "the board labels its results emulated"
    assert report.device["passed_on_this_machine"]
    assert report.passed, [str(m) for m in report.mismatches]


def test_a_corrupted_artifact_fails_on_the_board_as_here(exported, small_checkpoint, tiny_synth, tmp_path):
    import numpy as np
    import onnx
    from onnx import numpy_helper

    src = exported[("onnx", "fp32")]
    model = onnx.load(str(src))
    weight = max(model.graph.initializer, key=lambda t: np.prod(t.dims))
    weight.CopyFrom(numpy_helper.from_array(-numpy_helper.to_array(weight), weight.name))
    bad = tmp_path / src.name
    onnx.save(model, str(bad))
    shutil.copy(f"{src}.json", f"{bad}.json")
    options = VerifyOptions(shapes=SHAPES, data=tiny_synth, samples=12, check_integrity=False)
    report = verify_on_device(bad, small_checkpoint, board(), options)
    assert not report.device["passed_on_this_machine"]
    assert not report.passed and any(m.check == "max_abs" for m in report.mismatches)


def test_verify_cli_on_the_board_writes_the_device(exported, small_checkpoint, tiny_synth, tmp_path):
    out = tmp_path / "verify.json"
    args = ["verify", str(exported[("tflite", "int8")]), "--reference", str(small_checkpoint)]
    # 12 images, as above: on 8, one swapped neighbouring pair alone takes SROCC to 0.976, under int8's 0.98
    args += ["--data", str(tiny_synth), "--samples", "12", "--shapes", "96x128", "--json", str(out), "--device", BOARD]
    if OPTS:
        args += ["--ssh-option", OPTS]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert "aarch64" in result.output
    assert json.loads(out.read_text())["device"]["machine"] == "aarch64"
