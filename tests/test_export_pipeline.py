"""End to end: a small fitted AestheticNet* -> ONNX, TFLite, CoreML (all precisions) -> runtime, Scorer, verify.

One export per module (the expensive part: torch.export + converters), shared by every test below. The model
is fitted for a few dozen steps on the tiny synthetic dataset so its scores vary across images; an untrained
network scores every image alike and would make the rank-correlation gates meaningless.
"""

import json
import platform

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from aestheticnet.artifacts import SPECS, Format, Precision, read_manifest
from aestheticnet.artifacts.embedded import EMBED_KEY
from aestheticnet.cli import main
from aestheticnet.models import create_model, save
from aestheticnet.runtime import CoreMLRunner, CoreMLUnavailableError, InputError, ModelFileError, Scorer
from aestheticnet.runtime import load as load_backend
from aestheticnet.sizes import Shape

pytestmark = pytest.mark.slow

SHAPES = [(1, 224, 224), (1, 320, 256), (1, 512, 384), (1, 96, 640), (3, 224, 224)]  # (batch, height, width)


@pytest.fixture(scope="module")
def exported(tmp_path_factory, tiny_synth, small_checkpoint):
    from aestheticnet.export.api import ExportOptions, export_checkpoint

    root = tmp_path_factory.mktemp("export")
    ckpt = small_checkpoint
    out = root / "out"
    report = export_checkpoint(
        # ExecuTorch has its own tests (tests/test_executorch_export.py); its lowering would double this fixture.
        ckpt,
        [Format.ONNX, Format.TFLITE, Format.COREML],
        list(Precision),
        out,
        ExportOptions(data=tiny_synth, calibration_samples=24),
        log=None,
    )
    return ckpt, out, report


def art(exported, fmt, precision):
    suffix = {"onnx": ".onnx", "tflite": ".tflite", "coreml": ".mlpackage"}[fmt]
    return exported[1] / f"small.{precision}{suffix}"


def test_every_artifact_has_a_complete_manifest(exported, small_preprocess):
    ckpt, out, report = exported
    assert not report.failures
    made = {(a.format, a.precision) for a in report.artifacts}
    assert made == {(f, p) for f in ("onnx", "tflite", "coreml") for p in ("fp32", "fp16", "int8")} | {
        ("tflite", "int8-dynamic")
    }
    assert not [p.name for p in out.iterdir() if ".tmp" in p.name]  # nothing half-written left behind
    from aestheticnet.io import sha256_file

    for a in report.artifacts:
        m = read_manifest(a.path)
        assert m.source.sha256 == sha256_file(ckpt)
        assert m.model.variant == "aestheticnet_star" and m.model.genotype["normal"]
        assert m.model.score_buckets == list(range(1, 11))
        inp = m.input
        assert inp.name == "image" and inp.dtype == "float32" and inp.multiple == 32
        assert inp.layout == ("NHWC" if a.format == "tflite" else "NCHW")
        assert inp.mean == small_preprocess["mean"] and inp.std == small_preprocess["std"]
        assert inp.dynamic["height"][0] == 32 and inp.dynamic["batch"][0] == 1
        assert m.precision == a.precision and m.export["precision"] == a.precision and m.export["tools"]["torch"]
        assert m.export["exported_at"] and a.total > 0
        assert m.artifact.bytes > 0 and m.artifact.sha256 == sha256_file(a.path)
    onnx_manifest = read_manifest(art(exported, "onnx", "fp32"))
    assert onnx_manifest.export["exporter"] == "torch.onnx (dynamo)"
    assert onnx_manifest.export["fallback_reason"] is None
    assert json.loads((out / "small.export_report.json").read_text())["format_seconds"]["tflite"] > 0
    # ONNX and TFLite int8 calibrate on the same images, and say which were left out as outliers
    calib = [read_manifest(art(exported, f, "int8")).export["calibration"] for f in ("onnx", "tflite")]
    assert calib[0] == calib[1] and calib[0]["samples"] == 24
    assert calib[0]["used"] == 24 - len(calib[0]["outliers"]) and calib[0]["used"] >= 22
    assert "outlier_rule" in calib[0]


