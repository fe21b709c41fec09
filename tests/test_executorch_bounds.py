"""ExecuTorch's input bounds, which its programs plan memory for: by default the checkpoint's preprocessing (batch 1,
the longest side it produces), others with --max-batch / --max-side; recorded in the manifest with the planned
bytes; inputs outside them refused by name at run time; verify skips its own default shapes outside them (and says
so) but refuses shapes asked for; bench shows the planned memory."""

import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from aestheticnet.artifacts import Format, ManifestError, Precision
from aestheticnet.artifacts.manifest import read_manifest, sidecar_path
from aestheticnet.cli import main
from aestheticnet.data.preprocess import Preprocess
from aestheticnet.export.dynamic import DynamicSpec, planned_spec
from aestheticnet.export.errors import ExportError
from aestheticnet.export.options import ExportOptions
from aestheticnet.sizes import Shape

# The demo's preprocessing: photos at 192 px, sides up to 256.
DEMO_PRE = {"policy": "aspect", "size": 192, "max_side": 256, "multiple": 32}
DEFAULT_BOUNDS = {"batch": [1, 1], "height": [32, 256], "width": [32, 256]}
WIDE_BOUNDS = {"batch": [1, 8], "height": [32, 1024], "width": [32, 1024]}


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    from aestheticnet.models import create_model, save

    torch.manual_seed(0)
    model = create_model("aestheticnet_star", layers=3, init_channels=4)
    return save(model, tmp_path_factory.mktemp("bounds") / "tiny.safetensors", preprocess=DEMO_PRE)


@pytest.mark.parametrize(
    ("pre", "longest"),
    [
        ({"policy": "fixed", "size": 224}, 224),
        ({"policy": "aspect", "size": 224, "max_side": 640}, 640),
        (DEMO_PRE, 256),
        ({"policy": "aspect", "size": 224, "max_side": 300}, 288),  # the preprocessing rounds its cap down
    ],
)
def test_longest_side_is_the_longest_the_preprocessing_produces(pre, longest):
    preprocess = Preprocess.from_dict(pre)
    sides = (1, 7, 31, 96, 191, 192, 255, 300, 333, 640, 1000, 4000)
    produced = max(max(preprocess.output_size(w, h)) for w in sides for h in sides)
    assert preprocess.longest_side == produced == longest


def test_bounds_follow_the_preprocessing_unless_asked():
    spec = DynamicSpec()
    assert planned_spec(spec, 256).bounds() == DEFAULT_BOUNDS
    assert planned_spec(spec, 224).bounds() == {"batch": [1, 1], "height": [32, 224], "width": [32, 224]}
    # a side that is no multiple of the model's input multiple is rounded up to one
    assert planned_spec(DynamicSpec(multiple=64, min_side=64), 288).bounds()["height"] == [64, 320]
    assert planned_spec(spec, 256, max_batch=8, max_side=1024).bounds() == WIDE_BOUNDS
    assert planned_spec(spec, 256, max_side=512).bounds()["batch"] == [1, 1]


def test_bad_bounds_are_refused_by_name():
    with pytest.raises(ExportError, match="--max-side 300: not a multiple of 64, the model's input multiple"):
        planned_spec(DynamicSpec(multiple=64, min_side=64), 256, max_side=300)
    with pytest.raises(ExportError, match="--max-side 224 is below 256, the longest side the checkpoint's pre"):
        planned_spec(DynamicSpec(), 256, max_side=224)
    with pytest.raises(ExportError, match="--max-batch 9 / --max-side 256: at most a batch of 8"):
        planned_spec(DynamicSpec(max_batch=8), 256, max_batch=9)
    for kwargs, message in (
        ({"max_batch": 0}, "--max-batch 0: expected an integer from 1 to 64"),
        ({"max_batch": True}, "--max-batch True: expected an integer"),
        ({"max_side": 4096}, "--max-side 4096: expected an integer from 32 to 2048"),
        ({"max_side": 100}, "--max-side 100: expected a multiple of 32"),
        ({"max_side": 256.0}, "--max-side 256.0: expected an integer"),
    ):
        with pytest.raises(ExportError, match=message):
            ExportOptions(**kwargs)


def test_static_dims_and_examples_stay_inside_the_bounds():
    one = DynamicSpec(max_batch=1, max_side=128)
    assert 0 not in one.dims() and {2, 3} <= set(one.dims())  # a Dim needs min < max: batch 1 is static
    assert one.example_size == (128, 128) and one.example_batch == 1
    assert DynamicSpec().example_size == (224, 224) and DynamicSpec().example_batch == 2
    assert DynamicSpec(max_side=64).example_size == (64, 64)  # two multiples: one would be specialised
    assert set(DynamicSpec(max_side=32).dims()) == {0}  # one multiple: static H and W


