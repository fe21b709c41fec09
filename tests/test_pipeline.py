"""Pipeline: config validated before work; killed during training, it resumes and skips finished steps."""

import dataclasses
import json
import os
import platform
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from aestheticnet.pipeline.config import PipelineConfig, load_pipeline_config


def write(tmp_path, text):
    p = tmp_path / "pipeline.toml"
    p.write_text(textwrap.dedent(text))
    return p


def test_default_config_is_valid_and_round_trips():
    cfg = PipelineConfig()
    assert PipelineConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))).to_dict() == cfg.to_dict()
    assert cfg.search_config().resolution == 32


@pytest.mark.parametrize(
    "toml,message",
    [
        ("[search]\nepochs_scal = 0.1\n", "unknown key search.epochs_scal"),
        ("[train]\nepoch = 3\n", "unknown key train.epoch"),
        ("[deploy]\nx = 1\n", r"unknown section\(s\) \['deploy'\]"),
        ("[train]\nlr = -1.0\n", r"\[train\].*lr=-1.0"),
        ("[search]\nresolution = 30\n", r"\[search\].*resolution"),
        ("[export]\nformats = ['onnx', 'tflite2']\n", r"export.formats: unknown export format\(s\) \['tflite2'\]"),
        ("[bench]\nshapes = ['224x200']\n", "bench.shapes '224x200'"),
        ("[train]\ndata = 'x'\n", "train.data is set by the pipeline"),
        ("[verify]\nbatch = 'three'\n", "verify.batch must be a number"),
        ("[data]\npath = '/no/such/folder'\n", "data.path='/no/such/folder' does not exist"),
        ("[search\n", "not valid TOML"),
        ("[search]\npreset = 'phone'\n", r"\[search\].*preset 'phone'.*set latency_table"),
        ("[train.per_variant.aestheticnet_star]\nrank_wieght = 1.0\n", r"per_variant.aestheticnet_star.*rank_wieght"),
        ("[train.per_variant.aestheticnet_star]\ndata = 'x'\n", r"per_variant.aestheticnet_star.*\['data'\]"),
        ("[train.per_variant.nima]\nlr = 0.1\n", r"per_variant.nima must be a table for one of"),
    ],
)
def test_bad_config_fails_naming_the_key(tmp_path, toml, message):
    with pytest.raises(ValueError, match=message):
        load_pipeline_config(write(tmp_path, toml))


def test_per_variant_settings_apply_to_their_variant_only(tmp_path):
    cfg = PipelineConfig()
    star = cfg.train_config("aestheticnet_star", "d", "PDARTS")
    assert (star.rank_weight, star.photos_per_batch) == (3.0, 4)
    assert cfg.train_config("aestheticnet", "d", "PDARTS").rank_weight == 0.0
    cfg = load_pipeline_config(write(tmp_path, "[train.per_variant.aestheticnet]\nrank_weight = 0.5\nepochs = 2\n"))
    plain = cfg.train_config("aestheticnet", "d", "PDARTS")
    assert (plain.rank_weight, plain.epochs) == (0.5, 2)
    star = cfg.train_config("aestheticnet_star", "d", "PDARTS")
    assert (star.rank_weight, star.epochs) == (3.0, 8)  # a table adds to the defaults
    # ... and a variant's table to that variant's defaults: the baseline keeps the rate it can train at
    cfg = load_pipeline_config(write(tmp_path, "[train.per_variant.nima_mobilenet_v2]\nwidth = 0.5\n"))
    nima = cfg.train_config("nima_mobilenet_v2", "d", "PDARTS")
    assert (nima.width, nima.lr) == (0.5, 0.02) and cfg.train_config("aestheticnet_star", "d", "PDARTS").lr == 0.1


def test_search_preset_settings_and_overrides_meet(tmp_path):
    cfg = load_pipeline_config(write(tmp_path, "[search]\npreset = 'phone'\nlatency_table = 't.json'\n"))
    search = cfg.search_config()
    assert search.preset == "phone" and search.latency_table == "t.json" and search.latency_weight > 0
    assert search.resolution == 32  # the demo's overrides still apply


