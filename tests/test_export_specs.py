"""Export specs, tolerance table, argument errors and atomic outputs: fast, no converter runs."""

import json

import pytest
from click.testing import CliRunner

from aestheticnet.cli import main
from aestheticnet.export.files import atomic_dir
from aestheticnet.export.specs import (
    FORMATS,
    SPECS,
    TOLERANCES,
    UnknownFormatError,
    UnknownPrecisionError,
    artifact_name,
    format_of_path,
    parse_formats,
    parse_precisions,
    tolerance_for,
)
from aestheticnet.export.verify import parse_shapes


def test_every_offered_precision_has_one_tolerance():
    for fmt, spec in SPECS.items():
        for precision in spec.precisions:
            tol = tolerance_for(fmt, precision)
            assert tol.mean_score is not None
    assert set(TOLERANCES) == {(f, p) for f, s in SPECS.items() for p in s.precisions}
    assert TOLERANCES[("onnx", "fp32")].max_abs <= 1e-5
    assert TOLERANCES[("tflite", "fp32")].max_abs <= 1e-4
    assert TOLERANCES[("onnx", "fp16")].mean_score <= 0.01 and TOLERANCES[("tflite", "fp16")].mean_score <= 0.01
    assert TOLERANCES[("onnx", "int8")].srocc >= 0.98 and TOLERANCES[("tflite", "int8")].srocc >= 0.98


def test_parsing_formats_and_precisions():
    assert parse_formats("onnx, TFLite,onnx") == ["onnx", "tflite"]
    assert parse_precisions(["fp32", "int8"]) == ["fp32", "int8"]
    with pytest.raises(UnknownFormatError, match=r"unknown export format.*'tf'.*onnx, tflite, coreml"):
        parse_formats("onnx,tf")
    with pytest.raises(UnknownPrecisionError, match=r"unknown precision.*'int4'.*fp32, fp16, int8"):
        parse_precisions("int4")
    with pytest.raises(UnknownPrecisionError, match="onnx has no 'int8-dynamic'"):
        tolerance_for("onnx", "int8-dynamic")


def test_artifact_names_and_format_detection():
    assert artifact_name("star", "tflite", "int8") == "star.int8.tflite"
    assert format_of_path("a/star.fp16.mlpackage/") == "coreml"
    assert [format_of_path(f"x{SPECS[f].suffix}") for f in FORMATS] == list(FORMATS)
    with pytest.raises(UnknownFormatError, match=r"expected a file ending in \.onnx, \.tflite, \.mlpackage"):
        format_of_path("model.pt")


def test_verify_shapes_parsing():
    assert parse_shapes("224x224, 3x320x256") == [(1, 224, 224), (3, 320, 256)]
    assert (3, 224, 224) in parse_shapes(None) and (1, 96, 640) in parse_shapes(None)
    with pytest.raises(ValueError, match="multiples of 32"):
        parse_shapes("224x200")
    with pytest.raises(ValueError, match="expected HxW or NxHxW"):
        parse_shapes("224")


@pytest.mark.parametrize(
    "args, message",
    [
        (["--format", "onnx,pb"], "unknown export format(s) ['pb']; expected one or more of onnx, tflite, coreml"),
        (["--precision", "bf16"], "unknown precision(s) ['bf16']"),
        (["--format", "onnx", "--precision", "int8-dynamic"], "none of the formats ['onnx'] offers"),
        (["--format", "onnx", "--precision", "int8"], "pass --data DIR"),
    ],
)
def test_export_cli_rejects_bad_arguments(tmp_path, args, message):
    from aestheticnet.models import create_model, save

    ckpt = save(create_model("aestheticnet_star", layers=3, init_channels=4), tmp_path / "m.safetensors")
    result = CliRunner().invoke(main, ["export", str(ckpt), "--out", str(tmp_path / "out"), *args])
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_atomic_dir_leaves_nothing_on_failure_and_replaces_on_success(tmp_path):
    target = tmp_path / "m.mlpackage"
    with pytest.raises(RuntimeError), atomic_dir(target) as tmp:
        tmp.mkdir()
        (tmp / "half").write_text("partial")
        raise RuntimeError("converter crashed")
    assert list(tmp_path.iterdir()) == []
    for version in ("old", "new"):
        with atomic_dir(target) as tmp:
            assert tmp.name.endswith(".mlpackage") and tmp.parent == tmp_path
            tmp.mkdir()
            (tmp / "v").write_text(version)
    assert (target / "v").read_text() == "new"
    assert [p.name for p in tmp_path.iterdir()] == ["m.mlpackage"]


def test_manifest_reader_errors(tmp_path):
    from aestheticnet.export.manifest import ManifestError, read_manifest, sidecar_path

    art = tmp_path / "m.fp32.tflite"
    art.write_bytes(b"\0" * 16)
    with pytest.raises(ManifestError, match="no manifest found"):
        read_manifest(art)
    sidecar_path(art).write_text(json.dumps({"format": "something else"}))
    with pytest.raises(ManifestError, match="not an aestheticnet.export manifest"):
        read_manifest(art)
