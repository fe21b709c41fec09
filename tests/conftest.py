"""Shared fixtures and helpers: a tiny synthetic dataset built once per test session, a small fitted model."""

import pytest
import torch

from aestheticnet.data.synthetic import build_synthetic
from aestheticnet.models import create_model

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


SMALL_PREPROCESS = {
    "policy": "aspect",
    "size": 96,
    "max_side": 160,
    "multiple": 32,
    "mean": [0.485, 0.456, 0.406],
    "std": [0.229, 0.224, 0.225],
}


def fit_small_model(data_dir, steps: int = 40, seed: int = 0):
    """A few dozen Adam steps on the synthetic labels (cross-entropy to the vote histograms) at 96x128.

    16 initial channels, not 8: with 8 channels per node the int8 quantisation noise of ONNX Runtime's QDQ is as
    large as the spread of the scores (measured SROCC 0.91-0.94 vs 0.994 at 16 channels)."""
    from aestheticnet.data.detect import open_dataset
    from aestheticnet.data.preprocess import Preprocess

    torch.manual_seed(seed)
    model = create_model("aestheticnet_star", layers=5, init_channels=16)
    ds = open_dataset(data_dir, preprocess=Preprocess.from_dict(SMALL_PREPROCESS))
    xs = torch.stack([ds[i][0] for i in range(len(ds))])
    ys = torch.stack([ds[i][1] for i in range(len(ds))])
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    g = torch.Generator().manual_seed(seed)
    model.train()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # OpenMP workers spin-wait: on a busy 2-core machine 2 threads are several x slower
    try:
        for _ in range(steps):
            idx = torch.randint(len(xs), (16,), generator=g)
            loss = -(ys[idx] * torch.log(model(xs[idx]) + 1e-8)).sum(1).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
    finally:
        torch.set_num_threads(threads)
    return model.eval()


@pytest.fixture(scope="session")
def small_checkpoint(tmp_path_factory, tiny_synth):
    """:func:`fit_small_model` saved with :data:`SMALL_PREPROCESS` (one per test session)."""
    from aestheticnet.models import save

    return save(
        fit_small_model(tiny_synth), tmp_path_factory.mktemp("small") / "small.safetensors", preprocess=SMALL_PREPROCESS
    )


@pytest.fixture
def small_preprocess():
    """The preprocessing :func:`small_checkpoint` is saved with."""
    return dict(SMALL_PREPROCESS)
