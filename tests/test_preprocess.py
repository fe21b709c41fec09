"""Preprocessing policies and the shape-bucketing batch sampler."""

from __future__ import annotations

import json
from collections import Counter

import numpy as np
import pytest
import torch
from PIL import Image

from aestheticnet.data.preprocess import Preprocess, ShapeBucketBatchSampler


def test_aspect_sizes_are_multiples_of_32_for_many_shapes():
    pre = Preprocess(policy="aspect", size=224, max_side=640)
    rng = np.random.default_rng(0)
    sizes = [(int(w), int(h)) for w, h in rng.integers(1, 6000, size=(2000, 2))]
    sizes += [(1, 1), (4000, 40), (40, 4000), (224, 224), (10_000, 1), (1, 10_000)]
    for w, h in sizes:
        out_w, out_h = pre.output_size(w, h)
        assert out_w % 32 == 0 and out_h % 32 == 0, (w, h, out_w, out_h)
        assert 32 <= out_w <= 640 and 32 <= out_h <= 640
        if (w >= h) != (out_w >= out_h):  # orientation kept (ties may round either way)
            assert out_w == out_h


def test_aspect_keeps_ratio_and_shorter_side():
    pre = Preprocess(policy="aspect")
    assert pre.output_size(1024, 768) == (288, 224)  # 298.7 -> nearest multiple 288
    assert pre.output_size(768, 1024) == (224, 288)
    assert pre.output_size(500, 500) == (224, 224)
    assert pre.output_size(4000, 40) == (640, 32)  # capped longer side, shorter rounded up to one multiple
    assert pre.output_size(3000, 1000) == (640, 224)  # 672 would exceed the cap: scale by the longer side


def test_fixed_gives_square():
    pre = Preprocess(policy="fixed", size=256)
    rng = np.random.default_rng(1)
    for w, h in rng.integers(1, 3000, size=(50, 2)):
        assert pre.output_size(int(w), int(h)) == (256, 256)
    assert pre(Image.new("RGB", (37, 91))).shape == (3, 256, 256)


def test_invalid_configs_are_clear():
    with pytest.raises(ValueError, match="policy"):
        Preprocess(policy="crop")
    with pytest.raises(ValueError, match="multiple of 32"):
        Preprocess(policy="fixed", size=227)
    with pytest.raises(ValueError, match="std"):
        Preprocess(std=(0.2, 0.0, 0.2))
    with pytest.raises(ValueError, match="positive"):
        Preprocess().output_size(0, 10)


def test_dict_round_trip_and_unknown_keys():
    pre = Preprocess(policy="aspect", size=192, max_side=512, mean=[0.5, 0.5, 0.5], std=[0.25, 0.25, 0.25])
    data = json.loads(json.dumps(pre.to_dict()))
    assert Preprocess.from_dict(data) == pre
    with pytest.raises(ValueError, match=r"unknown keys \['crop_pct'\]"):
        Preprocess.from_dict({**data, "crop_pct": 0.9})


def test_normalisation_numerically():
    pre = Preprocess(policy="fixed", size=32)
    img = Image.new("RGB", (32, 32), (255, 0, 128))
    x = pre.apply(img)
    assert x.dtype == torch.float32 and x.shape == (3, 32, 32)
    expected = [(1.0 - 0.485) / 0.229, (0.0 - 0.456) / 0.224, (128 / 255 - 0.406) / 0.225]
    for c in range(3):
        torch.testing.assert_close(x[c], torch.full((32, 32), expected[c]), rtol=0, atol=1e-6)


def test_augment_is_deterministic_and_shape_preserving():
    pre = Preprocess(policy="aspect")
    rng = np.random.default_rng(0)
    img = Image.fromarray(rng.integers(0, 256, (300, 400, 3), dtype=np.uint8))
    size = pre.output_size(*img.size)
    a = pre.augment(img, torch.Generator().manual_seed(3))
    b = pre.augment(img, torch.Generator().manual_seed(3))
    assert torch.equal(a, b) and a.shape == pre.apply(img).shape == (3, size[1], size[0])
    outs = {pre.augment(img, np.random.RandomState(s)).sum().item() for s in range(8)}
    assert len(outs) > 1  # different seeds give different crops / flips
    assert pre.augment(img, np.random.default_rng(1)).shape == a.shape


def test_augment_flip_happens():
    pre = Preprocess(policy="fixed", size=32, train_scale=1.0)  # no crop slack: only the flip is random
    img = Image.new("RGB", (32, 32), (0, 0, 0))
    img.paste((255, 255, 255), (0, 0, 16, 32))
    lefts = {pre.augment(img, torch.Generator().manual_seed(s))[0, 0, 0].item() > 0 for s in range(20)}
    assert lefts == {True, False}


def _shapes(n=103, seed=0):
    rng = np.random.default_rng(seed)
    pool = [(224, 224), (224, 288), (288, 224), (224, 640), (32, 640)]
    return [pool[i] for i in rng.choice(len(pool), size=n, p=[0.4, 0.3, 0.2, 0.08, 0.02])]


