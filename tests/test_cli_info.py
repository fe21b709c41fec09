import json

from click.testing import CliRunner

from aestheticnet.artifacts import Format, Precision
from aestheticnet.artifacts.manifest import SourceInfo, build_manifest, write_sidecar
from aestheticnet.cli import main
from aestheticnet.models import create_model, save


def test_info_json_for_a_variant():
    result = CliRunner().invoke(
        main, ["info", "aestheticnet_star", "--layers", "5", "--init-channels", "8", "--size", "64x96", "--json"]
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["variant"] == "aestheticnet_star" and report["input_size"] == [64, 96]
    assert report["macs"] > 0 and report["params"] > 0
    parts = report["stem"]["macs"] + report["head"]["macs"] + sum(s["macs"] for s in report["stages"].values())
    assert parts == report["macs"]
    assert (
        sum(s["params"] for s in report["stages"].values()) + report["stem"]["params"] + report["head"]["params"]
        == report["params"]
    )
    assert report["cells"][-1]["output_shape"][2:] == [2, 3]
    assert report["genotype"]["normal_concat"] == [2, 3, 4, 5]


def test_info_macs_scale_with_area():
    def macs(size):
        r = CliRunner().invoke(
            main, ["info", "aestheticnet", "--layers", "5", "--init-channels", "8", "--size", size, "--json"]
        )
        return json.loads(r.output)["macs"]

    small, big = macs("64x64"), macs("128x128")
    assert 3.5 < big / small < 4.5


def test_info_on_a_model_file(tmp_path):
    path = save(create_model("aestheticnet", layers=5, init_channels=8), tmp_path / "m.safetensors")
    result = CliRunner().invoke(main, ["info", str(path)])
    assert result.exit_code == 0, result.output
    assert "parameters:" in result.output and "MACs at 224x224" in result.output


def test_info_bad_inputs_are_clear_errors(tmp_path):
    runner = CliRunner()
    r = runner.invoke(main, ["info", "nosuchvariant"])
    assert r.exit_code == 2 and "neither a registered variant" in r.output
    r = runner.invoke(main, ["info", "aestheticnet", "--genotype", "NOPE"])
    assert r.exit_code == 2 and "unknown genotype 'NOPE'" in r.output
    bad = tmp_path / "g.json"
    bad.write_text("{not json")
    r = runner.invoke(main, ["info", "aestheticnet", "--genotype", str(bad)])
    assert r.exit_code == 2 and "g.json: not valid JSON" in r.output
    r = runner.invoke(main, ["info", "aestheticnet", "--size", "100x96"])
    assert r.exit_code == 2 and "multiples of 32" in r.output
    trunc = tmp_path / "t.safetensors"
    trunc.write_bytes(b"\x10\x00")
    r = runner.invoke(main, ["info", str(trunc)])
    assert r.exit_code == 2 and "t.safetensors" in r.output


def test_info_reports_breakdown_and_sizes_of_sibling_files(tmp_path):
    path = save(create_model("aestheticnet_star", layers=5, init_channels=8), tmp_path / "m.safetensors")
    (tmp_path / "m.onnx").write_bytes(b"x" * 3000)  # a sibling export: listed by format, precision from its manifest
    source = SourceInfo(path.name, "0" * 64, None)
    write_sidecar(tmp_path / "m.onnx", build_manifest({}, source, Format.ONNX, Precision.FP32, {}, None))
    (tmp_path / "m_fp16.onnx").write_bytes(b"x" * 1500)  # no manifest: precision unknown, whatever the name says
    (tmp_path / "other.onnx").write_bytes(b"x")  # another model's file: not listed
    r = CliRunner().invoke(main, ["info", str(path), "--size", "64x64", "--json"])
    assert r.exit_code == 0, r.output
    report = json.loads(r.output)
    b = report["breakdown"]
    assert b["macs"] == report["macs"]
    assert sum(a["macs"] for kinds in b["stage_cell_types"].values() for a in kinds.values()) <= report["macs"]
    assert any(op.endswith("@d2") for op in b["ops"])  # the star's dilated last-stage sep convs
    files = {(f["format"], f["precision"], f["bytes"]) for f in report["sizes"]["files"]}
    assert ("onnx", "fp32", 3000) in files and ("onnx", "unknown", 1500) in files
    assert not any(f["path"].endswith("other.onnx") for f in report["sizes"]["files"])
    assert report["sizes"]["weights_estimate_bytes"]["fp16"] == 2 * report["params"]
    text = CliRunner().invoke(main, ["info", str(path), "--size", "64x64"]).output
    assert "per cell type:" in text and "model size:" in text and "m_fp16.onnx" in text