def test_plan_bounds_executorch_only(checkpoint, tmp_path):
    from aestheticnet.export.plan import make_plan

    plan = make_plan(checkpoint, [Format.ONNX, Format.EXECUTORCH], [Precision.FP32], tmp_path, ExportOptions())
    assert plan.options.spec.bounds() == DynamicSpec().bounds()  # ONNX, TFLite and CoreML keep theirs
    assert plan.planned_spec.bounds() == DEFAULT_BOUNDS
    asked = ExportOptions(max_batch=8, max_side=1024)
    assert make_plan(checkpoint, [Format.EXECUTORCH], [Precision.FP32], tmp_path, asked).planned_spec.bounds() == (
        WIDE_BOUNDS
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--max-side", "100"], "--max-side 100: expected a multiple of 32"),
        (["--max-side", "224"], "--max-side 224 is below 256, the longest side the checkpoint's preprocessing"),
        (["--max-batch", "0"], "--max-batch 0: expected an integer from 1 to 64"),
    ],
)
def test_export_cli_refuses_bad_bounds_before_any_work(checkpoint, tmp_path, args, message):
    result = CliRunner().invoke(
        main, ["export", str(checkpoint), "--format", "executorch", "--out", str(tmp_path), *args]
    )
    assert result.exit_code == 2 and message in result.output, result.output
    assert not list(tmp_path.iterdir())


def test_pipeline_config_takes_bounds_by_name():
    from aestheticnet.pipeline.config import ExportSection, PipelineConfig

    config = PipelineConfig.from_dict({"export": {"max_batch": 2, "max_side": 512}})
    assert (config.export.max_batch, config.export.max_side) == (2, 512)
    assert ExportSection().max_batch == ExportSection().max_side == 0  # the preprocessing's bounds
    with pytest.raises(ValueError, match="export.max_side=100: 0 .* or a multiple of 32 up to 2048"):
        ExportSection(max_side=100)
    with pytest.raises(ValueError, match="export.max_batch=-1"):
        ExportSection(max_batch=-1)


# ---- exported programs --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def programs(checkpoint, tiny_synth):
    """The tiny model as ExecuTorch programs: fp32 and int8 with the default bounds, fp32 with batch 8 and sides up
    to 1024 (through the command line)."""
    pytest.importorskip("executorch")
    from aestheticnet.export import export_checkpoint

    out = checkpoint.parent
    options = ExportOptions(data=tiny_synth, calibration_samples=8)
    export_checkpoint(
        checkpoint, [Format.EXECUTORCH], [Precision.FP32, Precision.INT8], out / "default", options, log=None
    )
    args = ["export", str(checkpoint), "--format", "executorch", "--out", str(out / "wide")]
    result = CliRunner().invoke(main, [*args, "--max-batch", "8", "--max-side", "1024"])
    assert result.exit_code == 0, result.output
    return {
        "fp32": out / "default" / "tiny.fp32.pte",
        "int8": out / "default" / "tiny.int8.pte",
        "wide": out / "wide" / "tiny.fp32.pte",
    }


@pytest.mark.slow
def test_bounds_and_planned_memory_are_recorded(programs):
    from aestheticnet.artifacts.embedded import read_embedded

    for name, path in programs.items():
        side = json.loads(sidecar_path(path).read_text())
        assert side["input"]["dynamic"] == (WIDE_BOUNDS if name == "wide" else DEFAULT_BOUNDS), name
        assert read_embedded(path)["input"]["dynamic"] == side["input"]["dynamic"]
        assert side["export"]["planned_memory_bytes"] == _planned_in_program(path) > 0
    note = json.loads(sidecar_path(programs["fp32"]).read_text())["export"]["bounds_note"]
    assert "batch 1 and the longest side the checkpoint's preprocessing produces" in note
    note = json.loads(sidecar_path(programs["wide"]).read_text())["export"]["bounds_note"]
    assert "max_batch 8, max_side 1024" in note


def _planned_in_program(path) -> int:
    from executorch.exir._serialize._program import deserialize_pte_binary

    plans = deserialize_pte_binary(path.read_bytes()).program.execution_plan
    (forward,) = [p for p in plans if p.name == "forward"]
    return sum(forward.non_const_buffer_sizes[1:])


@pytest.mark.slow
def test_planned_memory_is_far_smaller_with_the_default_bounds(programs):
    small = read_manifest(programs["fp32"]).export["planned_memory_bytes"]
    wide = read_manifest(programs["wide"]).export["planned_memory_bytes"]
    assert wide >= 8 * 3 * 1024 * 1024 * 4  # the largest input alone
    assert small * 50 < wide, (small, wide)


@pytest.mark.slow
def test_runtime_refuses_inputs_outside_the_bounds_by_name(programs):
    from aestheticnet.runtime import InputError, load

    backend = load(programs["fp32"])
    assert backend.run(np.zeros((1, 3, 256, 192), np.float32)).shape == (1, 10)
    with pytest.raises(InputError, match=r"batch 2 is outside the program's bounds \[1, 1\].*--max-batch"):
        backend.run(np.zeros((2, 3, 64, 64), np.float32))
    with pytest.raises(InputError, match=r"height 288 is outside the program's bounds \[32, 256\]"):
        backend.run(np.zeros((1, 3, 288, 96), np.float32))
    assert load(programs["wide"]).run(np.zeros((3, 3, 64, 1024), np.float32)).shape == (3, 10)


