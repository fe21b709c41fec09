import json

import pytest
import torch
from safetensors.torch import save_file

from aestheticnet import __version__
from aestheticnet.models import CheckpointError, create_model, load, read_metadata, save


@pytest.fixture()
def small_star():
    torch.manual_seed(0)
    return create_model("aestheticnet_star", layers=5, init_channels=8, genotype="DARTS_V2").eval()


def test_round_trip_is_exact_and_metadata_complete(small_star, tmp_path):
    path = save(small_star, tmp_path / "m.safetensors")
    meta = read_metadata(path)
    assert meta["variant"] == "aestheticnet_star"
    assert meta["genotype"] == small_star.config.genotype.to_dict()
    assert meta["config"]["layers"] == 5 and meta["num_buckets"] == 10
    assert meta["score_buckets"] == list(range(1, 11))
    assert meta["preprocess"]["policy"] == "aspect" and meta["preprocess"]["multiple"] == 32
    assert len(meta["preprocess"]["mean"]) == 3 and len(meta["preprocess"]["std"]) == 3
    assert meta["package_version"] == __version__
    loaded = load(path)
    assert loaded.config == small_star.config and not loaded.training
    x = torch.randn(2, 3, 64, 96)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), small_star(x), rtol=0, atol=0)


def test_file_holds_no_pickle(small_star, tmp_path):
    path = save(small_star, tmp_path / "m.safetensors")
    header_len = int.from_bytes(path.read_bytes()[:8], "little")
    header = json.loads(path.read_bytes()[8 : 8 + header_len])
    assert "aestheticnet" in header["__metadata__"]


def test_truncated_file_is_named(small_star, tmp_path):
    path = save(small_star, tmp_path / "m.safetensors")
    data = path.read_bytes()
    cut = tmp_path / "cut.safetensors"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="cut.safetensors.*truncated"):
        load(cut)


def test_not_safetensors_is_named(tmp_path):
    p = tmp_path / "notes.safetensors"
    p.write_text("these are not weights")
    with pytest.raises(CheckpointError, match="notes.safetensors: not a readable safetensors file"):
        load(p)
    with pytest.raises(CheckpointError, match="no such file"):
        load(tmp_path / "missing.safetensors")


def test_foreign_safetensors_without_metadata(tmp_path):
    p = tmp_path / "other.safetensors"
    save_file({"w": torch.zeros(2)}, str(p))
    with pytest.raises(CheckpointError, match="other.safetensors: a safetensors file without aestheticnet metadata"):
        load(p)


def test_weights_not_matching_config(small_star, tmp_path):
    path = save(small_star, tmp_path / "m.safetensors")
    meta = read_metadata(path)
    meta["config"]["layers"] = 6
    from safetensors import safe_open

    with safe_open(str(path), "pt") as f:
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    bad = tmp_path / "bad.safetensors"
    save_file(tensors, str(bad), metadata={"aestheticnet": json.dumps(meta)})
    with pytest.raises(CheckpointError, match="bad.safetensors: weights do not match"):
        load(bad)


def test_failed_save_leaves_no_file(small_star, tmp_path, monkeypatch):
    import aestheticnet.state as state

    def boom(*a, **k):
        raise RuntimeError("disk full")

    monkeypatch.setattr(state, "save_file", boom)
    with pytest.raises(RuntimeError):
        save(small_star, tmp_path / "m.safetensors")
    assert list(tmp_path.iterdir()) == []