def test_metadata_is_embedded_in_onnx_tflite_and_coreml(exported):
    import onnx

    from aestheticnet.artifacts.embedded import read_tflite_metadata
    from aestheticnet.export.coreml.spec import summarize_spec

    props = {p.key: p.value for p in onnx.load(str(art(exported, "onnx", "int8"))).metadata_props}
    assert json.loads(props[EMBED_KEY])["artifact"]["precision"] == "int8"
    assert props["input_layout"] == "NCHW" and props["input_multiple"] == "32"
    assert json.loads(read_tflite_metadata(art(exported, "tflite", "fp32"))[EMBED_KEY])["input"]["layout"] == "NHWC"
    meta = summarize_spec(art(exported, "coreml", "fp16"))["metadata"]
    assert json.loads(meta[EMBED_KEY])["artifact"]["format"] == "coreml" and meta["input_layout"] == "NCHW"


def test_onnx_dims_stay_symbolic(exported):
    backend = load_backend(art(exported, "onnx", "fp32"))
    (i,), (o,) = backend.session.get_inputs(), backend.session.get_outputs()
    assert (i.name, o.name) == ("image", "distribution")
    assert all(isinstance(i.shape[k], str) for k in (0, 2, 3)) and i.shape[1] == 3 and isinstance(o.shape[0], str)


@pytest.mark.parametrize("fmt", ["onnx", "tflite", "coreml"])
def test_fp32_parity_at_sizes_and_batch_never_exported(exported, fmt):
    reference = load_backend(exported[0], threads=1)
    backend = load_backend(art(exported, fmt, "fp32"), threads=2)
    assert backend.input_layout == ("NHWC" if fmt == "tflite" else "NCHW") and reference.name == "pytorch"
    rng = np.random.default_rng(3)
    for n, h, w in SHAPES:
        x = rng.standard_normal((n, 3, h, w)).astype(np.float32)
        ref = reference.run(x)
        got = backend.run(x)
        assert got.shape == ref.shape
        assert np.abs(got - ref).max() <= SPECS[Format(fmt)].tolerances[Precision.FP32].max_abs, (fmt, n, h, w)


@pytest.mark.parametrize(
    "fmt, precision",
    [
        ("onnx", "fp32"),
        ("tflite", "fp32"),
        ("onnx", "fp16"),
        ("tflite", "fp16"),
        ("onnx", "int8"),
        ("tflite", "int8"),
        ("tflite", "int8-dynamic"),
        ("coreml", "fp32"),
        ("coreml", "fp16"),
        ("coreml", "int8"),
    ],
)
def test_verify_passes_with_real_images(exported, tiny_synth, tmp_path, fmt, precision):
    report_path = tmp_path / "v.json"
    result = CliRunner().invoke(
        main,
        [
            "verify",
            str(art(exported, fmt, precision)),
            "--reference",
            str(exported[0]),
            "--data",
            str(tiny_synth),
            "--samples",
            "84",
            "--json",
            str(report_path),
        ],
    )
    assert result.exit_code == 0, result.output
    report = json.loads(report_path.read_text())
    assert report["passed"] and len(report["shapes"]) == 5
    real = report["real"]
    assert real["reference_score_std"] > 1e-2  # the fitted model's scores vary: correlations are gated
    if precision in ("fp16",):
        assert real["mean_score_diff"] <= 0.01
    if precision == "int8":
        assert real["srocc"] >= 0.98
    assert "PASSED" in result.output


