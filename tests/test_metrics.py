"""Tests for aestheticnet.metrics."""

import math
import warnings

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from aestheticnet.losses import emd
from aestheticnet.metrics import (
    aggregate_runs,
    binary_accuracy,
    emd_per_sample,
    evaluate_distributions,
    mean_score,
    plcc,
    rank_average,
    score_std,
    srocc,
)

SETTINGS = settings(max_examples=60, deadline=None)


def random_dists(rng, n, n_buckets=10):
    raw = rng.gamma(1.0, size=(n, n_buckets))
    raw[rng.random(raw.shape) < 0.2] = 0.0  # empty buckets, as in real votes
    raw[:, 0] += 1e-3  # keep every row non-empty
    return raw / raw.sum(-1, keepdims=True)


def scipy_quiet(fn, *args):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn(*args)[0]


# ------------------------------------------------------------ correlations

tied_vectors = st.integers(2, 40).flatmap(
    lambda n: st.tuples(
        st.lists(st.integers(-3, 3), min_size=n, max_size=n),
        st.lists(st.integers(-3, 3), min_size=n, max_size=n),
    )
)


@SETTINGS
@given(xy=tied_vectors)
def test_plcc_srocc_match_scipy_with_ties(xy):
    # Small integer ranges force many ties and occasional constant vectors.
    x = np.asarray(xy[0], dtype=np.float64)
    y = np.asarray(xy[1], dtype=np.float64)
    for ours, theirs in ((plcc, stats.pearsonr), (srocc, stats.spearmanr)):
        expected = scipy_quiet(theirs, x, y)
        got = ours(x, y)
        if np.isnan(expected):
            assert math.isnan(got)
        else:
            assert got == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize("seed", range(5))
def test_correlations_match_scipy_on_rounded_random_data(seed):
    rng = np.random.default_rng(seed)
    x = np.round(rng.normal(5, 1.5, size=200), 1)
    y = np.round(0.6 * x + rng.normal(0, 1, size=200))
    assert plcc(x, y) == pytest.approx(stats.pearsonr(x, y)[0], abs=1e-12)
    assert srocc(x, y) == pytest.approx(stats.spearmanr(x, y)[0], abs=1e-12)


@SETTINGS
@given(values=st.lists(st.integers(-5, 5) | st.floats(-1e6, 1e6), max_size=50))
def test_rank_average_matches_scipy(values):
    x = np.asarray(values, dtype=np.float64)
    np.testing.assert_array_equal(rank_average(x), stats.rankdata(x, method="average"))


def test_correlation_degenerate_inputs_return_nan():
    assert math.isnan(plcc([1.0], [2.0]))
    assert math.isnan(srocc([1.0], [2.0]))
    assert math.isnan(plcc([], []))
    assert math.isnan(srocc([], []))
    assert math.isnan(plcc([3.0, 3.0, 3.0], [1.0, 2.0, 3.0]))
    assert math.isnan(srocc([1.0, 2.0, 3.0], [0.1, 0.1, 0.1]))
    assert math.isnan(plcc([1.0, np.nan, 3.0], [1.0, 2.0, 3.0]))
    assert math.isnan(srocc([1.0, np.nan, 3.0], [1.0, 2.0, 3.0]))
    # A constant that is not exactly representable must still be "constant".
    assert math.isnan(plcc([0.1] * 7, list(range(7))))


def test_correlation_shape_errors_name_argument():
    with pytest.raises(ValueError, match=r"y must have the same shape"):
        plcc([1, 2, 3], [1, 2])
    with pytest.raises(ValueError, match=r"x must have shape \(n,\)"):
        srocc(np.ones((2, 2)), np.ones((2, 2)))


# ------------------------------------------------------------ scores & accuracy


def test_mean_and_std_against_direct_sums():
    rng = np.random.default_rng(3)
    d = random_dists(rng, 20, 10)
    k = np.arange(1, 11)
    mu = np.array([sum(k[j] * row[j] for j in range(10)) for row in d])
    var = np.array([sum(row[j] * (k[j] - m) ** 2 for j in range(10)) for row, m in zip(d, mu)])
    np.testing.assert_allclose(mean_score(d), mu, rtol=1e-12)
    np.testing.assert_allclose(score_std(d), np.sqrt(var), rtol=1e-12)
    # One-hot at score 7: mean 7, no spread.
    one_hot = np.eye(10)[6]
    assert float(mean_score(one_hot)) == 7.0
    assert float(score_std(one_hot)) == 0.0


