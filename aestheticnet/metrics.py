"""Evaluation metrics for predicted score distributions.

Conventions
-----------
* A distribution has shape ``(N,)`` or ``(n, N)``; bucket ``k`` (1-based) is
  the score ``k``, so the mean score is ``sum_k k * p_k``. Inputs are used as
  given (not renormalised), so pass probability distributions.
* Binary accuracy labels an image "high" when its mean score is strictly
  greater than the threshold (default 5.0); a mean exactly at the threshold is
  "low", matching the usual AVA protocol.
* EMD is reported for both exponents with the exponent in the key
  (``emd_r1``, ``emd_r2``), because papers disagree on which one they print.
  Values are the mean over samples of the per-sample EMD from
  :func:`aestheticnet.losses.emd` (NIMA's normalisation, ``1/N`` inside).
* SROCC uses average ranks for ties (the standard Spearman definition),
  computed here in numpy so the library does not depend on scipy.

Degenerate inputs
-----------------
Metrics never raise for degenerate *values*; they return ``nan`` instead, so a
tiny validation split or a collapsed model shows up in the logs instead of
killing a long run:

* PLCC/SROCC return ``nan`` for fewer than 2 samples, for a constant input
  vector (correlation is undefined), or when any input is ``nan``.
* Accuracy, MAE and EMD return ``nan`` for zero samples.
* :func:`aggregate_runs` reports variance ``nan`` for a single run.

Bad *shapes* are programming errors and raise ``ValueError`` naming the
argument and the expected shape.
"""

from __future__ import annotations

import math
from typing import Dict, Mapping, Sequence

import numpy as np
import torch

from aestheticnet.losses import emd as _emd_loss

__all__ = [
    "mean_score",
    "score_std",
    "binary_accuracy",
    "rank_average",
    "plcc",
    "srocc",
    "emd_per_sample",
    "evaluate_distributions",
    "aggregate_runs",
]


def _to_numpy(x, name: str) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    try:
        return np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be numeric array-like") from exc


def _as_distributions(x, name: str, allow_1d: bool = True) -> np.ndarray:
    arr = _to_numpy(x, name)
    expected = "(n, N) or (N,)" if allow_1d else "(n, N)"
    ok_ndim = arr.ndim == 2 or (allow_1d and arr.ndim == 1)
    if not ok_ndim or arr.shape[-1] < 2:
        raise ValueError(f"{name} must have shape {expected} with N >= 2 buckets, got {arr.shape}")
    return arr


def _as_vector(x, name: str) -> np.ndarray:
    arr = _to_numpy(x, name)
    if arr.ndim != 1:
        raise ValueError(f"{name} must have shape (n,), got {arr.shape}")
    return arr


def _as_vector_pair(x, y, x_name: str, y_name: str):
    x = _as_vector(x, x_name)
    y = _as_vector(y, y_name)
    if x.shape != y.shape:
        raise ValueError(f"{y_name} must have the same shape as {x_name} {x.shape}, got {y.shape}")
    return x, y


def _bucket_scores(n_buckets: int) -> np.ndarray:
    return np.arange(1, n_buckets + 1, dtype=np.float64)


def mean_score(dist, buckets=None) -> np.ndarray:
    """Mean score ``sum_k s_k * p_k``: the one place a distribution becomes a score. ``buckets`` are the scores
    ``s_k`` (a model's ``score_buckets``); default 1..N.

    Returns shape ``(n,)`` for ``(n, N)`` input, a 0-d array for ``(N,)``.
    """
    dist = _as_distributions(dist, "dist")
    return dist @ _scores(dist, buckets)


def _scores(dist: np.ndarray, buckets) -> np.ndarray:
    if buckets is None:
        return _bucket_scores(dist.shape[-1])
    scores = np.asarray(buckets, dtype=np.float64)
    if scores.shape != (dist.shape[-1],):
        raise ValueError(f"buckets {scores.tolist()} do not match distributions over {dist.shape[-1]} buckets")
    return scores


def score_std(dist, buckets=None) -> np.ndarray:
    """Standard deviation of the score under each distribution (``buckets`` as in :func:`mean_score`).

    Computed as ``sqrt(sum_k p_k (k - mean)^2)`` rather than
    ``E[k^2] - mean^2``, which can go slightly negative from cancellation
    for peaked distributions.
    """
    dist = _as_distributions(dist, "dist")
    scores = _scores(dist, buckets)
    mu = dist @ scores
    centred = scores - np.expand_dims(mu, -1)
    return np.sqrt(np.sum(dist * centred**2, axis=-1))


def binary_accuracy(pred_scores, target_scores, threshold: float = 5.0) -> float:
    """Fraction of samples whose high/low class agrees.

    Args:
        pred_scores, target_scores: mean scores, shape ``(n,)``.
        threshold: a score strictly greater than this is "high"; equal is "low".

    Returns ``nan`` for zero samples.
    """
    pred, target = _as_vector_pair(pred_scores, target_scores, "pred_scores", "target_scores")
    if pred.size == 0:
        return math.nan
    return float(np.mean((pred > threshold) == (target > threshold)))


def rank_average(x) -> np.ndarray:
    """1-based ranks of ``x`` with ties given the average of their positions.

    Equivalent to ``scipy.stats.rankdata(x, method="average")`` for finite
    input.
    """
    x = _as_vector(x, "x")
    n = x.size
    # A stable sort keeps the result deterministic; ties are averaged anyway.
    order = np.argsort(x, kind="mergesort")
    sorted_x = x[order]
    starts_group = np.ones(n, dtype=bool)
    starts_group[1:] = sorted_x[1:] != sorted_x[:-1]
    group_id = np.cumsum(starts_group) - 1
    starts = np.flatnonzero(starts_group)
    ends = np.append(starts[1:], n)  # exclusive
    # Positions start..end-1 (0-based) share rank mean(start+1 .. end).
    group_rank = (starts + ends + 1) / 2.0
    ranks = np.empty(n, dtype=np.float64)
    ranks[order] = group_rank[group_id]
    return ranks