def test_cli_seed_sets_the_search_and_training_seeds(tmp_path, monkeypatch):
    from click.testing import CliRunner

    import aestheticnet.pipeline.run as run
    from aestheticnet.cli import main

    seen = {}
    monkeypatch.setattr(run, "run_pipeline", lambda cfg, out: seen.update(cfg=cfg))
    r = CliRunner().invoke(main, ["pipeline", "--seed", "3", "--out", str(tmp_path / "out")])
    assert r.exit_code == 0, r.output
    cfg = seen["cfg"]
    assert cfg.search_config().seed == 3 and cfg.train_config("aestheticnet_star", "d", "PDARTS").seed == 3
    assert cfg.train_config("aestheticnet_star", "d", "PDARTS").input_norm == "mscn"  # the demo's settings kept


def test_cli_rejects_bad_config_before_any_work(tmp_path):
    from click.testing import CliRunner

    from aestheticnet.cli import main

    out = tmp_path / "out"
    r = CliRunner().invoke(
        main, ["pipeline", "--config", str(write(tmp_path, "[train]\nbatchsize = 3\n")), "--out", str(out)]
    )
    assert r.exit_code == 2 and "unknown key train.batchsize" in r.output
    assert not out.exists()


RUNNER = """
import sys
from aestheticnet.pipeline.config import load_pipeline_config
from aestheticnet.pipeline.run import run_pipeline
run_pipeline(load_pipeline_config(sys.argv[1]), sys.argv[2], stop_after="evaluate")
"""


@pytest.mark.slow
def test_killed_during_training_resumes_and_skips_finished_steps(tiny_synth, tmp_path):
    cfg = write(
        tmp_path,
        f"""
        [data]
        path = "{tiny_synth}"
        [search]
        enabled = false
        genotype = "DARTS_V2"
        [train]
        variants = ["aestheticnet_star"]
        layers = 3
        init_channels = 4
        image_size = 32
        max_side = 64
        epochs = 4
        batch_size = 8
        max_train_items = 48
        max_val_items = 8
        num_workers = 0
        threads = 1
        [export]
        variant = "aestheticnet_star"
    """,
    )
    out = tmp_path / "out"
    metrics = out / "train" / "aestheticnet_star" / "metrics.jsonl"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-c", RUNNER, str(cfg), str(out)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    deadline = time.time() + 240
    while time.time() < deadline and proc.poll() is None:
        if metrics.exists() and len(metrics.read_text().splitlines()) >= 1:
            break
        time.sleep(0.2)
    assert proc.poll() is None, "pipeline ended before it could be interrupted: " + proc.stdout.read()[-2000:]
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    done_before = len(metrics.read_text().splitlines())
    assert 1 <= done_before < 4
    assert not (out / "steps" / "train_aestheticnet_star.json").exists()

    second = subprocess.run(
        [sys.executable, "-c", RUNNER, str(cfg), str(out)], env=env, capture_output=True, text=True, timeout=600
    )
    assert second.returncode == 0, second.stdout[-3000:] + second.stderr[-3000:]
    log = second.stdout
    assert "[data] up to date, skipped" in log and "[search] up to date, skipped" in log
    assert "[train_aestheticnet_star] running" in log
    epochs = [json.loads(ln)["epoch"] for ln in metrics.read_text().splitlines()]
    assert epochs == [0, 1, 2, 3]  # resumed: the finished epochs were not run again
    third = subprocess.run(
        [sys.executable, "-c", RUNNER, str(cfg), str(out)], env=env, capture_output=True, text=True, timeout=300
    )
    assert "[train_aestheticnet_star] up to date, skipped" in third.stdout
    assert (out / "report" / "report.md").exists() and (out / "report" / "report.html").exists()
    report = (out / "report" / "report.md").read_text()
    # The ranking check ran on the validation photos' ladders and the report shows it next to SROCC.
    ladders = json.loads((out / "evaluate" / "aestheticnet_star" / "ladders" / "ladders.json").read_text())
    assert ladders["photos"] >= 1 and set(ladders["per_ladder"]) == {"blur", "jpeg", "noise", "resample"}
    assert "| model | pristine crops | blur | jpeg | noise | resample | mean |" in report
    if ".mlpackage" in report and platform.system() != "Darwin":  # CoreML parity, and who computed it
        assert "mil-evaluator" in report and "not by Core ML on a device" in report