def test_int8_keeps_the_tail_float_and_corrects_the_classifier_bias(exported):
    import onnx
    from ai_edge_litert.interpreter import Interpreter
    from onnx import numpy_helper

    def head_bias(path):
        model = onnx.load(str(path))
        gemm = next(n for n in model.graph.node if n.op_type == "Gemm")
        inits = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
        producers = {o: n.op_type for n in model.graph.node for o in n.output}
        return gemm, inits.get(gemm.input[2]), producers

    gemm, bias8, producers = head_bias(art(exported, "onnx", "int8"))
    assert producers[gemm.input[0]] != "DequantizeLinear" and bias8 is not None  # float classifier, float bias
    softmax = next(n for n in onnx.load(str(art(exported, "onnx", "int8"))).graph.node if n.op_type == "Softmax")
    assert producers[softmax.input[0]] == "Gemm"  # no QDQ pair between the classifier and the softmax
    _, bias32, _ = head_bias(art(exported, "onnx", "fp32"))
    shift = bias32 - bias8
    assert np.abs(shift).max() > 0 and abs(shift.mean()) < 1e-5  # corrected, by a centred shift

    rewrites = read_manifest(art(exported, "tflite", "int8")).export["rewrites"]
    assert any(r.startswith("float_tail") for r in rewrites) and "classifier_bias_correction" in rewrites
    # the default recipe leaves the channel ranges as trained, and the manifest says what ran
    assert not any(r.startswith("activation_range_equalisation") for r in rewrites)
    it = Interpreter(model_content=art(exported, "tflite", "int8").read_bytes())
    tensors = it.get_tensor_details()
    dtypes = {}
    for op in it._get_ops_details():
        dtypes.setdefault(op["op_name"], set()).add(np.dtype(tensors[op["outputs"][0]]["dtype"]).name)
    assert dtypes["FULLY_CONNECTED"] == {"float32"} and dtypes["SOFTMAX"] == {"float32"}
    # the cells are int8; the float CONV_2Ds are CBAM's 1x1 gate convolutions in the tail
    assert "int8" in dtypes["CONV_2D"] and dtypes["DEPTHWISE_CONV_2D"] == {"int8"}
    # int8 RELUs that XNNPACK cannot take are written as the QUANTIZE they equal
    assert any(r.startswith("int8_relu_as_quantize") for r in rewrites) and "int8" in dtypes["QUANTIZE"]


def test_onnx_int8_activations_are_uint8_for_the_fused_kernels(exported):
    import onnx
    from onnx import TensorProto

    model = onnx.load(str(art(exported, "onnx", "int8")))
    zero_points = {t.name: t.data_type for t in model.graph.initializer}
    quantize = [n for n in model.graph.node if n.op_type == "QuantizeLinear"]
    assert quantize and {zero_points[n.input[2]] for n in quantize} == {TensorProto.UINT8}
    assert "uint8 activations" in read_manifest(art(exported, "onnx", "int8")).export["conversion"]


def test_verify_collects_every_mismatch_and_exits_1(exported, tmp_path, small_preprocess):
    from aestheticnet.export.verify import ParityError, VerifyOptions, check_parity

    torch.manual_seed(1)
    other = save(
        create_model("aestheticnet_star", layers=5, init_channels=16),
        tmp_path / "other.safetensors",
        preprocess=small_preprocess,
    )
    with pytest.raises(ParityError) as info:
        check_parity(
            art(exported, "onnx", "fp32"), other, VerifyOptions(shapes=[Shape(224, 224), Shape(96, 128, batch=2)])
        )
    checks = [m.check for m in info.value.mismatches]
    assert "source checkpoint sha256" in checks
    assert checks.count("max_abs") == 2  # both shapes reported, not just the first
    result = CliRunner().invoke(
        main, ["verify", str(art(exported, "tflite", "fp32")), "--reference", str(other), "--shapes", "224x224"]
    )
    assert result.exit_code == 1 and "FAILED" in result.output and "max_abs" in result.output


def test_coreml_spec_has_flexible_ranges_and_metadata(exported, tmp_path):
    from aestheticnet.export.coreml.spec import summarize_spec

    summary = summarize_spec(art(exported, "coreml", "fp32"))
    (inp,) = summary["inputs"]
    assert inp["name"] == "image" and inp["dtype"] == "FLOAT32"
    assert inp["range"] == [[1, 64], [3, 3], [32, 2048], [32, 2048]]
    assert summary["outputs"][0]["name"] == "distribution"
    assert summary["ops"]["conv"] > 10 and EMBED_KEY in summary["metadata"]
    assert "constexpr_affine_dequantize" in summarize_spec(art(exported, "coreml", "int8"))["ops"]
    result = CliRunner().invoke(
        main,
        [
            "verify",
            str(art(exported, "coreml", "fp32")),
            "--reference",
            str(exported[0]),
            "--json",
            str(tmp_path / "c.json"),
        ],
    )
    assert result.exit_code == 0, result.output
    if platform.system() != "Darwin":  # numbers from the MIL evaluator, and the report says so
        report = json.loads((tmp_path / "c.json").read_text())
        assert report["runtime"] == "mil-evaluator" and "not Core ML" in report["evaluated_by"]
        assert "evaluated by mil-evaluator" in result.output and len(report["shapes"]) == 5
        assert all(row["max_abs"] <= 1e-5 for row in report["shapes"])
        with pytest.raises(CoreMLUnavailableError, match="Core ML prediction needs macOS"):
            load_backend(art(exported, "coreml", "fp32"), coreml=CoreMLRunner.COREML)