def _pearson(x: np.ndarray, y: np.ndarray) -> float:
    if x.size < 2 or np.isnan(x).any() or np.isnan(y).any():
        return math.nan
    # Exact constancy check: a centred constant vector is not always exactly
    # zero in floating point, which would yield a meaningless +-1.
    if np.all(x == x[0]) or np.all(y == y[0]):
        return math.nan
    xc = x - x.mean()
    yc = y - y.mean()
    denom = math.sqrt(float(np.dot(xc, xc)) * float(np.dot(yc, yc)))
    if denom == 0.0 or not math.isfinite(denom):
        return math.nan
    return float(np.clip(np.dot(xc, yc) / denom, -1.0, 1.0))


def plcc(x, y) -> float:
    """Pearson linear correlation; ``nan`` if undefined (see module docs)."""
    x, y = _as_vector_pair(x, y, "x", "y")
    return _pearson(x, y)


def srocc(x, y) -> float:
    """Spearman rank correlation with average ranks for ties; ``nan`` if undefined."""
    x, y = _as_vector_pair(x, y, "x", "y")
    # Ranking would silently order nan last; an undefined input should give
    # an undefined correlation instead.
    if x.size < 2 or np.isnan(x).any() or np.isnan(y).any():
        return math.nan
    return _pearson(rank_average(x), rank_average(y))


def _check_dist_pair(pred, target):
    pred = _as_distributions(pred, "pred", allow_1d=False)
    target = _as_distributions(target, "target", allow_1d=False)
    if pred.shape != target.shape:
        raise ValueError(f"target must have the same shape (n, N) as pred {pred.shape}, got {target.shape}")
    return pred, target


def emd_per_sample(pred, target, r: float) -> np.ndarray:
    """Per-sample EMD_r (``r`` explicit), shape ``(n,)`` for ``(n, N)`` input."""
    pred, target = _check_dist_pair(pred, target)
    # from_numpy rejects negative strides (e.g. reversed views), hence the copy.
    pred_t = torch.from_numpy(np.ascontiguousarray(pred))
    target_t = torch.from_numpy(np.ascontiguousarray(target))
    with torch.no_grad():
        values = _emd_loss(pred_t, target_t, r=r, reduction="none")
    return values.numpy()


def _nanless_mean(values: np.ndarray) -> float:
    # np.mean of an empty array warns and returns nan; be explicit instead.
    return float(values.mean()) if values.size else math.nan


def evaluate_distributions(pred, target, threshold: float = 5.0) -> Dict[str, float]:
    """All evaluation metrics for predicted vs ground-truth distributions.

    Args:
        pred, target: numpy arrays or torch tensors of shape ``(n, N)``.
        threshold: high/low boundary for ``accuracy`` (equal counts as low).

    Returns a dict of floats with keys:
        ``accuracy``, ``plcc``, ``srocc`` (on mean scores), ``mae`` and
        ``rmse`` (of mean scores), ``emd_r1``, ``emd_r2`` (mean over samples),
        ``std_plcc``, ``std_srocc`` (on score standard deviations), and
        ``n`` (number of samples). Undefined entries are ``nan``.
    """
    pred, target = _check_dist_pair(pred, target)
    pred_mean, target_mean = mean_score(pred), mean_score(target)
    pred_std, target_std = score_std(pred), score_std(target)
    err = pred_mean - target_mean
    return {
        "accuracy": binary_accuracy(pred_mean, target_mean, threshold),
        "plcc": plcc(pred_mean, target_mean),
        "srocc": srocc(pred_mean, target_mean),
        "mae": _nanless_mean(np.abs(err)),
        "rmse": math.sqrt(_nanless_mean(err**2)),
        "emd_r1": _nanless_mean(emd_per_sample(pred, target, r=1)),
        "emd_r2": _nanless_mean(emd_per_sample(pred, target, r=2)),
        "std_plcc": plcc(pred_std, target_std),
        "std_srocc": srocc(pred_std, target_std),
        "n": float(pred.shape[0]),
    }


def aggregate_runs(runs: Sequence[Mapping[str, float]]) -> Dict[str, Dict[str, float]]:
    """Mean and variance of every metric over repeated runs.

    Args:
        runs: one metric dict per run (e.g. from :func:`evaluate_distributions`);
            all dicts must have the same keys.

    Returns ``{key: {"mean": m, "var": v}}``. The variance is the unbiased
    sample variance (``ddof=1``), as runs are a sample of seeds; with a single
    run it is ``nan``. A ``nan`` metric in any run propagates to that key.

    Raises:
        ValueError: if ``runs`` is empty or the runs' keys differ.
    """
    runs = list(runs)
    if not runs:
        raise ValueError("runs must be a non-empty sequence of metric dicts")
    keys = list(runs[0].keys())
    key_set = set(keys)
    for i, run in enumerate(runs[1:], start=1):
        if set(run.keys()) != key_set:
            missing = sorted(key_set - set(run.keys()))
            extra = sorted(set(run.keys()) - key_set)
            raise ValueError(f"runs[{i}] keys differ from runs[0]: missing {missing}, extra {extra}")
    result: Dict[str, Dict[str, float]] = {}
    for key in keys:
        values = np.array([float(run[key]) for run in runs], dtype=np.float64)
        var = float(np.var(values, ddof=1)) if values.size >= 2 else math.nan
        result[key] = {"mean": float(values.mean()), "var": var}
    return result