@pytest.mark.parametrize("shuffle", [True, False])
def test_bucket_sampler_never_mixes_shapes_and_covers_every_index_once(shuffle):
    shapes = _shapes()
    sampler = ShapeBucketBatchSampler(shapes, batch_size=8, shuffle=shuffle, seed=1)
    batches = list(sampler)
    assert len(batches) == len(sampler)
    for batch in batches:
        assert 1 <= len(batch) <= 8
        assert len({shapes[i] for i in batch}) == 1
    flat = [i for b in batches for i in b]
    assert sorted(flat) == list(range(len(shapes)))


def test_bucket_sampler_deterministic_per_seed_and_epoch():
    shapes = _shapes()

    def run(seed, epoch):
        s = ShapeBucketBatchSampler(shapes, batch_size=4, shuffle=True, seed=seed)
        s.set_epoch(epoch)
        return list(s)

    assert run(0, 0) == run(0, 0)
    assert run(0, 1) == run(0, 1)
    assert run(0, 0) != run(0, 1)
    assert run(0, 0) != run(1, 0)


def test_bucket_sampler_drop_last():
    shapes = _shapes()
    sampler = ShapeBucketBatchSampler(shapes, batch_size=8, shuffle=True, drop_last=True)
    batches = list(sampler)
    assert all(len(b) == 8 for b in batches) and len(batches) == len(sampler)
    assert len({i for b in batches for i in b}) == sum(len(b) for b in batches)


@pytest.mark.parametrize("replicas", [2, 3, 4])
@pytest.mark.parametrize("drop_last", [False, True])
def test_bucket_sampler_splits_evenly_across_ranks(replicas, drop_last):
    shapes = _shapes()
    per_rank = []
    for rank in range(replicas):
        s = ShapeBucketBatchSampler(
            shapes, batch_size=6, shuffle=True, seed=5, drop_last=drop_last, num_replicas=replicas, rank=rank
        )
        s.set_epoch(2)
        per_rank.append(list(s))
        assert len(per_rank[-1]) == len(s)
    assert len({len(b) for b in per_rank}) == 1  # same number of steps on every rank
    for batches in per_rank:
        for batch in batches:
            assert len({shapes[i] for i in batch}) == 1
    seen = Counter(i for batches in per_rank for b in batches for i in b)
    if not drop_last:
        assert set(seen) == set(range(len(shapes)))  # everything covered; padding repeats whole batches
    else:
        assert max(seen.values()) == 1


def test_bucket_sampler_rejects_bad_arguments():
    with pytest.raises(ValueError, match="batch_size"):
        ShapeBucketBatchSampler([(32, 32)], batch_size=0)
    with pytest.raises(ValueError, match="rank"):
        ShapeBucketBatchSampler([(32, 32)], batch_size=1, num_replicas=2, rank=2)


def test_train_crop_gives_patches_at_evaluation_scale():
    import numpy as np
    import torch
    from PIL import Image

    from aestheticnet.data.preprocess import Preprocess

    pre = Preprocess(policy="aspect", size=192, max_side=256, train_crop=96)
    img = Image.fromarray((np.random.default_rng(0).random((192, 256, 3)) * 255).astype(np.uint8))
    assert pre.output_size(256, 192) == (256, 192)
    assert pre.train_size((256, 192)) == (96, 96) and pre.resize_size((256, 192), train=True) == (256, 192)
    patch = pre.augment(img, torch.Generator().manual_seed(0))
    assert patch.shape == (3, 96, 96)
    full = pre.apply(img)
    # the patch is a crop of the (unresized) image, possibly flipped: it appears in the full tensor
    found = any(
        torch.equal(cand[:, t : t + 96, l : l + 96], patch)
        for cand in (full, full.flip(-1))
        for t in range(0, 97)
        for l in range(0, 161)
    )
    assert found
    with pytest.raises(ValueError, match="train_crop"):
        Preprocess(train_crop=100)


def test_train_patches_start_on_the_jpeg_grid():
    import numpy as np
    import torch
    from PIL import Image

    from aestheticnet.data.preprocess import PATCH_GRID, Preprocess

    pre = Preprocess(policy="aspect", size=192, max_side=256, train_crop=96)
    img = Image.fromarray((np.random.default_rng(1).random((192, 256, 3)) * 255).astype(np.uint8))
    full = pre.apply(img)
    offsets = set()
    for seed in range(24):
        patch = pre.augment(img, torch.Generator().manual_seed(seed))
        hits = [
            (t, l)
            for cand in (full, full.flip(-1))
            for t in range(0, 97)
            for l in range(0, 161)
            if torch.equal(cand[:, t : t + 96, l : l + 96], patch)
        ]
        assert len(hits) == 1
        offsets.add(hits[0])
    assert all(t % PATCH_GRID == 0 and l % PATCH_GRID == 0 for t, l in offsets)
    assert len(offsets) > 4  # still random: several grid positions
