"""The weight average: its update rule, and that training validates and saves the average, not the raw weights."""

import pytest
import torch
from safetensors.torch import load_file
from torch import nn

from aestheticnet.state import StateKind, load_state
from aestheticnet.train.ema import WeightAverage
from aestheticnet.train.trainer import STATE_FILE, train
from test_trainer import tiny_config


def test_update_follows_the_warmed_up_decay_and_copies_integer_buffers():
    net = nn.Sequential(nn.Linear(2, 2), nn.BatchNorm1d(2))
    avg = WeightAverage(net, decay=0.9)
    start = avg.module[0].weight.clone()
    with torch.no_grad():
        net[0].weight.add_(1.0)
        net[1].num_batches_tracked.fill_(7)
    avg.update(net)
    d = min(0.9, 2 / 11)  # the first update: the warm-up term is smaller than the decay
    torch.testing.assert_close(avg.module[0].weight, d * start + (1 - d) * net[0].weight)
    assert int(avg.module[1].num_batches_tracked) == 7
    assert not any(p.requires_grad for p in avg.module.parameters())
    for _ in range(200):
        avg.update(net)
    torch.testing.assert_close(avg.module[0].weight, net[0].weight)  # a constant network is reached
    with pytest.raises(ValueError, match="ema_decay=1.0"):
        WeightAverage(net, decay=1.0)


def test_training_saves_the_average_and_keeps_the_raw_weights_in_the_state(tiny_synth, tmp_path):
    train(tiny_config(tiny_synth, epochs=2, ema_decay=0.9), tmp_path / "run", progress=False)
    saved = load_file(tmp_path / "run" / "last.safetensors")
    state = load_state(tmp_path / "run" / STATE_FILE, StateKind.TRAIN)
    assert saved.keys() == state["average"]["module"].keys() == state["model"].keys()
    assert all(torch.equal(saved[k], state["average"]["module"][k]) for k in saved)
    assert any(not torch.equal(saved[k], state["model"][k]) for k in saved if saved[k].is_floating_point())