@pytest.mark.slow
def test_export_verify_bench_and_report_take_executorch(tiny_synth, tmp_path):
    pytest.importorskip("executorch")
    import torch

    from aestheticnet.models import create_model, save
    from aestheticnet.pipeline.deploy import bench_step, export_step, verify_step
    from aestheticnet.pipeline.report import write_report
    from aestheticnet.pipeline.steps import StepContext

    torch.manual_seed(0)
    checkpoint = save(create_model("aestheticnet_star", layers=3, init_channels=4), tmp_path / "star.safetensors")
    cfg = PipelineConfig.from_dict(
        {
            "export": {"formats": ["executorch"], "precisions": ["fp32"]},  # int8: tests/test_executorch_export.py
            "verify": {"shapes": ["64x96", "96x64"], "samples": 12},
            "bench": {"threads": [1], "shapes": ["64x64"], "runs": 2, "warmup": 0},
        }
    )
    ctx = StepContext(tmp_path / "out", log=lambda _m: None)
    steps = {"export": export_step(cfg, ctx, checkpoint, str(tiny_synth), {})}
    steps["verify"] = verify_step(cfg, ctx, checkpoint, str(tiny_synth), steps["export"])
    steps["bench"] = bench_step(cfg, ctx, steps["export"])
    assert steps["verify"].result["passed"], steps["verify"].result
    assert [r["artifact"] for r in steps["verify"].result["reports"]] == ["star.fp32.pte"]
    assert [r["model"] for r in steps["bench"].result["rows"]] == ["star.fp32.pte"]
    assert all(r["backend"] == "executorch" and r["p50_ms"] for r in steps["bench"].result["rows"])
    summary = {
        "out": str(ctx.out_dir),
        "wall_seconds": 1.0,
        "steps": {
            "data": {"skipped": True, "seconds": 0.0, "result": {"path": str(tiny_synth)}},
            "search": {"skipped": True, "seconds": 0.0, "result": {}},
            **{k: {"skipped": s.skipped, "seconds": s.seconds, "result": s.result} for k, s in steps.items()},
        },
    }
    text = Path(write_report(cfg, ctx.out_dir, summary)["markdown"]).read_text()
    parity = text.split("## Parity with PyTorch")[1].split("##")[0]
    latency = text.split("## Latency on this machine")[1]
    assert "| star.fp32.pte | PASS |" in parity and "| star.fp32.pte | executorch |" in latency


def test_concurrent_runs_needs_a_core_per_variant_and_the_switch():
    from aestheticnet.pipeline.training import concurrent_runs

    assert concurrent_runs(2, True, cpus=2) == 2 and concurrent_runs(3, True, cpus=2) == 2
    assert concurrent_runs(2, False, cpus=8) == 1 and concurrent_runs(2, True, cpus=1) == 1
    assert concurrent_runs(1, True, cpus=8) == 1


@pytest.mark.slow
def test_variants_train_side_by_side_and_resume_with_another_thread_count(tiny_synth, tmp_path, capfd):
    from aestheticnet.pipeline.run import run_pipeline
    from aestheticnet.train.config import TrainConfig
    from aestheticnet.train.trainer import resume_differences

    cfg = load_pipeline_config(
        write(
            tmp_path,
            f"""
        [data]
        path = "{tiny_synth}"
        [search]
        enabled = false
        genotype = "DARTS_V2"
        [train]
        variants = ["aestheticnet", "aestheticnet_star"]
        layers = 3
        init_channels = 4
        image_size = 32
        max_side = 64
        train_crop = 0
        epochs = 2
        batch_size = 8
        max_train_items = 24
        max_val_items = 8
        [export]
        variant = "aestheticnet_star"
    """,
        )
    )
    lines: list[str] = []
    run_pipeline(cfg, tmp_path / "out", log=lines.append, stop_after="evaluate", cpus=2)
    printed = capfd.readouterr().out
    for variant in ("aestheticnet", "aestheticnet_star"):
        run = tmp_path / "out" / "train" / variant
        assert (run / "best.safetensors").exists()
        assert json.loads((run / "train_config.json").read_text())["threads"] == 1  # its share of 2 cores
        assert f"[train_{variant}] epoch 2/2" in printed  # one line per epoch, labelled
        assert f"[evaluate_{variant}] done" in "\n".join(lines)
    saved = json.loads((tmp_path / "out" / "train" / "aestheticnet" / "train_config.json").read_text())
    assert not resume_differences(saved, TrainConfig(**{**saved, "threads": None}))
    assert resume_differences(saved, TrainConfig(**{**saved, "lr": 1.0})) == ["lr"]


