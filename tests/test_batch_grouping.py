"""Batches of a few source photos each (P x K), for the ranking loss's pairs within a photo."""

import pytest

from aestheticnet.data.sampler import BatchGrouping, EpochDraw, ShapeBucketBatchSampler
from aestheticnet.train.config import TrainConfig

# 10 photos of uneven sizes (13..22 images), two input shapes
GROUPS = tuple(g for g in range(10) for _ in range(13 + g))
SHAPES = [(192, 192) if i % 3 else (192, 256) for i in range(len(GROUPS))]


def batches(seed=0, epoch=0, per_batch=4, **kw):
    sampler = ShapeBucketBatchSampler(SHAPES, 32, seed=seed, draw=EpochDraw(BatchGrouping(GROUPS, per_batch)), **kw)
    sampler.set_epoch(epoch)
    return list(sampler), sampler


def test_every_item_once_and_at_most_p_photos_of_k_images_per_batch():
    got, sampler = batches()
    assert sorted(i for b in got for i in b) == list(range(len(GROUPS)))
    assert len(got) == len(sampler)
    for batch in got:
        photos = [GROUPS[i] for i in batch]
        assert len(set(photos)) <= 4 and max(photos.count(p) for p in set(photos)) <= 8
        assert len({SHAPES[i] for i in batch}) == 1  # never two shapes in a batch


def test_full_batches_when_photos_have_whole_runs():
    groups = tuple(g for g in range(10) for _ in range(96))  # the demo's ~97 images per photo
    sampler = ShapeBucketBatchSampler([(192, 192)] * len(groups), 32, draw=EpochDraw(BatchGrouping(groups, 4)))
    assert [len(b) for b in sampler] == [32] * 30


def test_many_more_pairs_within_a_photo_than_random_batches():
    def pairs(bs):
        return sum(sum(n * (n - 1) // 2 for n in (sum(GROUPS[i] == g for i in b) for g in range(10))) for b in bs)

    random = list(ShapeBucketBatchSampler(SHAPES, 32, seed=0))
    assert pairs(batches()[0]) > 2 * pairs(random)


def test_deterministic_per_seed_and_epoch_and_split_over_ranks():
    assert batches()[0] == batches()[0] and batches(epoch=1)[0] != batches()[0]
    ranks = [batches(num_replicas=2, rank=r)[0] for r in (0, 1)]
    assert len(ranks[0]) == len(ranks[1]) and not set(map(tuple, ranks[0])) & set(map(tuple, ranks[1]))


def test_bad_grouping_is_refused_by_name():
    with pytest.raises(ValueError, match="per_batch"):
        BatchGrouping(GROUPS, 0)
    with pytest.raises(ValueError, match="divides"):
        ShapeBucketBatchSampler(SHAPES, 30, draw=EpochDraw(BatchGrouping(GROUPS, 4)))
    with pytest.raises(ValueError, match="one group per item"):
        ShapeBucketBatchSampler(SHAPES, 32, draw=EpochDraw(BatchGrouping(GROUPS[:-1], 4)))
    with pytest.raises(ValueError, match="photos_per_batch=5"):
        TrainConfig(batch_size=32, photos_per_batch=5)


def test_never_a_batch_of_one_image():
    groups = (0, 0, 0, 1, 1, 1, 2)  # runs of 2 leave runs of one image behind
    for seed in range(50):
        sampler = ShapeBucketBatchSampler([(64, 64)] * 7, 4, seed=seed, draw=EpochDraw(BatchGrouping(groups, 2)))
        got = list(sampler)
        assert min(len(b) for b in got) >= 2 and sorted(i for b in got for i in b) == list(range(7)), got
