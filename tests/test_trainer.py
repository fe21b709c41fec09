"""Training: resume gives bit-identical weights, torchrun with two processes, evaluate and score commands."""

import json
import os
import subprocess
import sys

import pytest
import torch
from click.testing import CliRunner
from safetensors.torch import load_file

from aestheticnet.cli import main
from aestheticnet.models import load, read_metadata
from aestheticnet.train.config import TrainConfig
from aestheticnet.train.trainer import METRICS_FILE, train


def tiny_config(data, **kw):
    base = dict(
        data=str(data),
        group_by="challenge",
        layers=3,
        init_channels=4,
        epochs=3,
        batch_size=8,
        image_size=32,
        max_side=64,
        max_train_items=24,
        max_val_items=16,
        num_workers=0,
        lr=0.05,
        drop_path=0.2,
        auxiliary_weight=0.4,
        threads=1,
    )
    base.update(kw)
    return TrainConfig(**base)


@pytest.mark.parametrize("ema_decay", [0.0, 0.9])
def test_resume_after_interruption_is_bit_identical(tiny_synth, tmp_path, ema_decay):
    cfg = tiny_config(tiny_synth, ema_decay=ema_decay)
    train(cfg, tmp_path / "straight", progress=False)
    train(cfg, tmp_path / "resumed", progress=False, stop_after_epoch=1)
    assert json.loads((tmp_path / "resumed" / METRICS_FILE).read_text().splitlines()[-1])["epoch"] == 0
    mid = load_file(tmp_path / "resumed" / "last.safetensors")
    train(cfg, tmp_path / "resumed", resume=True, progress=False)
    a = load_file(tmp_path / "straight" / "last.safetensors")
    b = load_file(tmp_path / "resumed" / "last.safetensors")
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    lines = (tmp_path / "resumed" / METRICS_FILE).read_text().splitlines()
    assert [json.loads(ln)["epoch"] for ln in lines] == [0, 1, 2]
    # the resumed epochs did change the weights, so equality above is not vacuous
    assert any(not torch.equal(mid[k], b[k]) for k in b)


def test_resume_refuses_changed_config_and_missing_state(tiny_synth, tmp_path):
    cfg = tiny_config(tiny_synth, epochs=2)
    train(cfg, tmp_path / "run", progress=False, stop_after_epoch=1)
    with pytest.raises(ValueError, match="cannot resume with a different configuration.*lr"):
        train(cfg.replace(lr=0.2), tmp_path / "run", resume=True, progress=False)
    with pytest.raises(ValueError, match="already holds a run"):
        train(cfg, tmp_path / "run", progress=False)
    with pytest.raises(ValueError, match="does not exist"):
        train(cfg, tmp_path / "other", resume=True, progress=False)


def test_training_learns_and_writes_model_files(tiny_synth, tmp_path):
    cfg = tiny_config(tiny_synth, epochs=2, drop_path=0.0, auxiliary_weight=0.0)
    summary = train(cfg, tmp_path / "run", progress=False)
    assert summary["best"]["epoch"] >= 0
    meta = read_metadata(tmp_path / "run" / "best.safetensors")
    assert meta["extra"]["train_config"]["group_by"] == "challenge"
    assert meta["preprocess"]["size"] == 32
    model = load(tmp_path / "run" / "last.safetensors")
    assert model.config.layers == 3
    records = [json.loads(ln) for ln in (tmp_path / "run" / METRICS_FILE).read_text().splitlines()]
    assert all(set(r["val"]) >= {"srocc", "plcc", "accuracy", "emd_r1", "emd_r2"} for r in records)
    assert records[0]["train_images_per_s"] > 0


def test_ranking_loss_trains_on_pairs_of_one_photo_and_refuses_ungrouped_data(tiny_synth, tmp_path):
    common = dict(epochs=1, drop_path=0.0, auxiliary_weight=0.0)
    plain = train(tiny_config(tiny_synth, **common), tmp_path / "plain", progress=False)
    ranked = train(tiny_config(tiny_synth, rank_weight=3.0, **common), tmp_path / "ranked", progress=False)
    # Same seed and batches: the ranking term is the only difference, and the training images hold pairs of one photo.
    assert ranked["last"]["train_loss"] > plain["last"]["train_loss"]
    with pytest.warns(UserWarning, match="rank_weight=3.0.*its own group.*adds nothing"):
        by_id = train(
            tiny_config(tiny_synth, rank_weight=3.0, group_by="id", **common), tmp_path / "ids", progress=False
        )
    assert by_id["epochs_done"] == 1


def test_bad_config_values_are_named():
    with pytest.raises(ValueError, match="loss='l2'"):
        TrainConfig(loss="l2")
    with pytest.raises(ValueError, match="unknown TrainConfig key.*'epoch'"):
        TrainConfig.from_dict({"epoch": 3})


