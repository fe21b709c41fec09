"""Tests for aestheticnet.losses (EMD and self-weighted EMD)."""

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import wasserstein_distance

from aestheticnet.losses import EMDLoss, LOSS_NAMES, emd, make_loss, sw_emd

SETTINGS = settings(max_examples=60, deadline=None)

R_VALUES = st.sampled_from([1.0, 1.5, 2.0, 3.0])
LAM_BELOW_ONE = st.floats(min_value=0.0, max_value=0.99, allow_nan=False)


@st.composite
def dist_pairs(draw, min_batch=1, max_batch=5):
    """Pairs of batched distributions built from integer vote counts.

    Integer counts keep unequal distributions separated by far more than
    float64 rounding, so "not equal" reliably means "CDFs differ".
    Counts include zeros so empty buckets are exercised.
    """
    n_buckets = draw(st.integers(min_value=2, max_value=12))
    batch = draw(st.integers(min_value=min_batch, max_value=max_batch))

    def one_dist():
        counts = draw(st.lists(st.integers(0, 20), min_size=n_buckets, max_size=n_buckets).filter(lambda c: sum(c) > 0))
        c = np.asarray(counts, dtype=np.float64)
        return c / c.sum()

    p = np.stack([one_dist() for _ in range(batch)])
    # Sometimes reuse rows so exact equality is also sampled.
    q_rows = [p[i] if draw(st.booleans()) else one_dist() for i in range(batch)]
    q = np.stack(q_rows)
    return torch.from_numpy(p), torch.from_numpy(q)


def reference_sw_emd(p, q, r, lam):
    """Independent numpy version of the documented formula (per row)."""
    p = np.asarray(p, dtype=np.float64)
    q = np.asarray(q, dtype=np.float64)
    n = p.shape[-1]
    gap = np.abs(np.cumsum(p, axis=-1) - np.cumsum(q, axis=-1))
    w = (1.0 - lam) / n + lam * p
    return np.sum(w * gap**r, axis=-1) ** (1.0 / r)


# --------------------------------------------------------------- properties


@SETTINGS
@given(pair=dist_pairs(), r=R_VALUES, lam=LAM_BELOW_ONE)
def test_zero_iff_equal(pair, r, lam):
    target, pred = pair
    values = sw_emd(pred, target, r=r, lam=lam, reduction="none")
    for i in range(target.shape[0]):
        if torch.equal(pred[i], target[i]):
            assert values[i].item() == 0.0
        else:
            assert values[i].item() > 0.0


@SETTINGS
@given(pair=dist_pairs(), r=R_VALUES, lam=st.floats(0.0, 1.0))
def test_non_negative_and_finite(pair, r, lam):
    target, pred = pair
    values = sw_emd(pred, target, r=r, lam=lam, reduction="none")
    assert torch.isfinite(values).all()
    assert (values >= 0).all()


@SETTINGS
@given(pair=dist_pairs(), r=R_VALUES)
def test_emd_symmetric(pair, r):
    p, q = pair
    torch.testing.assert_close(
        emd(p, q, r=r, reduction="none"),
        emd(q, p, r=r, reduction="none"),
        rtol=1e-12,
        atol=1e-15,
    )


@SETTINGS
@given(pair=dist_pairs(), r=R_VALUES)
def test_lam_zero_is_plain_emd(pair, r):
    target, pred = pair
    got = sw_emd(pred, target, r=r, lam=0.0, reduction="none")
    torch.testing.assert_close(got, emd(pred, target, r=r, reduction="none"))
    # ... and plain EMD is NIMA's ((1/N) sum |dCDF|^r)^(1/r).
    gap = np.abs(np.cumsum(target.numpy(), -1) - np.cumsum(pred.numpy(), -1))
    expected = np.mean(gap**r, axis=-1) ** (1.0 / r)
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-10, atol=1e-14)


@SETTINGS
@given(pair=dist_pairs(), r=R_VALUES, lam=st.floats(0.0, 1.0))
def test_sw_emd_matches_documented_formula(pair, r, lam):
    target, pred = pair
    got = sw_emd(pred, target, r=r, lam=lam, reduction="none").numpy()
    expected = reference_sw_emd(target.numpy(), pred.numpy(), r, lam)
    np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-14)


@SETTINGS
@given(pair=dist_pairs())
def test_emd_r1_is_wasserstein_over_n(pair):
    p, q = pair
    n = p.shape[-1]
    positions = np.arange(1, n + 1, dtype=np.float64)
    got = emd(q, p, r=1, reduction="none").numpy()
    for i in range(p.shape[0]):
        expected = (
            wasserstein_distance(
                u_values=positions,
                v_values=positions,
                u_weights=p[i].numpy(),
                v_weights=q[i].numpy(),
            )
            / n
        )
        assert got[i] == pytest.approx(expected, rel=1e-9, abs=1e-12)


