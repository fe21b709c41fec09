"""End-to-end search on tens of images at 32 px: outputs, resume mid-stage, divergence, second order, CLI."""

import json
import time

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from torch.utils.data import Dataset

from aestheticnet.models import create_model
from aestheticnet.nas.genotypes import Genotype
from aestheticnet.distributed import DistContext
from aestheticnet.nas.active_ops import full_space
from aestheticnet.nas.bilevel import BilevelStepper, SearchDivergedError, build_supernet
from aestheticnet.nas.latency import EdgeCosts
from aestheticnet.nas.latency_penalty import ExpectedLatency
from aestheticnet.nas.operations import PRIMITIVES
from aestheticnet.nas.strategy import SearchConfig, StageSpec
from aestheticnet.state import StateKind, load_state
from aestheticnet.train.search import STATE_FILE, run_search

# The paper's proportions, shrunk: 3 stages, 8 -> 5 -> 2 ops, 2 epochs each of which 1 is weights-only.
TINY_STAGES = (StageSpec(3, 8, 2, 1, 0.1), StageSpec(4, 5, 2, 1, 0.4), StageSpec(5, 2, 2, 1, 0.7))


def tiny_config(**changes) -> SearchConfig:
    base = dict(stages=TINY_STAGES, preset="tiny", resolution=32, init_channels=4, batch_size=8, proxy_fraction=1.0)
    return SearchConfig(**{**base, **changes})


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    # Tiny convolutions: one thread beats two contended ones on a shared machine, and keeps runs comparable.
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    """Tens of images of the synthetic default (2 photos, 3 distortions: 27 images)."""
    from aestheticnet.data.synthetic import build_synthetic

    out = tmp_path_factory.mktemp("search_data") / "data"
    build_synthetic(
        out,
        seed=0,
        workers=1,
        progress=False,
        n_crops_per_photo=1,
        photos=("chelsea", "camera"),
        distortions=("blur", "gaussian_noise", "saturation"),
    )
    return out


