"""Profile extension for `info`: MACs and params per stage, cell type and operation; size per format and precision."""

import json

import pytest

from aestheticnet.artifacts import Format, Precision
from aestheticnet.artifacts.manifest import SourceInfo, build_manifest, write_sidecar
from aestheticnet.bench.breakdown import format_info_extension, info_extension, model_sizes, profile_breakdown
from aestheticnet.bench.manifest import model_facts, precision_of
from aestheticnet.bench.profile import profile_model
from aestheticnet.models import create_model, save


@pytest.fixture(scope="module")
def star():
    return create_model("aestheticnet_star", layers=5, init_channels=8).eval()


def test_breakdown_adds_up_to_profile_model(star):
    size = (64, 96)
    prof = profile_model(star, size)
    b = profile_breakdown(star, size)
    assert b["macs"] == prof["macs"]
    # per stage x cell type == profile_model's stages and cell types
    for stage, kinds in b["stage_cell_types"].items():
        assert sum(k["macs"] for k in kinds.values()) == prof["stages"][stage]["macs"]
        assert sum(k["params"] for k in kinds.values()) == prof["stages"][stage]["params"]
    for kind in ("normal", "reduce"):
        got = sum(k[kind]["macs"] for k in b["stage_cell_types"].values() if kind in k)
        assert got == prof["cell_types"][kind]["macs"]
    # operations + stem/attention/head == totals (cells hold nothing besides their ops and preprocessing)
    ops = list(b["ops"].values()) + list(b["outside_cells"].values())
    assert sum(o["macs"] for o in ops) == prof["macs"]
    assert sum(o["params"] for o in ops) == prof["params"]
    per_stage = sum(o["macs"] for t in b["ops_by_stage"].values() for o in t.values())
    assert per_stage == sum(o["macs"] for o in b["ops"].values())
    # AestheticNet* dilates the last stage's sep convs; nowhere else
    assert any(name.endswith("@d2") for name in b["ops_by_stage"]["stage3"])
    assert not any(name.endswith("@d2") for s, t in b["ops_by_stage"].items() if s != "stage3" for name in t)
    assert b["outside_cells"]["attention (CBAM)"]["count"] == 1


def test_plain_aestheticnet_has_no_attention_or_dilation():
    b = profile_breakdown(create_model("aestheticnet", layers=5, init_channels=8, genotype="DARTS_V2"), (64, 64))
    assert b["outside_cells"]["attention (CBAM)"]["count"] == 0
    assert not any("@d" in name for name in b["ops"])
    assert "sep_conv_3x3" in b["ops"] and "max_pool_3x3" in b["ops"]


def test_sizes_per_format_and_precision(tmp_path, star):
    st = save(star, tmp_path / "star.safetensors")
    (tmp_path / "star.onnx").write_bytes(b"o" * 1000)
    (tmp_path / "star_fp16.onnx").write_bytes(b"h" * 500)
    (tmp_path / "star_float16.tflite").write_bytes(b"t" * 400)
    (tmp_path / "star_dynamic_range_quant.tflite").write_bytes(b"q" * 300)
    (tmp_path / "star_w8.onnx").write_bytes(b"w" * 250)
    source = SourceInfo(st.name, "0" * 64, None)
    write_sidecar(tmp_path / "star_w8.onnx", build_manifest({}, source, Format.ONNX, Precision.INT8, {}, None))
    pkg = tmp_path / "star.mlpackage" / "Data"
    pkg.mkdir(parents=True)
    (pkg / "weights.bin").write_bytes(b"c" * 700)
    (tmp_path / "other.onnx").write_bytes(b"x")  # another model: not listed
    sizes = model_sizes(1000, st)
    got = {(f["format"], f["precision"], f["bytes"]) for f in sizes["files"]}
    # precision from the manifest only: files without one are listed as "unknown", whatever their names say
    assert got == {
        ("safetensors", "fp32", st.stat().st_size),
        ("onnx", "unknown", 1000),
        ("onnx", "unknown", 500),
        ("tflite", "unknown", 400),
        ("tflite", "unknown", 300),
        ("onnx", "int8", 250),
        ("coreml", "unknown", 700),
    }
    assert sizes["weights_estimate_bytes"] == {"fp32": 4000, "fp16": 2000, "int8": 1000}
    # a variant without files: only the estimates
    assert model_sizes(10, None)["files"] == []