@SETTINGS
@given(pair=dist_pairs(min_batch=2), r=R_VALUES, lam=st.floats(0.0, 1.0))
def test_batched_equals_per_row(pair, r, lam):
    target, pred = pair
    batched = sw_emd(pred, target, r=r, lam=lam, reduction="none")
    rows = torch.stack([sw_emd(pred[i], target[i], r=r, lam=lam, reduction="none") for i in range(len(pred))])
    torch.testing.assert_close(batched, rows)
    torch.testing.assert_close(sw_emd(pred, target, r=r, lam=lam), rows.mean())
    torch.testing.assert_close(sw_emd(pred, target, r=r, lam=lam, reduction="sum"), rows.sum())


@SETTINGS
@given(pair=dist_pairs(), r=R_VALUES, lam=st.floats(0.0, 1.0))
def test_gradients_finite_with_zeros_and_equality(pair, r, lam):
    target, pred = pair
    # Force zeros into the prediction, and make row 0 an exact match.
    pred = pred.clone()
    pred[:, 0] = 0.0
    pred = pred / pred.sum(-1, keepdim=True).clamp_min(1e-12)
    pred[0] = target[0]
    pred.requires_grad_(True)
    sw_emd(pred, target, r=r, lam=lam).backward()
    assert torch.isfinite(pred.grad).all()
    # Row 0 matches exactly, so its contribution is at the minimum: zero
    # gradient rather than the 0 * inf = nan of a naive root.
    assert torch.equal(pred.grad[0], torch.zeros_like(pred.grad[0]))


def test_gradient_at_exact_equality_is_zero_for_all_r():
    p = torch.tensor([[0.0, 0.1, 0.6, 0.3, 0.0]], dtype=torch.float64)
    for r in (1.0, 1.5, 2.0, 3.0):
        pred = p.clone().requires_grad_(True)
        loss = sw_emd(pred, p, r=r, lam=0.5)
        assert loss.item() == 0.0
        loss.backward()
        assert torch.isfinite(pred.grad).all()
        assert torch.equal(pred.grad, torch.zeros_like(pred.grad))


def test_gradcheck_away_from_zero():
    # Unnormalised positive inputs keep every CDF gap (including the last,
    # which is 0 for two normalised inputs) away from the |.| kink, where a
    # finite-difference check is meaningless.
    torch.manual_seed(0)
    target = torch.rand(3, 6, dtype=torch.float64) + 0.1
    pred = (2 * torch.rand(3, 6, dtype=torch.float64) + 0.1).requires_grad_(True)
    for r in (1.0, 2.0, 2.5):
        assert torch.autograd.gradcheck(lambda x: sw_emd(x, target, r=r, lam=0.3, reduction="none"), (pred,))


def test_pure_self_weighting_ignores_mass_where_target_is_zero():
    # The reason for the uniform term in the weights (module docstring).
    p = torch.tensor([0.0, 0.0, 1.0], dtype=torch.float64)
    q = torch.tensor([0.5, 0.0, 0.5], dtype=torch.float64)
    assert sw_emd(q, p, lam=1.0).item() == 0.0
    assert sw_emd(q, p, lam=0.5).item() > 0.0
    assert emd(q, p).item() > 0.0


def test_known_value():
    # CDF gaps: |0.5-0|, |0.5-0|, 0 -> EMD2 = sqrt((0.25+0.25)/3).
    p = torch.tensor([0.0, 0.0, 1.0], dtype=torch.float64)
    q = torch.tensor([0.5, 0.0, 0.5], dtype=torch.float64)
    assert emd(q, p, r=2).item() == pytest.approx(math.sqrt(0.5 / 3))
    assert emd(q, p, r=1).item() == pytest.approx(1.0 / 3)


def test_integer_counts_and_float32_inputs():
    counts = torch.tensor([[0, 2, 5, 3]])
    pred = torch.tensor([[0.1, 0.2, 0.5, 0.2]], dtype=torch.float32)
    out = emd(pred, counts / counts.sum())
    assert out.dtype == torch.float32 and torch.isfinite(out)
    assert torch.isfinite(emd(counts, counts)) and emd(counts, counts).item() == 0.0


# --------------------------------------------------------------- validation


@pytest.mark.parametrize(
    "pred_shape, target_shape, match",
    [
        ((2, 5), (2, 4), "target"),
        ((2, 5), (5,), "target"),
        ((2, 3, 5), (2, 3, 5), "pred"),
        ((4, 1), (4, 1), "N >= 2"),
        ((), (), "pred"),
    ],
)
def test_bad_shapes_raise(pred_shape, target_shape, match):
    with pytest.raises(ValueError, match=match):
        emd(torch.ones(pred_shape), torch.ones(target_shape))


