"""Runtime interface without an export: the PyTorch backend, input checks, file checks, Scorer (fast)."""

import numpy as np
import pytest
import torch
from PIL import Image

from aestheticnet.models import create_model, save
from aestheticnet.runtime import InputError, ModelFileError, Scorer, load

PRE = {
    "policy": "aspect",
    "size": 64,
    "max_side": 128,
    "multiple": 32,
    "mean": [0.485, 0.456, 0.406],
    "std": [0.229, 0.224, 0.225],
}


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    torch.manual_seed(0)
    return save(
        create_model("aestheticnet_star", layers=3, init_channels=4),
        tmp_path_factory.mktemp("rt") / "m.safetensors",
        preprocess=PRE,
    )


def test_torch_backend_runs_nchw_and_restores_thread_count(checkpoint):
    backend = load(checkpoint, threads=1)
    assert backend.name == "pytorch" and backend.input_layout == "NCHW" and backend.multiple == 32
    assert backend.model.variant == "aestheticnet_star" and backend.score_buckets == list(range(1, 11))
    assert backend.manifest is None and backend.preprocess == backend.model.metadata["preprocess"]
    before = torch.get_num_threads()
    out = backend.run(np.zeros((2, 3, 64, 96), np.float32))
    assert out.shape == (2, 10) and out.dtype == np.float32 and np.allclose(out.sum(1), 1, atol=1e-5)
    assert torch.get_num_threads() == before
    assert backend.run(torch.zeros(1, 3, 32, 32)).shape == (1, 10)  # torch tensors are accepted too


@pytest.mark.parametrize(
    "batch, message",
    [
        (np.zeros((3, 64, 64), np.float32), r"expected rank 4 \(N, 3, H, W\) NCHW, got rank 3"),
        (np.zeros((1, 1, 64, 64), np.float32), r"expected 3 channels at axis 1"),
        (np.zeros((1, 64, 64, 3), np.float32), r"it looks NHWC"),
        (np.zeros((1, 3, 64, 64), np.float64), r"expected dtype float32, got float64"),
        (np.zeros((1, 3, 64, 64), np.uint8), r"expected dtype float32, got uint8"),
        (np.zeros((1, 3, 64, 80), np.float32), r"64x80 \(HxW\) is not accepted: .* multiples of 32"),
        (np.zeros((0, 3, 64, 64), np.float32), r"at least one image"),
    ],
)
def test_bad_batches_name_what_was_expected(checkpoint, batch, message):
    with pytest.raises(InputError, match=message):
        load(checkpoint).run(batch)


def test_bad_model_paths(tmp_path, checkpoint):
    with pytest.raises(ModelFileError, match="no such model file"):
        load(tmp_path / "missing.onnx")
    with pytest.raises(ModelFileError, match=r"expected a file ending in \.safetensors, \.onnx, \.tflite, \.mlpackage"):
        load(tmp_path / "model.h5")
    (tmp_path / "d.onnx").mkdir()
    with pytest.raises(ModelFileError, match="is a directory; expected a .onnx file"):
        load(tmp_path / "d.onnx")
    cut = tmp_path / "cut.safetensors"
    cut.write_bytes(checkpoint.read_bytes()[:100])
    with pytest.raises(ModelFileError, match="truncated"):
        load(cut)
    (tmp_path / "x.onnx").write_bytes(b"\x08\x07garbage")
    with pytest.raises(ModelFileError, match="not a readable ONNX model"):
        load(tmp_path / "x.onnx")
    (tmp_path / "empty.mlpackage").mkdir()
    with pytest.raises(ModelFileError, match="Manifest.json missing"):
        load(tmp_path / "empty.mlpackage")
    with pytest.raises(ValueError, match="threads must be >= 1"):
        load(checkpoint, threads=0)


def test_scorer_batches_equal_shapes_and_keeps_order(checkpoint, tmp_path):
    rng = np.random.default_rng(0)
    paths = []
    for i, size in enumerate([(128, 96), (96, 128), (128, 96), (200, 150), (96, 128)]):
        p = tmp_path / f"img{i}.png"
        Image.fromarray(rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)).save(p)
        paths.append(p)
    calls = []
    scorer = Scorer(checkpoint, batch_size=2)
    run = scorer.backend.run
    scorer.backend.run = lambda batch: calls.append(batch.shape) or run(batch)
    results = scorer.score_paths(paths)
    assert [r["path"] for r in results] == [str(p) for p in paths]
    assert all(set(r) == {"path", "mean", "std", "distribution"} for r in results)
    assert all(1 <= r["mean"] <= 10 and r["std"] >= 0 and len(r["distribution"]) == 10 for r in results)
    # equal shapes share a batch (at most batch_size); every image is run exactly once
    assert sum(c[0] for c in calls) == 5 and max(c[0] for c in calls) == 2 and len(calls) < 5
    model = load(checkpoint)
    x = Scorer(checkpoint).preprocess.apply(Image.open(paths[3]).convert("RGB")).numpy()[None]
    assert abs(float(model.run(x)[0] @ np.arange(1, 11)) - results[3]["mean"]) < 1e-5


def test_cli_score_and_scorer_give_identical_scores_jpeg_included(checkpoint, tmp_path):
    """One scoring path: `aestheticnet score` is runtime.Scorer, JPEGs decoded in draft mode like the datasets."""
    import json

    from click.testing import CliRunner

    from aestheticnet.cli import main
    from aestheticnet.data.images import image_size, load_image

    rng = np.random.default_rng(1)
    folder = tmp_path / "imgs"
    folder.mkdir()
    for name, (w, h) in {"big.jpg": (640, 480), "tall.jpeg": (300, 500), "small.png": (120, 90)}.items():
        Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8)).save(folder / name, quality=90)
    (folder / "broken.jpg").write_bytes(b"\xff\xd8\xffnot a jpeg")
    out = tmp_path / "scores.json"
    result = CliRunner().invoke(
        main,
        [
            "score",
            str(folder),
            "--model",
            str(checkpoint),
            "--format",
            "json",
            "--out",
            str(out),
            "--batch-size",
            "4",
            "--quiet",
        ],
    )
    assert result.exit_code == 1 and "broken.jpg" in result.output  # the unreadable file is reported, not fatal
    cli = json.loads(out.read_text())
    scorer = Scorer(checkpoint, batch_size=4)
    readable = [folder / n for n in ("big.jpg", "small.png", "tall.jpeg")]
    library = scorer.score_paths(readable)
    assert [r["path"] for r in cli["scores"]] == [str(p) for p in readable]
    assert cli["scores"] == json.loads(json.dumps(library))  # identical, digit for digit
    assert [f["path"] for f in cli["failures"]] == [str(folder / "broken.jpg")]
    # the JPEG went through the datasets' decoding: header size, then draft decoding at a reduced scale
    big = folder / "big.jpg"
    size = scorer.preprocess.output_size(*image_size(big))
    drafted = load_image(big, min_size=size)
    assert drafted.size[0] < 640  # draft mode really decoded below full size
    x = scorer.preprocess.apply(drafted, size=size).numpy()[None]
    assert np.array_equal(scorer.backend.run(x)[0], np.asarray(library[0]["distribution"], np.float32))