@pytest.mark.slow
def test_baseline_in_variants_puts_accuracy_against_latency_in_the_report(tiny_synth, tmp_path):
    from aestheticnet.pipeline.run import run_pipeline
    from aestheticnet.pipeline.tradeoff import wants_tradeoff

    cfg = load_pipeline_config(
        write(
            tmp_path,
            f"""
        [data]
        path = "{tiny_synth}"
        [search]
        enabled = false
        [train]
        variants = ["aestheticnet_star", "nima_mobilenet_v2"]
        parallel = false
        layers = 3
        init_channels = 4
        image_size = 32
        max_side = 64
        train_crop = 0
        epochs = 1
        batch_size = 8
        max_train_items = 16
        max_val_items = 8
        [train.per_variant.nima_mobilenet_v2]
        width = 0.35
        [export]
        formats = ["onnx"]
        precisions = ["fp32"]
        [verify]
        shapes = ["64x64"]
        samples = 8
        [bench]
        formats = ["onnx"]
        precisions = ["fp32"]
        threads = [1]
        shapes = ["64x64"]
        runs = 3
        warmup = 1
    """,
        )
    )
    star_only = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, variants=("aestheticnet_star",)))
    assert wants_tradeoff(cfg) and not wants_tradeoff(star_only)
    summary = run_pipeline(cfg, tmp_path / "out", log=lambda _m: None, cpus=1)
    tradeoff = summary["steps"]["tradeoff"]["result"]
    assert {p["name"]: p["baseline"] for p in tradeoff["points"]} == {
        "aestheticnet_star": False,
        "nima_mobilenet_v2": True,
    }
    assert all(p["latency_ms"] > 0 for p in tradeoff["points"])
    report = Path(summary["report"]["markdown"])
    section = report.read_text().split("## Accuracy against latency")[1]
    assert "![accuracy_latency](../tradeoff/accuracy_latency.png)" in section
    assert (report.parent / "../tradeoff/accuracy_latency.png").resolve().stat().st_size > 5000
    assert tradeoff["sentence"].startswith("At equal latency: aestheticnet_star (") and tradeoff["sentence"] in section
    nima = json.loads((tmp_path / "out" / "train" / "nima_mobilenet_v2" / "train_config.json").read_text())
    assert nima["width"] == 0.35


def test_train_and_score_reports_the_last_epoch_and_does_not_train_again(tiny_synth, tmp_path, monkeypatch):
    from test_trainer import tiny_config

    from aestheticnet.pipeline import scored_training, train_and_score

    cfg = tiny_config(tiny_synth, epochs=1, max_train_items=16)
    first = train_and_score(cfg, tmp_path / "run", progress=False)
    assert first["config"] == cfg.to_dict() and first["items"] > 0 and -1 <= first["metrics"]["srocc"] <= 1
    assert set(first["ladders"]["per_ladder"]) == {"blur", "jpeg", "noise", "resample"}

    def refuse(*_a, **_k):
        raise AssertionError("trained again")

    monkeypatch.setattr(scored_training, "train", refuse)
    again = train_and_score(cfg, tmp_path / "run", progress=False)
    assert json.dumps(again, sort_keys=True) == json.dumps(first, sort_keys=True)  # as saved (NaN, lists)
    with pytest.raises(ValueError, match="trained with other epochs"):
        train_and_score(tiny_config(tiny_synth, epochs=2, max_train_items=16), tmp_path / "run", progress=False)