@pytest.fixture(scope="module")
def full_run(data_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("search_full")
    t0 = time.perf_counter()
    result = run_search(tiny_config(), data_dir, out, progress=False)
    return result, out, time.perf_counter() - t0


def test_tiny_search_end_to_end(full_run):
    result, out, seconds = full_run
    assert result.finished and seconds < 60
    for name in (
        "genotype.json",
        "cells.png",
        "arch_weights.json",
        "search_config.json",
        "search_summary.json",
        STATE_FILE,
    ) + tuple(f"arch_weights_stage{k}.json" for k in (1, 2, 3)):
        assert (out / name).is_file(), name
    assert (out / "cells.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    genotype = Genotype.load(out / "genotype.json")
    assert genotype == result.genotype
    assert sum(op == "skip_connect" for op, _ in genotype.normal) <= 2
    stages = json.loads((out / "arch_weights.json").read_text())["stages"]
    assert [len(s["kept_normal"][0]) for s in stages[:2]] == [5, 2]  # 8 -> 5 -> 2
    assert all(len(ops) == 2 for s in stages[1:2] for ops in s["kept_normal"] + s["kept_reduce"])
    assert all(len(e["probs"]) == 5 for e in stages[1]["normal"])
    history = json.loads((out / "search_summary.json").read_text())["epochs"]
    assert [h["arch"] for h in history] == [False, True] * 3
    assert all(np.isfinite(h["loss"]) for h in history)

    model = create_model("aestheticnet_star", genotype=str(out / "genotype.json"), layers=5, init_channels=8)
    dist = model(torch.randn(2, 3, 64, 64))
    assert dist.shape == (2, 10) and torch.isfinite(dist).all()
    dist[:, -1].sum().backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


def test_searched_genotype_trains_with_the_train_command(full_run, data_dir, tmp_path):
    from click.testing import CliRunner

    from aestheticnet.cli import main
    from aestheticnet.models import load

    _, out, _ = full_run
    r = CliRunner().invoke(
        main,
        [
            "train",
            "--data",
            str(data_dir),
            "--out",
            str(tmp_path / "t"),
            "--genotype",
            str(out / "genotype.json"),
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
            "--num-workers",
            "0",
            "--quiet",
        ],
    )
    assert r.exit_code == 0, r.output
    trained = load(tmp_path / "t" / "last.safetensors")
    assert trained.config.genotype == Genotype.load(out / "genotype.json")


def test_resume_mid_stage_2_gives_the_same_genotype(full_run, data_dir, tmp_path):
    result, out, _ = full_run
    first = run_search(tiny_config(), data_dir, tmp_path, progress=False, max_epochs=3)
    assert not first.finished and (first.stage, first.epoch) == (1, 1)  # stage 2, after its first epoch
    state = load_state(tmp_path / STATE_FILE, StateKind.SEARCH)
    assert (state["stage"], state["epoch"]) == (1, 1) and "model" in state and "optim_arch" in state
    assert all(len(ops) == 5 for ops in state["active_normal"])
    resumed = run_search(tiny_config(), data_dir, tmp_path, progress=False, resume=True)
    assert resumed.finished and resumed.genotype == result.genotype
    weights = [json.loads((d / "arch_weights.json").read_text()) for d in (tmp_path, out)]
    assert weights[0] == weights[1]  # every architecture weight of every stage, not only the argmax


def test_resume_refuses_another_config_and_a_used_folder(full_run, data_dir):
    _, out, _ = full_run
    with pytest.raises(ValueError, match=r"differs from the checkpoint's in \['seed'\]"):
        run_search(tiny_config(seed=1), data_dir, out, progress=False, resume=True)
    with pytest.raises(ValueError, match="already holds a search"):
        run_search(tiny_config(), data_dir, out, progress=False)
    # Resuming a finished search only rewrites its outputs.
    again = run_search(tiny_config(workers=0), data_dir, out, progress=False, resume=True)
    assert again.finished and again.genotype == full_run[0].genotype


class Poisonable(Dataset):
    def __init__(self, base):
        self.base, self.poison, self.num_buckets = base, False, base.num_buckets

    def set_epoch(self, epoch):
        self.base.set_epoch(epoch)

    def __len__(self):
        return len(self.base)

    def __getitem__(self, i):
        x, dist, item = self.base[i]
        return (torch.full_like(x, float("nan")) if self.poison else x), dist, item


def test_non_finite_loss_stops_and_keeps_the_last_checkpoint(data_dir, tmp_path):
    from aestheticnet.data.detect import open_dataset
    from aestheticnet.data.preprocess import Preprocess

    data = Poisonable(open_dataset(data_dir, split="train", preprocess=Preprocess(size=32), train=True))
    cfg = tiny_config(stages=TINY_STAGES[:1])
    run_search(cfg, data, tmp_path, progress=False, max_epochs=1)
    before = (tmp_path / STATE_FILE).read_bytes()
    data.poison = True
    # The EMD losses map NaN predictions to a finite value, so the network output itself is checked.
    expected = r"non-finite network output \(for the architecture loss\) at stage 1/1, epoch 2/2, step 1.*is kept"
    with pytest.raises(SearchDivergedError, match=expected):
        run_search(cfg, data, tmp_path, progress=False, resume=True)
    assert (tmp_path / STATE_FILE).read_bytes() == before
    assert load_state(tmp_path / STATE_FILE, StateKind.SEARCH)["epoch"] == 1
    assert not (tmp_path / "genotype.json").exists()


def test_non_finite_architecture_weight_stops(data_dir, tmp_path):
    cfg = tiny_config(stages=TINY_STAGES[:1], arch_lr=float("inf"))
    with pytest.raises(SearchDivergedError, match="non-finite architecture weight at stage 1/1, epoch 2/2"):
        run_search(cfg, data_dir, tmp_path, progress=False)
    assert load_state(tmp_path / STATE_FILE, StateKind.SEARCH)["epoch"] == 1


def test_second_order_gradient_reduces_to_first_order_at_zero_lr():
    cfg = tiny_config(order="second")
    ops = tuple(("none", "skip_connect", "sep_conv_3x3") for _ in full_space(4))
    model = build_supernet(cfg, 0, ops, ops, num_buckets=10).train()
    opt_w = torch.optim.SGD(model.weight_parameters(), 0.1, momentum=0.9)
    stepper = BilevelStepper(cfg, model, opt_w, None, DistContext(), lambda: "")
    x, xa = torch.randn(4, 3, 32, 32), torch.randn(4, 3, 32, 32)
    y, ya = torch.softmax(torch.randn(4, 10), 1), torch.softmax(torch.randn(4, 10), 1)
    before = [p.detach().clone() for p in model.weight_parameters()]
    _, second = stepper._unrolled_grads(xa, ya, x, y, lr=0.0)
    first = torch.autograd.grad(stepper._loss(xa, ya), model.arch_parameters())
    for s, f in zip(second, first):
        torch.testing.assert_close(s, f, rtol=1e-4, atol=1e-7)
    assert all(torch.equal(p, b) for p, b in zip(model.weight_parameters(), before))  # weights restored
    _, second = stepper._unrolled_grads(xa, ya, x, y, lr=0.1)
    assert any(not torch.allclose(s, f) for s, f in zip(second, first))


def test_second_order_search_runs(data_dir, tmp_path):
    cfg = tiny_config(stages=(StageSpec(3, 8, 1, 0),), order="second", batch_size=16)  # one step
    result = run_search(cfg, data_dir, tmp_path, progress=False)
    assert result.finished and result.history[0]["arch"] and np.isfinite(result.history[0]["arch_loss"])


def test_cli_search_stops_and_resumes(data_dir, tmp_path):
    from aestheticnet.cli import main

    config = tmp_path / "config.json"
    config.write_text(json.dumps(tiny_config(stages=TINY_STAGES[:1]).to_dict()))
    out = tmp_path / "out"
    args = ["search", "--data", str(data_dir), "--out", str(out), "--config", str(config), "--no-progress"]
    first = CliRunner().invoke(main, args + ["--max-epochs", "1"])
    assert first.exit_code == 0, first.output
    assert "continue with --resume" in first.output
    resume = ["search", "--data", str(data_dir), "--out", str(out), "--resume", "--no-progress"]
    again = CliRunner().invoke(main, resume)  # the saved config, no options needed
    assert again.exit_code == 0, again.output
    assert Genotype.load(out / "genotype.json").to_json() in again.output
    bad = CliRunner().invoke(main, args + ["--resolution", "48"])
    assert bad.exit_code == 2 and "resolution=48" in bad.output


def test_search_options_come_from_search_config():
    import dataclasses

    from aestheticnet.cli import main
    from aestheticnet.cli.search import _config_from_options, search

    names = {p.name for p in search.params}
    assert {f.name for f in dataclasses.fields(SearchConfig)} - {"stages", "preset"} <= names
    help_text = CliRunner().invoke(main, ["search", "--help"]).output
    assert "--arch-betas" in help_text and "--skip-dropout-decay" in help_text and "[first|second]" in help_text
    config = _config_from_options(None, "pdarts_official", 0.2, {"arch_betas": (0.4, 0.9), "seed": 3, "order": None})
    assert config.arch_betas == (0.4, 0.9) and config.seed == 3 and config.preset == "pdarts_official"
    assert [s.epochs for s in config.stages] == [5, 5, 5] and config.stages[2].ops_kept == 3


# ---- latency-aware search ------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def latency_table(tmp_path_factory):
    """Edge costs where convolutions cost more than pools and skips, and every edge differs."""
    op_ms = {
        "max_pool_3x3": 0.5,
        "avg_pool_3x3": 0.6,
        "skip_connect": 0.1,
        "sep_conv_3x3": 2.0,
        "sep_conv_5x5": 3.0,
        "dil_conv_3x3": 1.5,
        "dil_conv_5x5": 2.5,
        "none": 0.0,
    }
    normal = tuple(tuple(op_ms[op] * (1 + e / 10) for op in PRIMITIVES) for e in range(14))
    costs = EdgeCosts(PRIMITIVES, normal, tuple(tuple(3 * c for c in row) for row in normal), 4.0)
    path = tmp_path_factory.mktemp("latency") / "table.json"
    path.write_text(json.dumps(costs.to_dict()))
    return path, costs


@pytest.fixture(scope="module")
def unweighted_latency_run(data_dir, latency_table, tmp_path_factory):
    out = tmp_path_factory.mktemp("search_latency0")
    return run_search(tiny_config(latency_table=str(latency_table[0])), data_dir, out, progress=False), out


def _without(record: dict, keys: tuple[str, ...]) -> dict:
    return {k: v for k, v in record.items() if k not in keys}


def test_a_table_without_weight_only_reports_latency(full_run, unweighted_latency_run, latency_table):
    (result, out), costs = unweighted_latency_run, latency_table[1]
    base, base_out, _ = full_run
    assert result.genotype == base.genotype
    stages = json.loads((out / "arch_weights.json").read_text())["stages"]
    base_stages = json.loads((base_out / "arch_weights.json").read_text())["stages"]
    assert [_without(s, ("latency",)) for s in stages] == base_stages  # every weight of every stage
    timing = ("seconds", "images_per_s", "expected_ms")
    assert [_without(h, timing) for h in result.history] == [_without(h, timing) for h in base.history]
    summary = json.loads((out / "search_summary.json").read_text())["epochs"]
    assert all(h["expected_ms"] > costs.fixed_ms for h in summary)
    for s in stages:  # each stage reports its genotype, predicted by the table, and the expected latency
        assert s["latency"]["genotype_ms"] == pytest.approx(
            costs.genotype_ms(Genotype.from_dict(s["latency"]["genotype"]))
        )
        assert s["latency"]["expected_ms"] > costs.fixed_ms
    assert stages[-1]["latency"]["genotype"] == result.genotype.to_dict() and result.latency == stages[-1]["latency"]


def test_latency_weight_lowers_the_expected_latency(unweighted_latency_run, data_dir, latency_table, tmp_path):
    from aestheticnet.cli import main

    config = tmp_path / "config.json"
    config.write_text(json.dumps(tiny_config(stages=TINY_STAGES[:1]).to_dict()))
    args = [
        "search",
        "--data",
        str(data_dir),
        "--out",
        str(tmp_path / "out"),
        "--config",
        str(config),
        "--no-progress",
        "--latency-table",
        str(latency_table[0]),
        "--latency-weight",
        "20",
    ]
    r = CliRunner().invoke(main, args)
    assert r.exit_code == 0, r.output
    assert "predicted latency:" in r.output
    weighted = json.loads((tmp_path / "out" / "arch_weights.json").read_text())["stages"][0]["latency"]
    unweighted = json.loads((unweighted_latency_run[1] / "arch_weights.json").read_text())["stages"][0]["latency"]
    # Same seeds and data: the few architecture steps move the weights little, but towards the cheaper ops.
    assert weighted["expected_ms"] < unweighted["expected_ms"]
    assert weighted["genotype_ms"] < unweighted["genotype_ms"]