def test_scorer_matches_pytorch_for_every_backend(exported, tiny_synth):
    paths = sorted((tiny_synth / "images").glob("*.jpg"))[:10]
    reference = Scorer(exported[0]).score_paths(paths)
    assert [r["path"] for r in reference] == [str(p) for p in paths]
    for fmt in ("onnx", "tflite", "coreml"):
        scored = Scorer(art(exported, fmt, "fp32"), batch_size=4).score_paths(paths)
        for a, b in zip(scored, reference):
            assert a["path"] == b["path"] and abs(a["mean"] - b["mean"]) < 1e-4 and abs(a["std"] - b["std"]) < 1e-4
            assert len(a["distribution"]) == 10 and abs(sum(a["distribution"]) - 1) < 1e-4


@pytest.mark.parametrize("fmt", ["safetensors", "onnx", "tflite", "coreml"])
def test_bad_inputs_name_what_was_expected(exported, fmt):
    path = exported[0] if fmt == "safetensors" else art(exported, fmt, "fp32")
    backend = load_backend(path)
    good = np.zeros((1, 3, 96, 128), np.float32)
    assert backend.run(good).shape == (1, 10)
    cases = [
        (good[0], r"expected rank 4 \(N, 3, H, W\)"),
        (np.zeros((1, 4, 96, 128), np.float32), r"expected 3 channels"),
        (np.zeros((1, 96, 128, 3), np.float32), r"looks NHWC"),
        (good.astype(np.float64), r"expected dtype float32, got float64"),
        (np.zeros((1, 3, 100, 128), np.float32), r"100x128 .* multiples of 32"),
        ([[1.0]], r"expected a numpy array"),
    ]
    for batch, message in cases:
        with pytest.raises(InputError, match=message):
            backend.run(batch)


def test_truncated_and_foreign_model_files_are_refused(exported, tmp_path):
    import shutil

    for fmt, suffix in (("onnx", ".onnx"), ("tflite", ".tflite")):
        data = art(exported, fmt, "fp32").read_bytes()
        cut = tmp_path / f"cut{suffix}"
        cut.write_bytes(data[: len(data) // 2])
        with pytest.raises(ModelFileError, match=f"truncated.*expected a{'n' if fmt == 'onnx' else ''} {suffix}"):
            load_backend(cut)
    with pytest.raises(ModelFileError, match="no 'TFL3' identifier"):
        (tmp_path / "x.tflite").write_bytes(b"not a model at all")
        load_backend(tmp_path / "x.tflite")
    with pytest.raises(ModelFileError, match=r"expected a file ending in \.safetensors, \.onnx, \.tflite"):
        load_backend(tmp_path / "model.pb")
    package = tmp_path / "cut.mlpackage"
    shutil.copytree(art(exported, "coreml", "fp32"), package)
    blob = package / "Data" / "com.apple.CoreML" / "weights" / "weight.bin"
    blob.write_bytes(blob.read_bytes()[:1000])
    with pytest.raises(ModelFileError, match="truncated"):
        load_backend(package)
    (package / "Manifest.json").unlink()
    with pytest.raises(ModelFileError, match="Manifest.json missing"):
        load_backend(package)


def test_failed_tflite_conversion_leaves_no_file(exported, tmp_path, monkeypatch):
    import onnx2tf

    from aestheticnet.export.errors import ExportError
    from aestheticnet.export.tflite.convert import convert_tflite

    src = art(exported, "onnx", "fp32")
    before = src.read_bytes()

    def broken(**kwargs):
        raise RuntimeError("converter exploded")

    monkeypatch.setattr(onnx2tf, "convert", broken)
    with pytest.raises(ExportError, match="TFLite conversion .* failed: RuntimeError: converter exploded"):
        convert_tflite(src, {"fp32": tmp_path / "m.fp32.tflite"})
    assert list(tmp_path.iterdir()) == [] and src.read_bytes() == before