def test_accuracy_threshold_edge_is_low():
    target = np.array([5.0, 5.0, 5.0001, 4.9, 7.0])
    pred = np.array([5.0001, 5.0, 5.0, 4.9, 7.0])
    # 5.0 counts as low: row0 low vs high (wrong), row1 agrees,
    # row2 high vs low (wrong), rows 3-4 agree.
    assert binary_accuracy(pred, target) == pytest.approx(3 / 5)
    # Configurable threshold moves the edge.
    assert binary_accuracy(pred, target, threshold=4.9) == pytest.approx(1.0)
    assert binary_accuracy(np.array([6.0]), np.array([6.5]), threshold=6.0) == 0.0
    assert math.isnan(binary_accuracy([], []))


def test_accuracy_against_manual_count():
    rng = np.random.default_rng(7)
    pred = np.round(rng.uniform(3, 7, 500), 1)
    target = np.round(rng.uniform(3, 7, 500), 1)
    for thr in (5.0, 4.5, 6.0):
        manual = sum((p > thr) == (t > thr) for p, t in zip(pred, target)) / 500
        assert binary_accuracy(pred, target, threshold=thr) == pytest.approx(manual)


# ------------------------------------------------------------ evaluate_distributions


def test_evaluate_distributions_consistent_with_parts():
    rng = np.random.default_rng(11)
    target = random_dists(rng, 64)
    pred = 0.7 * target + 0.3 * random_dists(rng, 64)
    out = evaluate_distributions(pred, target)
    expected_keys = {
        "accuracy",
        "plcc",
        "srocc",
        "mae",
        "rmse",
        "emd_r1",
        "emd_r2",
        "std_plcc",
        "std_srocc",
        "n",
    }
    assert set(out) == expected_keys
    assert all(isinstance(v, float) for v in out.values())
    pm, tm = mean_score(pred), mean_score(target)
    ps, ts = score_std(pred), score_std(target)
    assert out["plcc"] == pytest.approx(stats.pearsonr(pm, tm)[0], abs=1e-12)
    assert out["srocc"] == pytest.approx(stats.spearmanr(pm, tm)[0], abs=1e-12)
    assert out["std_plcc"] == pytest.approx(stats.pearsonr(ps, ts)[0], abs=1e-12)
    assert out["std_srocc"] == pytest.approx(stats.spearmanr(ps, ts)[0], abs=1e-12)
    assert out["accuracy"] == pytest.approx(np.mean((pm > 5) == (tm > 5)))
    assert out["mae"] == pytest.approx(np.mean(np.abs(pm - tm)))
    assert out["rmse"] == pytest.approx(np.sqrt(np.mean((pm - tm) ** 2)))
    assert out["n"] == 64.0
    # EMD r=1 independently via the 1-D Wasserstein distance / N.
    pos = np.arange(1, 11)
    w1 = np.mean([stats.wasserstein_distance(pos, pos, u_weights=t, v_weights=p) / 10 for p, t in zip(pred, target)])
    assert out["emd_r1"] == pytest.approx(w1, rel=1e-9)
    assert out["emd_r2"] == pytest.approx(emd(torch.from_numpy(pred), torch.from_numpy(target), r=2).item(), rel=1e-12)
    assert out["emd_r2"] != pytest.approx(out["emd_r1"])


def test_evaluate_distributions_accepts_torch_and_threshold():
    rng = np.random.default_rng(5)
    target = random_dists(rng, 30)
    pred = random_dists(rng, 30)
    from_np = evaluate_distributions(pred, target, threshold=4.0)
    from_torch = evaluate_distributions(
        torch.from_numpy(pred).float().requires_grad_(True),
        torch.from_numpy(target),
        threshold=4.0,
    )
    for key in from_np:
        assert from_torch[key] == pytest.approx(from_np[key], rel=1e-5, abs=1e-6)
    pm, tm = mean_score(pred), mean_score(target)
    assert from_np["accuracy"] == pytest.approx(np.mean((pm > 4) == (tm > 4)))


def test_evaluate_distributions_degenerate_inputs_do_not_crash():
    one = random_dists(np.random.default_rng(0), 1)
    out = evaluate_distributions(one, one)
    assert math.isnan(out["plcc"]) and math.isnan(out["srocc"])
    assert math.isnan(out["std_plcc"]) and math.isnan(out["std_srocc"])
    assert out["accuracy"] == 1.0 and out["emd_r1"] == 0.0 and out["emd_r2"] == 0.0
    # Constant predictions (a collapsed model) give nan correlations.
    target = random_dists(np.random.default_rng(1), 8)
    const = np.tile(target[:1], (8, 1))
    out = evaluate_distributions(const, target)
    assert math.isnan(out["plcc"]) and math.isnan(out["std_srocc"])
    assert math.isfinite(out["emd_r2"])
    empty = np.zeros((0, 10))
    out = evaluate_distributions(empty, empty)
    assert all(math.isnan(v) for k, v in out.items() if k != "n")


