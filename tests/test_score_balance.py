"""Drawing rare scores more often: weights from the score histogram, and a sampler that draws by them."""

from collections import Counter

import numpy as np
import pytest

from aestheticnet.data.sampler import BatchGrouping, EpochDraw, ShapeBucketBatchSampler, score_balance_weights
from aestheticnet.train.config import TrainConfig

# The synthetic datasets' shape: many distorted images over the scale, few pristine ones at the top.
SCORES = np.concatenate([np.linspace(1.5, 6.9, 400), np.full(8, 7.8)])


def test_weights_are_the_inverse_bin_density_up_to_the_cap():
    weights = score_balance_weights(SCORES, cap=8)
    top = weights[-8:]
    assert np.all(top == top[0]) and top[0] > 4  # the 8 references share a bin: ~37 images per 0.5 over the rest
    assert weights[:400].min() == 1.0  # the fullest bin keeps weight 1
    assert np.all(score_balance_weights(SCORES, cap=2) <= 2) and score_balance_weights(SCORES, cap=2)[-1] == 2
    assert np.all(score_balance_weights(np.full(5, 4.0), cap=8) == 1)  # one bin: nothing to balance


def test_weights_refuse_a_cap_below_one():
    with pytest.raises(ValueError, match="cap"):
        score_balance_weights(SCORES, cap=0.5)


def draws(weights, epochs=20):
    shapes = [(192, 192)] * len(SCORES)
    sampler = ShapeBucketBatchSampler(shapes, 32, seed=3, draw=EpochDraw(weights=weights))
    seen = Counter()
    for epoch in range(epochs):
        sampler.set_epoch(epoch)
        batches = list(sampler)
        assert sum(len(b) for b in batches) == len(SCORES)  # an epoch draws as many images as there are
        seen.update(i for b in batches for i in b)
    return seen


def test_sampler_draws_rare_scores_more_often_at_the_same_epoch_length():
    weights = score_balance_weights(SCORES, cap=8)
    seen = draws(weights)
    per_reference = sum(seen[i] for i in range(400, 408)) / 8 / 20
    per_other = sum(seen[i] for i in range(400)) / 400 / 20
    assert per_reference > 3 * per_other
    plain = draws(None)
    assert all(plain[i] == 20 for i in range(len(SCORES)))  # without weights every image once per epoch


def test_weighted_draws_keep_the_photo_grouping():
    groups = tuple(i % 10 for i in range(len(SCORES)))
    draw = EpochDraw(BatchGrouping(groups, 4), score_balance_weights(SCORES, cap=8))
    sampler = ShapeBucketBatchSampler([(192, 192)] * len(SCORES), 32, seed=1, draw=draw)
    batches = list(sampler)
    assert sum(len(b) for b in batches) == len(SCORES)
    assert all(len({groups[i] for i in b}) <= 4 for b in batches)
    assert sum(i >= 400 for b in batches for i in b) > 3 * 8  # the references recur


def test_bad_weights_and_settings_are_refused_by_name():
    with pytest.raises(ValueError, match="weights"):
        ShapeBucketBatchSampler([(32, 32)] * 3, 2, draw=EpochDraw(weights=np.ones(2)))
    with pytest.raises(ValueError, match="weights"):
        ShapeBucketBatchSampler([(32, 32)] * 2, 2, draw=EpochDraw(weights=np.array([1.0, 0.0])))
    with pytest.raises(ValueError, match="weights"):
        ShapeBucketBatchSampler([(32, 32)] * 2, 2, shuffle=False, draw=EpochDraw(weights=np.ones(2)))
    with pytest.raises(ValueError, match="balance_scores"):
        TrainConfig(data="x", balance_scores=0.5)
