"""The P-DARTS schedule as data: presets, skip-dropout decay, config round trips and validation."""

import json
import math

import pytest

from aestheticnet.nas.strategy import PRESETS, SearchConfig, StageSpec
from aestheticnet.state import flatten, unflatten
from aestheticnet.train.search_data import proxy_indices


def test_presets_follow_the_paper_and_the_release():
    paper, official = PRESETS["pdarts_paper"], PRESETS["pdarts_official"]
    assert [s.cells for s in paper] == [5, 11, 17]
    assert [s.ops_kept for s in paper] == [8, 5, 2]
    assert [s.ops_kept for s in official] == [8, 5, 3]
    assert all((s.epochs, s.warmup_epochs) == (25, 10) for s in paper + official)
    assert [s.skip_dropout for s in paper] == [0.1, 0.4, 0.7]
    cfg = SearchConfig()
    assert cfg.stages == paper and cfg.preset == "pdarts_paper"
    assert (cfg.weight_lr, cfg.momentum, cfg.weight_decay, cfg.grad_clip) == (0.025, 0.9, 3e-4, 5.0)
    assert (cfg.arch_lr, cfg.arch_betas, cfg.arch_weight_decay) == (6e-4, (0.5, 0.999), 1e-3)
    assert (cfg.order, cfg.batch_size, cfg.proxy_fraction, cfg.weight_fraction) == ("first", 96, 0.1, 0.8)
    assert (cfg.loss, cfg.max_skip_connect) == ("sw_emd", 2)


def test_skip_dropout_decays_as_in_the_pdarts_release():
    s = StageSpec(cells=5, ops_kept=8, epochs=25, warmup_epochs=10, skip_dropout=0.1)
    assert s.skip_dropout_at(0) == pytest.approx(0.1 * 24 / 25)  # warm-up: linear
    assert s.skip_dropout_at(9) == pytest.approx(0.1 * 15 / 25)
    assert s.skip_dropout_at(10) == pytest.approx(0.1)  # first architecture epoch: the full rate
    assert s.skip_dropout_at(15) == pytest.approx(0.1 * math.exp(-1.0))  # then exp(-0.2 per epoch)
    assert s.skip_dropout_at(15, decay="constant") == 0.1
    assert not s.trains_arch(9) and s.trains_arch(10)


def test_epochs_scale_keeps_an_architecture_epoch():
    s = PRESETS["pdarts_paper"][0]
    assert (s.scaled(0.2).epochs, s.scaled(0.2).warmup_epochs) == (5, 2)
    assert (s.scaled(0.04).epochs, s.scaled(0.04).warmup_epochs) == (1, 0)
    cfg = SearchConfig.from_preset("pdarts_official", epochs_scale=0.08)
    assert [(st.epochs, st.warmup_epochs) for st in cfg.stages] == [(2, 1)] * 3
    assert cfg.stages[2].ops_kept == 3 and cfg.preset == "pdarts_official"


def test_config_round_trips_through_json():
    cfg = SearchConfig.from_preset(epochs_scale=0.2, resolution=32, order="second", max_skip_connect=None)
    again = SearchConfig.from_dict(json.loads(json.dumps(cfg.to_dict())))
    assert again == cfg and again.differences(cfg) == []
    assert cfg.replace(seed=3).differences(cfg) == ["seed"]


def test_unknown_keys_are_rejected_by_name():
    with pytest.raises(ValueError, match=r"unknown SearchConfig key\(s\) \['learning_rate'\]"):
        SearchConfig.from_dict({"learning_rate": 0.1})
    with pytest.raises(ValueError, match=r"unknown StageSpec key\(s\) \['layers'\]"):
        SearchConfig.from_dict({"stages": [{"cells": 5, "ops_kept": 8, "layers": 3}]})
    with pytest.raises(ValueError, match="unknown SearchConfig key"):
        SearchConfig().replace(lr=1.0)


@pytest.mark.parametrize(
    "changes,message",
    [
        (dict(resolution=48), "resolution=48"),
        (dict(stages=(StageSpec(5, 5),)), "first stage searches all"),
        (dict(stages=(StageSpec(5, 8), StageSpec(5, 2), StageSpec(5, 3))), "ops are only ever dropped"),
        (dict(order="third"), "order="),
        (dict(loss="mse"), "loss="),
        (dict(batch_size=1), "batch_size=1"),
        (dict(init_channels=5), "init_channels=5"),
    ],
)
def test_bad_values_name_the_field(changes, message):
    with pytest.raises(ValueError, match=message):
        SearchConfig(**changes)


def test_stage_validation():
    with pytest.raises(ValueError, match="warmup_epochs=30"):
        StageSpec(5, 8, epochs=25, warmup_epochs=30)
    with pytest.raises(ValueError, match="cells=2"):
        StageSpec(2, 8)


def test_proxy_split_is_seeded_and_four_to_one():
    w, a = proxy_indices(1000, 0.1, 0.8, seed=0)
    assert (len(w), len(a)) == (80, 20) and set(w).isdisjoint(a)
    assert proxy_indices(1000, 0.1, 0.8, seed=0) == (w, a)
    assert proxy_indices(1000, 0.1, 0.8, seed=1) != (w, a)
    with pytest.raises(ValueError, match="need at least 4"):
        proxy_indices(3, 1.0, 0.8, seed=0)


def test_state_flattening_keeps_types():
    import torch

    state = {"a": (1, 2.5, None), 3: [torch.ones(2), {"b": "x"}], "t": torch.tensor(1.0)}
    tensors = {}
    skeleton = json.loads(json.dumps(flatten(state, tensors, "s")))
    back = unflatten(skeleton, tensors)
    assert back["a"] == (1, 2.5, None) and back[3][1] == {"b": "x"}
    assert torch.equal(back[3][0], torch.ones(2)) and back["t"].shape == ()