@pytest.mark.parametrize(
    "pred_shape, target_shape, match",
    [
        ((4, 10), (4, 9), r"target must have the same shape \(n, N\)"),
        ((10,), (10,), r"pred must have shape \(n, N\)"),
        ((4, 10), (4, 10, 1), r"target must have shape \(n, N\)"),
        ((4, 1), (4, 1), r"pred must have shape \(n, N\) with N >= 2"),
    ],
)
def test_evaluate_distributions_bad_shapes(pred_shape, target_shape, match):
    with pytest.raises(ValueError, match=match):
        evaluate_distributions(np.ones(pred_shape), np.ones(target_shape))


def test_emd_per_sample_explicit_r():
    rng = np.random.default_rng(2)
    p, q = random_dists(rng, 5), random_dists(rng, 5)
    gap = np.abs(np.cumsum(p, -1) - np.cumsum(q, -1))
    np.testing.assert_allclose(emd_per_sample(q, p, r=1), gap.mean(-1), rtol=1e-12)
    np.testing.assert_allclose(emd_per_sample(q, p, r=2), np.sqrt((gap**2).mean(-1)), rtol=1e-12)
    # Reversed (negative-stride) views are accepted.
    np.testing.assert_allclose(emd_per_sample(q[::-1], p[::-1], r=2), emd_per_sample(q, p, r=2)[::-1])


# ------------------------------------------------------------ aggregation


def test_aggregate_runs_matches_numpy_sample_variance():
    rng = np.random.default_rng(9)
    runs = [{"plcc": rng.random(), "srocc": rng.random(), "emd_r2": rng.random()} for _ in range(6)]
    agg = aggregate_runs(runs)
    assert set(agg) == {"plcc", "srocc", "emd_r2"}
    for key in agg:
        values = np.array([r[key] for r in runs])
        assert agg[key]["mean"] == pytest.approx(np.mean(values), rel=1e-12)
        # ddof=1: unbiased sample variance over runs.
        assert agg[key]["var"] == pytest.approx(np.var(values, ddof=1), rel=1e-12)
        assert agg[key]["var"] != pytest.approx(np.var(values, ddof=0), rel=1e-12)


def test_aggregate_runs_edge_cases():
    single = aggregate_runs([{"plcc": 0.7}])
    assert single["plcc"]["mean"] == 0.7 and math.isnan(single["plcc"]["var"])
    with_nan = aggregate_runs([{"plcc": 0.7}, {"plcc": float("nan")}])
    assert math.isnan(with_nan["plcc"]["mean"])
    with pytest.raises(ValueError, match="non-empty"):
        aggregate_runs([])
    with pytest.raises(ValueError, match=r"runs\[1\].*missing \['srocc'\]"):
        aggregate_runs([{"plcc": 0.1, "srocc": 0.2}, {"plcc": 0.3}])


def test_aggregate_runs_over_evaluate_outputs():
    rng = np.random.default_rng(4)
    target = random_dists(rng, 20)
    runs = [evaluate_distributions(random_dists(rng, 20), target) for _ in range(3)]
    agg = aggregate_runs(runs)
    assert set(agg) == set(runs[0])
    assert agg["emd_r1"]["mean"] == pytest.approx(np.mean([r["emd_r1"] for r in runs]))


def test_mean_and_std_take_torch_tensors_and_a_models_score_buckets():
    d = torch.zeros(2, 10)
    d[0, 4] = 1.0  # all mass on score 5
    d[1, 0] = d[1, 9] = 0.5  # half on 1, half on 10
    np.testing.assert_allclose(mean_score(d), [5.0, 5.5])
    np.testing.assert_allclose(score_std(d), [0.0, 4.5])
    buckets = np.arange(10) * 0.5  # scores 0, 0.5, ..., 4.5
    np.testing.assert_allclose(mean_score(d, buckets), [2.0, 2.25])
    np.testing.assert_allclose(score_std(d, buckets), [0.0, 2.25])
    with pytest.raises(ValueError, match="do not match"):
        mean_score(d, [1, 2, 3])
    with pytest.raises(ValueError, match="dist must have shape"):
        mean_score(torch.ones(2, 2, 2))