@pytest.mark.parametrize("r", [0.5, 0, -1, float("inf"), float("nan"), "two"])
def test_bad_r_raises(r):
    p = torch.full((2, 4), 0.25)
    with pytest.raises(ValueError, match="r must"):
        sw_emd(p, p, r=r)
    with pytest.raises(ValueError, match="r must"):
        EMDLoss(r=r)


@pytest.mark.parametrize("lam", [-0.1, 1.1, float("nan")])
def test_bad_lam_raises(lam):
    p = torch.full((2, 4), 0.25)
    with pytest.raises(ValueError, match="lam"):
        sw_emd(p, p, lam=lam)
    with pytest.raises(ValueError, match="lam"):
        make_loss("sw_emd", lam=lam)


def test_bad_reduction_raises():
    p = torch.full((2, 4), 0.25)
    with pytest.raises(ValueError, match="reduction"):
        emd(p, p, reduction="avg")


def test_reduction_none_shapes():
    p = torch.full((3, 4), 0.25)
    assert emd(p, p, reduction="none").shape == (3,)
    assert emd(p[0], p[0], reduction="none").shape == ()


# --------------------------------------------------------------- module/factory


def test_emd_loss_module_trains():
    torch.manual_seed(0)
    target = torch.softmax(torch.randn(8, 10), -1)
    logits = torch.zeros(8, 10, requires_grad=True)
    criterion = EMDLoss(r=2, lam=0.0)
    assert isinstance(criterion, torch.nn.Module)
    opt = torch.optim.SGD([logits], lr=5.0)
    first = criterion(torch.softmax(logits, -1), target).item()
    for _ in range(50):
        opt.zero_grad()
        loss = criterion(torch.softmax(logits, -1), target)
        loss.backward()
        opt.step()
    assert loss.item() < 0.5 * first
    torch.testing.assert_close(
        criterion(torch.softmax(logits, -1), target),
        emd(torch.softmax(logits, -1), target, r=2),
    )


def test_make_loss_factory():
    p = torch.softmax(torch.randn(4, 10, generator=torch.Generator().manual_seed(1)), -1)
    q = torch.softmax(torch.randn(4, 10, generator=torch.Generator().manual_seed(2)), -1)
    plain = make_loss("emd", r=2, lam=0.7)
    assert plain.lam == 0.0  # "emd" never becomes self-weighted
    torch.testing.assert_close(plain(q, p), emd(q, p, r=2))
    weighted = make_loss("sw_emd", r=1, lam=0.7)
    torch.testing.assert_close(weighted(q, p), sw_emd(q, p, r=1, lam=0.7))
    assert set(LOSS_NAMES) == {"emd", "sw_emd"}


def test_make_loss_unknown_name_lists_valid_names():
    with pytest.raises(ValueError) as info:
        make_loss("cross_entropy")
    message = str(info.value)
    assert "cross_entropy" in message
    for name in LOSS_NAMES:
        assert name in message


def test_nan_prediction_gives_nan_loss():
    import torch

    from aestheticnet.losses import emd, sw_emd

    target = torch.full((2, 10), 0.1)
    pred = target.clone()
    pred[0, 3] = float("nan")
    for fn in (emd, sw_emd):
        per = fn(pred, target, reduction="none")
        assert per[0].isnan() and per[1] == 0


def test_pairwise_rank_loss_orders_only_pairs_of_one_photo():
    from aestheticnet.losses import pairwise_rank_loss

    good, bad = torch.zeros(10), torch.zeros(10)
    good[7], bad[2] = 1.0, 1.0  # mean scores 8 and 3
    target = torch.stack([good, bad, good, bad])
    groups = torch.tensor([0, 0, 1, 2])
    right = torch.stack([good, bad, bad, good])  # photo 0 ordered right; photos 1 and 2 have no pair
    wrong = torch.stack([bad, good, good, bad])
    assert pairwise_rank_loss(right, target, groups) < 0.01 < 4.0 < pairwise_rank_loss(wrong, target, groups)
    # Only the one same-photo pair counts: images of other photos may score anything.
    assert pairwise_rank_loss(right, target, groups) == pytest.approx(
        float(torch.nn.functional.softplus(-torch.tensor(5.0)))
    )
    assert pairwise_rank_loss(right, target, torch.tensor([0, 1, 2, 3])).item() == 0.0
    pred = torch.softmax(torch.randn(4, 10, requires_grad=True), dim=1)
    pairwise_rank_loss(pred, target, groups).backward()  # differentiable through the mean score
    with pytest.raises(ValueError, match="groups must have shape"):
        pairwise_rank_loss(right, target, torch.tensor([0, 0]))