@pytest.mark.slow
def test_scorer_feeds_a_one_image_program_one_image_per_call(programs, checkpoint):
    from aestheticnet.runtime import Scorer

    images = [np.random.default_rng(i).standard_normal((3, 192, 256)).astype(np.float32) for i in range(3)]
    scorer = Scorer(programs["fp32"])  # batches of 8 by default: equal shapes would go together
    assert scorer.batch_size == 1 and Scorer(programs["wide"]).batch_size == 8
    got = [r["mean"] for r in scorer.score_arrays(images)]
    want = [r["mean"] for r in Scorer(checkpoint).score_arrays(images)]
    assert np.allclose(got, want, atol=1e-4), (got, want)


@pytest.mark.slow
def test_verify_skips_its_default_shapes_outside_the_bounds_and_reports_them(programs, checkpoint):
    from aestheticnet.export.verify import OutsideBounds, VerifyOptions, format_table, verify_artifact

    assert VerifyOptions().outside_bounds == OutsideBounds.SKIP
    report = verify_artifact(programs["fp32"], checkpoint)
    assert report.passed, report.mismatches
    status = {row["shape"]: (row["status"], row.get("reason")) for row in report.shapes}
    assert status == {
        "1x3x224x224": ("ok", None),
        "1x3x320x256": ("skipped", "height 320 is outside 32..256"),
        "1x3x512x384": ("skipped", "height 512 is outside 32..256"),
        "1x3x96x640": ("skipped", "width 640 is outside 32..256"),
        "3x3x224x224": ("skipped", "batch 3 is outside 1..1"),
    }
    assert any("skipped, outside the bounds" in n and "3x224x224 (batch 3" in n for n in report.notes)
    assert "skipped (width 640 is outside 32..256)" in format_table(report)
    result = CliRunner().invoke(main, ["verify", str(programs["fp32"]), "--reference", str(checkpoint)])
    assert result.exit_code == 0 and "skipped (batch 3 is outside 1..1)" in result.output, result.output


@pytest.mark.slow
def test_verify_refuses_shapes_asked_for_outside_the_bounds(programs, checkpoint):
    from aestheticnet.export.verify import OutsideBounds, VerifyOptions, verify_artifact

    asked = VerifyOptions(shapes=[Shape(224, 224), Shape(224, 224, batch=3)])
    assert asked.outside_bounds == OutsideBounds.REFUSE
    with pytest.raises(ManifestError, match=r"--shapes 3x224x224: batch 3 is outside 1\.\.1, the range this art"):
        verify_artifact(programs["fp32"], checkpoint, asked)
    args = ["verify", str(programs["fp32"]), "--reference", str(checkpoint), "--shapes", "224x224,96x640"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2 and "--shapes 96x640: width 640 is outside 32..256" in result.output, result.output
    # skipping asked for explicitly: with every shape outside, the largest the bounds allow is checked instead
    skip = VerifyOptions(shapes=[Shape(320, 320)], outside_bounds=OutsideBounds.SKIP)
    report = verify_artifact(programs["fp32"], checkpoint, skip)
    assert report.passed and [r["status"] for r in report.shapes] == ["skipped", "ok"], report.shapes
    assert report.shapes[1]["shape"] == "1x3x256x256" and "checked at their largest, 256x256" in report.notes[-1]


@pytest.mark.slow
def test_int8_with_the_default_bounds_verifies_on_real_images(programs, checkpoint, tiny_synth):
    from aestheticnet.export.verify import VerifyOptions, verify_artifact

    options = VerifyOptions(shapes=[Shape(96, 128)], data=tiny_synth, samples=12)
    report = verify_artifact(programs["int8"], checkpoint, options)
    assert report.passed and report.real is not None, report.mismatches


@pytest.mark.slow
def test_pipeline_verifies_each_shape_at_the_batch_the_artifact_takes(programs):
    from aestheticnet.pipeline.config import PipelineConfig
    from aestheticnet.pipeline.deploy import _verify_shapes

    cfg = PipelineConfig()
    assert {s.batch for s in _verify_shapes(cfg, programs["fp32"])} == {1}
    assert {s.batch for s in _verify_shapes(cfg, programs["wide"])} == {cfg.verify.batch}


@pytest.mark.slow
def test_bench_shows_the_planned_memory(programs, tmp_path):
    from aestheticnet.bench.harness import BenchSettings, run_benchmark
    from aestheticnet.bench.report import markdown_report

    planned = read_manifest(programs["fp32"]).export["planned_memory_bytes"]
    report = run_benchmark([programs["fp32"]], BenchSettings(shapes=(Shape(224, 224),), runs=2, warmup=0))
    (row,) = report["results"]
    assert row["ok"] and row["planned_memory_bytes"] == planned, row
    markdown = markdown_report(report)
    assert "| planned MB |" in markdown and f"| {planned / 2**20:.2f} |" in markdown
    assert "Planned MB: the memory an ExecuTorch program's export planned" in markdown