@pytest.mark.slow
def test_torchrun_two_processes(tiny_synth, tmp_path):
    out = tmp_path / "ddp"
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        "2",
        "-m",
        "aestheticnet.cli",
        "train",
        "--data",
        str(tiny_synth),
        "--out",
        str(out),
        "--group-by",
        "challenge",
        "--layers",
        "3",
        "--init-channels",
        "4",
        "--epochs",
        "2",
        "--batch-size",
        "4",
        "--image-size",
        "32",
        "--max-side",
        "64",
        "--max-train-items",
        "16",
        "--max-val-items",
        "8",
        "--num-workers",
        "0",
        "--threads",
        "1",
        "--quiet",
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = (out / METRICS_FILE).read_text().splitlines()
    assert [json.loads(ln)["epoch"] for ln in lines] == [0, 1]  # rank 0 alone wrote, once per epoch
    assert load(out / "last.safetensors").config.layers == 3


def test_cli_train_evaluate_score(tiny_synth, tmp_path):
    runner = CliRunner()
    out = tmp_path / "cli"
    r = runner.invoke(
        main,
        [
            "train",
            "--data",
            str(tiny_synth),
            "--out",
            str(out),
            "--group-by",
            "challenge",
            "--layers",
            "3",
            "--init-channels",
            "4",
            "--epochs",
            "1",
            "--batch-size",
            "8",
            "--image-size",
            "32",
            "--max-side",
            "64",
            "--max-train-items",
            "16",
            "--max-val-items",
            "8",
            "--num-workers",
            "0",
            "--quiet",
        ],
    )
    assert r.exit_code == 0, r.output
    ev = tmp_path / "eval"
    r = runner.invoke(main, ["evaluate", str(out / "best.safetensors"), "--data", str(tiny_synth), "--out", str(ev)])
    assert r.exit_code == 0, r.output
    report = json.loads((ev / "metrics.json").read_text())
    assert report["split"] == "val" and report["items"] > 0
    assert {"accuracy", "plcc", "srocc", "emd_r1", "emd_r2", "std_plcc", "std_srocc"} <= set(report["metrics"])
    assert (ev / "score_distributions.png").stat().st_size > 1000 and (ev / "scatter.png").exists()

    bad = tmp_path / "imgs"
    bad.mkdir()
    (bad / "broken.jpg").write_text("not an image")
    good = sorted((tiny_synth / "images").glob("*.jpg"))[:3]
    r = runner.invoke(
        main,
        [
            "score",
            *map(str, good),
            str(bad),
            "--model",
            str(out / "best.safetensors"),
            "--format",
            "json",
            "--out",
            str(tmp_path / "s.json"),
            "--quiet",
        ],
    )
    assert r.exit_code == 1
    assert "broken.jpg" in r.output and "1 of 4 files could not be scored" in r.output
    scores = json.loads((tmp_path / "s.json").read_text())
    assert [s["path"] for s in scores["scores"]] == list(map(str, good))
    assert all(1 <= s["mean"] <= 10 and abs(sum(s["distribution"]) - 1) < 1e-4 for s in scores["scores"])
    r = runner.invoke(main, ["train", "--data", str(tiny_synth), "--out", str(tmp_path / "x"), "--loss", "l1"])
    assert r.exit_code == 2 and "loss='l1'" in r.output


def test_synthetic_split_by_photo(tiny_synth):
    import csv

    from aestheticnet.train.data import SplitOptions, open_split, preprocess_for

    photo_of = {r["image_id"]: r["photo"] for r in csv.DictReader(open(tiny_synth / "groups.csv"))}
    pre = preprocess_for("aestheticnet_star", 32, 64)
    splitting = SplitOptions(seed=0, val_fraction=0.25, group_by="challenge")
    tr = open_split(str(tiny_synth), "train", pre, splitting, train=True)
    va = open_split(str(tiny_synth), "val", pre, splitting, train=False)
    train_photos, val_photos = {photo_of[i] for i in tr.ids}, {photo_of[i] for i in va.ids}
    assert train_photos and val_photos and not (train_photos & val_photos)
    assert len(tr) + len(va) == len(photo_of)


def test_baseline_trains_from_the_same_config_and_aestheticnet_refuses_its_width(tiny_synth, tmp_path):
    # The architecture fields (genotype, layers, ...) are AestheticNet's; the baseline is built without them.
    cfg = tiny_config(tiny_synth, variant="nima_mobilenet_v2", width=0.35, input_norm="mscn", epochs=1)
    train(cfg, tmp_path / "nima", progress=False)
    net = load(tmp_path / "nima" / "last.safetensors")
    assert net.variant == "nima_mobilenet_v2" and (net.config.width, net.config.input_norm) == (0.35, "mscn")
    with pytest.raises(ValueError, match="variant 'aestheticnet_star' has no width"):
        train(tiny_config(tiny_synth, width=0.5), tmp_path / "star", progress=False)
    with pytest.raises(ValueError, match="variant 'nima_mobilenet_v2' has no cbam"):
        train(tiny_config(tiny_synth, variant="nima_mobilenet_v2", cbam=False), tmp_path / "no_cbam", progress=False)
