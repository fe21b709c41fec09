"""Shared fixtures: a tiny synthetic dataset built once per test session."""

import pytest

from aestheticnet.data.synthetic import build_synthetic

TINY_SYNTH = dict(
    n_crops_per_photo=1,
    photos=("chelsea", "camera", "coffee", "coins"),
    distortions=("blur", "jpeg", "gaussian_noise", "darken"),
    size=(128, 96),
)


@pytest.fixture(scope="session")
def tiny_synth(tmp_path_factory):
    """4 photos x (1 reference + 4 distortions x 5 levels) = 84 images at 128x96, with vote histograms."""
    out = tmp_path_factory.mktemp("synth") / "tiny"
    build_synthetic(out, seed=0, workers=1, progress=False, **TINY_SYNTH)
    return out
