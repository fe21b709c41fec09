"""Artifact specs, tolerance table, argument errors, the int8 recipe's text and atomic outputs: fast, no converter
runs."""

import json

import pytest
from click.testing import CliRunner

from aestheticnet.artifacts import (
    SPECS,
    Format,
    Precision,
    UnknownFormatError,
    UnknownPrecisionError,
    artifact_name,
    format_of_path,
    parse_formats,
    precision_of_path,
    parse_precisions,
    tolerance_for,
)
from aestheticnet.artifacts.files import atomic_dir
from aestheticnet.cli import main


def test_every_offered_precision_has_one_tolerance():
    for fmt, spec in SPECS.items():
        assert spec.format == fmt and fmt.value == spec.name
        for precision in spec.precisions:
            tol = tolerance_for(fmt, precision)
            assert tol.mean_score is not None and tol is spec.tolerances[precision]
    assert [f.value for f in Format] == ["onnx", "tflite", "coreml", "executorch"]
    assert tolerance_for(Format.EXECUTORCH, Precision.FP32).max_abs <= 1e-5
    assert tolerance_for(Format.EXECUTORCH, Precision.INT8).srocc >= 0.98
    assert Precision.INT8_DYNAMIC.value == "int8-dynamic" and Precision.INT8_DYNAMIC in SPECS[Format.TFLITE].precisions
    tol = {(f, p): t for f, s in SPECS.items() for p, t in s.tolerances.items()}
    assert tol[(Format.ONNX, Precision.FP32)].max_abs <= 1e-5
    assert tol[(Format.TFLITE, Precision.FP32)].max_abs <= 1e-4
    assert tol[(Format.ONNX, Precision.FP16)].mean_score <= 0.01
    assert tol[(Format.TFLITE, Precision.FP16)].mean_score <= 0.01
    assert tol[(Format.ONNX, Precision.INT8)].srocc >= 0.98 and tol[(Format.TFLITE, Precision.INT8)].srocc >= 0.98


def test_parsing_formats_and_precisions():
    assert parse_formats("onnx, TFLite,onnx") == [Format.ONNX, Format.TFLITE]
    assert parse_precisions(["fp32", "int8"]) == [Precision.FP32, Precision.INT8]
    with pytest.raises(UnknownFormatError, match=r"unknown export format.*'tf'.*onnx, tflite, coreml"):
        parse_formats("onnx,tf")
    with pytest.raises(UnknownPrecisionError, match=r"unknown precision.*'int4'.*fp32, fp16, int8"):
        parse_precisions("int4")
    with pytest.raises(UnknownPrecisionError, match="onnx has no 'int8-dynamic'"):
        tolerance_for("onnx", "int8-dynamic")


def test_artifact_names_and_format_detection():
    assert artifact_name("star", "tflite", "int8") == "star.int8.tflite"
    assert format_of_path("a/star.fp16.mlpackage/") == Format.COREML
    assert [format_of_path(f"x{SPECS[f].suffix}") for f in Format] == list(Format)
    with pytest.raises(UnknownFormatError, match=r"expected a file ending in \.onnx, \.tflite, \.mlpackage"):
        format_of_path("model.pt")
    names = {(f, p): artifact_name("last.v2", f, p) for f in Format for p in Precision}
    assert all(precision_of_path(f"out/{name}") == p for (_, p), name in names.items())
    assert precision_of_path("a/star.fp16.mlpackage/") == Precision.FP16
    assert precision_of_path("star.onnx") is None and precision_of_path("star.v2.onnx") is None


def test_verify_takes_the_one_size_grammar():
    from aestheticnet.export.verify import DEFAULT_SHAPES
    from aestheticnet.sizes import Shape, parse_shapes

    assert Shape(224, 224, batch=3) in DEFAULT_SHAPES and Shape(96, 640) in DEFAULT_SHAPES
    assert parse_shapes(",".join(str(s) for s in DEFAULT_SHAPES)) == DEFAULT_SHAPES


def test_export_api_takes_typed_values(tmp_path):
    from aestheticnet.export import ExportError, export_checkpoint

    with pytest.raises(UnknownFormatError, match="unknown export format 'onnx,tflite'"):
        export_checkpoint(tmp_path / "m.safetensors", "onnx,tflite", [Precision.FP32], tmp_path)
    with pytest.raises(ExportError, match="none of the formats"):
        export_checkpoint(tmp_path / "m.safetensors", [Format.ONNX], [Precision.INT8_DYNAMIC], tmp_path)


def test_int8_recipe_describes_itself_in_the_manifest():
    from aestheticnet.export.int8.recipe import DEFAULT_RECIPE, Int8Recipe

    text = DEFAULT_RECIPE.onnx_conversion()
    assert "equalisation" not in text and "reduce_range (7-bit" in text and text.endswith("classifier bias corrected")
    assert "gain <= 64" in Int8Recipe(equalize=True).onnx_conversion()
    rule = DEFAULT_RECIPE.outlier_rule()
    assert "exceeds 8x the median" in rule and "10% of the images" in rule
    bare = Int8Recipe(equalize=False, bias_correction=False, float_tail=False, onnx_weight_bits=8)
    assert "equalisation" not in bare.onnx_conversion() and "bias" not in bare.onnx_conversion()
    assert "tail" not in bare.onnx_conversion() and "reduce_range" not in bare.onnx_conversion()
    with pytest.raises(ValueError, match="outlier_factor"):
        Int8Recipe(outlier_factor=0.5)


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
    from aestheticnet.artifacts import ManifestError, read_manifest, sidecar_path

    art = tmp_path / "m.fp32.tflite"
    art.write_bytes(b"\0" * 16)
    with pytest.raises(ManifestError, match="no manifest found"):
        read_manifest(art)
    sidecar_path(art).write_text(json.dumps({"format": "something else"}))
    with pytest.raises(ManifestError, match="not an aestheticnet.export manifest"):
        read_manifest(art)
    sidecar_path(art).write_text(json.dumps({"format": "aestheticnet.export", "manifest_version": 99}))
    with pytest.raises(ManifestError, match="manifest version 99; this aestheticnet reads versions up to 1"):
        read_manifest(art)
    sidecar_path(art).write_text(json.dumps({"format": "aestheticnet.export", "manifest_version": 1, "artifact": {}}))
    with pytest.raises(ManifestError, match="m.fp32.tflite.json: an incomplete manifest .* re-export"):
        read_manifest(art)