def test_info_extension_text(tmp_path, star):
    ext = info_extension(star, (64, 64), path=None)
    assert set(ext) == {"breakdown", "sizes"}
    json.dumps(ext)  # JSON-ready for `info --json`
    text = "\n".join(format_info_extension(ext))
    for needle in (
        "per stage and cell type:",
        "per cell type:",
        "per operation",
        "sep_conv_3x3@d2",
        "attention (CBAM)",
        "model size:",
        "weights fp16",
    ):
        assert needle in text, needle


def _manifest(precision: Precision = Precision.FP16):
    return build_manifest({}, SourceInfo("m.safetensors", "0" * 64, None), Format.ONNX, precision, {}, None)


def test_precision_comes_from_the_manifest_never_the_name(tmp_path):
    assert precision_of("m.safetensors", None) == "fp32"
    assert precision_of("m_float16.tflite", None) == "unknown"  # a name is not a precision
    assert precision_of("m_int8.onnx", _manifest()) == "fp16"
    assert precision_of("m.onnx", _manifest().with_artifact(precision="int4")) == "unknown"


def test_model_facts_without_manifest_say_so(tmp_path):
    p = tmp_path / "m.int8.onnx"
    p.write_bytes(b"x")
    facts = model_facts(p, [(224, 224)])
    assert facts["params"] is None and facts["macs"] == {"224x224": None} and "no manifest" in facts["facts_note"]
    assert facts["precision"] == "unknown"
    # params and MACs are never read from a manifest: a number without its network is not trusted
    (tmp_path / "m.int8.onnx.json").write_text(json.dumps({**_manifest().to_json(), "params": 123}))
    facts = model_facts(p, [(224, 224)])
    assert facts["params"] is None and facts["macs"]["224x224"] is None and facts["precision"] == "fp16"
    assert "does not describe a network" in facts["facts_note"]
    (tmp_path / "m.int8.onnx.json").write_text(json.dumps({"params": 123}))
    facts = model_facts(p, [(224, 224)])
    assert facts["params"] is None and "not an aestheticnet.export manifest" in facts["facts_note"]
    (tmp_path / "m.int8.onnx.json").write_text("{broken")
    facts = model_facts(p, [(224, 224)])
    assert facts["params"] is None and "unreadable manifest" in facts["facts_note"]


def test_facts_from_an_exporter_manifest(tmp_path, star):
    """The layout aestheticnet.export writes: model.variant/config with the genotype beside the config."""
    from aestheticnet.models.checkpoint import build_metadata

    meta = build_metadata(star)
    art = tmp_path / "star.int8-dynamic.tflite"
    art.write_bytes(b"x")
    manifest = build_manifest(
        meta, SourceInfo("star.safetensors", "0" * 64, None), Format.TFLITE, Precision.INT8_DYNAMIC, {}, None
    )
    write_sidecar(art, manifest)
    assert manifest.model.genotype is not None and "genotype" not in manifest.model.config
    facts = model_facts(art, [(64, 96)])
    exact = profile_model(star, (64, 96))
    assert facts["variant"] == "aestheticnet_star" and facts["precision"] == "int8-dynamic"
    assert facts["params"] == exact["params"] and facts["macs"]["64x96"] == exact["macs"]
    sizes = model_sizes(exact["params"], tmp_path / "star.fp32.onnx")  # a sibling that does not exist yet
    assert [(f["format"], f["precision"]) for f in sizes["files"]] == [("tflite", "int8-dynamic")]
