"""Quality ladders: rungs get worse in order, and the report turns scores into rank correlations."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import skimage.data
from PIL import Image

from aestheticnet.data.ladders import LADDERS, ladder_report, ladder_rungs, read_ladders, write_ladders


def _crop() -> np.ndarray:
    return skimage.data.astronaut()[100:292, 150:406]


def _high_frequency_loss(img: np.ndarray, pristine: np.ndarray) -> float:
    return float(np.mean((img.astype(np.float64) - pristine.astype(np.float64)) ** 2))


@pytest.mark.parametrize("name", list(LADDERS))
def test_each_rung_moves_further_from_the_pristine_image(name):
    pristine = _crop()
    rungs = ladder_rungs(pristine, LADDERS[name], seed=3)
    assert len(rungs) == 5 and np.array_equal(rungs[0], pristine)
    errors = [_high_frequency_loss(r, pristine) for r in rungs]
    assert all(a < b for a, b in itertools.pairwise(errors)), errors
    assert all(r.shape == pristine.shape and r.dtype == np.uint8 for r in rungs)


def _sharpness(img: np.ndarray) -> float:
    """A hand-made quality score for the test: fine detail counts, noise-like energy beyond it does not help."""
    grey = img.astype(np.float64).mean(axis=2)
    smooth = np.asarray(Image.fromarray(grey.astype(np.uint8)).resize((64, 48), Image.Resampling.BOX), np.float64)
    return -float(np.abs(np.diff(grey, axis=1)).mean() - np.abs(np.diff(smooth, axis=1)).mean() / 4)


def test_a_score_that_falls_with_distortion_orders_every_ladder(tmp_path):
    sources = {"astronaut": _crop(), "grey": skimage.data.camera()[:192, :256, None]}
    ladders = write_ladders(sources, tmp_path, seed=0)
    assert len(ladders.images) == 2 * 4 * 5 and all(p.is_file() for p in ladders.paths())
    assert read_ladders(tmp_path) == ladders
    # The rung itself, negated, is the perfect scorer; the reverse is the worst; a constant orders nothing.
    perfect = {i.path: -i.rung for i in ladders.images}
    report = ladder_report(ladders, perfect)
    assert report["mean"] == pytest.approx(1.0) and report["photos"] == 2
    assert set(report["per_ladder"]) == set(LADDERS)
    assert ladder_report(ladders, {i.path: i.rung for i in ladders.images})["mean"] == pytest.approx(-1.0)
    assert ladder_report(ladders, {i.path: 5.0 for i in ladders.images})["mean"] == 0.0
    # A noisy-but-informative scorer: the distance to the pristine rung, read back from the written files.
    pristine = {
        (i.photo, i.ladder): np.asarray(Image.open(p)) for i, p in zip(ladders.images, ladders.paths()) if i.rung == 0
    }
    scores = {
        i.path: -_high_frequency_loss(np.asarray(Image.open(p)), pristine[(i.photo, i.ladder)])
        for i, p in zip(ladders.images, ladders.paths())
    }
    assert ladder_report(ladders, scores)["mean"] == pytest.approx(1.0)


def test_a_missing_score_is_named(tmp_path):
    ladders = write_ladders({"astronaut": _crop()}, tmp_path)
    scores = {i.path: 0.0 for i in ladders.images[1:]}
    with pytest.raises(KeyError, match=ladders.images[0].path):
        ladder_report(ladders, scores)
