"""State files: one format for search and training state, versioned, with every RNG stream, never pickle."""

import json
import random

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from aestheticnet.state import (
    FORMAT_VERSION,
    StateFileError,
    StateKind,
    load_state,
    rng_state,
    save_state,
    set_rng_state,
)


def test_round_trip_keeps_tensors_types_and_rng_streams(tmp_path):
    torch.manual_seed(1), np.random.seed(2), random.seed(3)
    state = {
        "model": {"w": torch.arange(6.0).reshape(2, 3)},
        "optimizer": {"state": {0: {"m": torch.ones(2)}}},
        "epoch": 4,
        "pair": (1, "a"),
        "rng": rng_state(),
    }
    expected = (torch.rand(3), np.random.rand(3), [random.random() for _ in range(3)])
    path = save_state(tmp_path / "s.safetensors", StateKind.TRAIN, state)
    back = load_state(path, StateKind.TRAIN)
    assert torch.equal(back["model"]["w"], state["model"]["w"]) and back["epoch"] == 4 and back["pair"] == (1, "a")
    assert list(back["optimizer"]["state"]) == [0]  # int keys stay ints
    set_rng_state(back["rng"])
    again = (torch.rand(3), np.random.rand(3), [random.random() for _ in range(3)])
    assert torch.equal(expected[0], again[0]) and np.array_equal(expected[1], again[1]) and expected[2] == again[2]


def test_a_state_of_the_other_kind_is_named(tmp_path):
    path = save_state(tmp_path / "s.safetensors", StateKind.SEARCH, {"epoch": 1, "rng": rng_state()})
    with pytest.raises(StateFileError, match="s.safetensors: a safetensors file without a train state"):
        load_state(path, StateKind.TRAIN)


@pytest.mark.parametrize(
    "version, message",
    [(FORMAT_VERSION + 1, "newer than this package reads"), (None, "without a valid format version")],
)
def test_versions_are_checked(tmp_path, version, message):
    path = tmp_path / "s.safetensors"
    header = {"state": {"__dict__": [["epoch", 1]]}}
    if version is not None:
        header["format_version"] = version
    save_file({"x": torch.zeros(1)}, str(path), metadata={StateKind.SEARCH.header_key: json.dumps(header)})
    with pytest.raises(StateFileError, match=message):
        load_state(path, StateKind.SEARCH)


def test_version_1_search_state_with_torch_rng_only_loads(tmp_path):
    path = tmp_path / "s.safetensors"
    rng = torch.get_rng_state()
    header = {"format_version": 1, "state": {"__dict__": [["rng", {"__dict__": [["torch", {"__tensor__": "t"}]]}]]}}
    save_file({"t": rng}, str(path), metadata={StateKind.SEARCH.header_key: json.dumps(header)})
    state = load_state(path, StateKind.SEARCH)
    expected = torch.rand(2)
    set_rng_state(state["rng"])
    assert torch.equal(torch.rand(2), expected)


def test_truncated_and_missing_files_are_named(tmp_path):
    path = save_state(tmp_path / "s.safetensors", StateKind.TRAIN, {"w": torch.ones(100)})
    cut = tmp_path / "cut.safetensors"
    cut.write_bytes(path.read_bytes()[:60])
    with pytest.raises(StateFileError, match="cut.safetensors.*truncated"):
        load_state(cut, StateKind.TRAIN)
    with pytest.raises(StateFileError, match="no such file"):
        load_state(tmp_path / "missing.safetensors", StateKind.TRAIN)


def test_objects_that_need_pickle_are_refused(tmp_path):
    with pytest.raises(TypeError, match="cannot store a set"):
        save_state(tmp_path / "s.safetensors", StateKind.TRAIN, {"bad": {1, 2}})
    assert not (tmp_path / "s.safetensors").exists()
