"""Synthetic labels: full-reference quality -> latent 1..10 quality -> rater votes.

The chain, with the defaults of :class:`aestheticnet.data.synthetic.SynthConfig`:

1. **Full-reference score** ``q`` in [0, 1] (:func:`fr_quality`)::

       s   = clip(SSIM(ref, img), 0, 1)              # skimage, data_range=255, 7x7 window
       p   = clip((PSNR(ref, img) - 10) / (40 - 10), 0, 1)   # PSNR in dB, inf -> 1
       q   = 0.7 * s + 0.3 * p

   mixed with the distortion's severity (:func:`with_severity`), the same for every photo::

       q   = (1 - w) * q + w * (1 - (1 - q_floor) * level / levels)     # w = severity_weight, 0.5

   SSIM and PSNR alone make the cost of a distortion depend on the content far more than people's votes do: on a
   smooth photo (the clock, the rocket) a blur of sigma 4.5 kept 95% of the label while a little noise took it to
   the floor, and a network trained on those labels learned "less fine detail is better" and ranked blurred
   photos it never saw above sharp ones. The severity term says that a strong blur is a strong blur on any photo.

2. **Latent quality** ``L`` on 1..10 (:func:`latent_quality`)::

       top = ref_quality + offset,  offset ~ N(0, ref_spread) per reference image
       r   = clip((q - q_floor) / (1 - q_floor), 0, 1) ** gamma     # q_floor=0.2, gamma=1
       L   = 1 + (top - 1) * r

   so a pristine reference sits near ``ref_quality`` (8.0) and a destroyed image near 1.

3. **Votes** (:func:`sample_votes`): a pool of raters, rater ``j`` with bias
   ``b_j ~ N(0, bias_sd)`` (0.7) and noise scale ``s_j = noise_sd * exp(N(0, 0.2))``
   (noise_sd 1.1).  Each image draws ``n ~ round(LogNormal(log 210, 0.45))`` clipped to
   78..549 votes from distinct raters; rater ``j`` votes ``clip(round(L + b_j + s_j * e), 1, 10)``
   with ``e ~ N(0, 1)``.  The per-image spread of votes is then about
   ``sqrt(bias_sd**2 + noise_sd**2 + 1/12)`` ~ 1.35 mid-scale, shrinking near the ends
   where votes clip, which matches AVA's 1.1..1.6.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

N_BUCKETS = 10


def fr_quality(
    ref: np.ndarray, img: np.ndarray, ssim_weight: float = 0.7, psnr_range: tuple[float, float] = (10.0, 40.0)
) -> tuple[float, float, float]:
    """Return ``(q, ssim, psnr)`` for uint8 ``H x W x C`` arrays (see module docstring)."""
    if ref.shape != img.shape:
        raise ValueError(f"shape mismatch {ref.shape} vs {img.shape}")
    if ref.shape[2] == 1:
        ssim = structural_similarity(ref[..., 0], img[..., 0], data_range=255)
    else:
        ssim = structural_similarity(ref, img, channel_axis=2, data_range=255)
    if np.array_equal(ref, img):
        psnr = float("inf")  # skimage warns on division by zero; identical means perfect
    else:
        psnr = float(peak_signal_noise_ratio(ref, img, data_range=255))
    lo, hi = psnr_range
    p = 1.0 if psnr == float("inf") else min(max((psnr - lo) / (hi - lo), 0.0), 1.0)
    s = min(max(float(ssim), 0.0), 1.0)
    return ssim_weight * s + (1.0 - ssim_weight) * p, float(ssim), psnr


def with_severity(q: float, level: int, levels: int, weight: float, q_floor: float = 0.2) -> float:
    """Mix the full-reference score ``q`` with the content-independent severity of ``level`` (0 = pristine)."""
    severity = 1.0 - (1.0 - q_floor) * level / levels
    return (1.0 - weight) * q + weight * severity


def latent_quality(q: float, top: float, q_floor: float = 0.2, gamma: float = 1.0) -> float:
    """Map FR score ``q`` to a latent 1..10 quality whose maximum (q = 1) is ``top``."""
    r = min(max((q - q_floor) / (1.0 - q_floor), 0.0), 1.0) ** gamma
    return 1.0 + (top - 1.0) * r


@dataclass(frozen=True)
class RaterPool:
    bias: np.ndarray  # per-rater additive bias in score units
    noise: np.ndarray  # per-rater noise standard deviation

    @classmethod
    def draw(cls, n: int, bias_sd: float, noise_sd: float, rng: np.random.Generator) -> "RaterPool":
        bias = rng.normal(0.0, bias_sd, n)
        # Raters differ in consistency too; the lognormal keeps every scale positive.
        noise = noise_sd * np.exp(rng.normal(0.0, 0.2, n))
        return cls(bias=bias, noise=noise)

    def __len__(self) -> int:
        return len(self.bias)


def draw_vote_count(
    rng: np.random.Generator, median: float = 210.0, log_sd: float = 0.45, lo: int = 78, hi: int = 549
) -> int:
    """AVA-like number of votes: skewed, 78..549."""
    return int(np.clip(round(float(np.exp(rng.normal(np.log(median), log_sd)))), lo, hi))


def sample_votes(latent: float, pool: RaterPool, rng: np.random.Generator, n_votes: int) -> np.ndarray:
    """Histogram (length 10, scores 1..10) of ``n_votes`` votes from distinct pool raters."""
    if n_votes > len(pool):
        raise ValueError(f"{n_votes} votes need at least as many raters (pool has {len(pool)})")
    who = rng.choice(len(pool), size=n_votes, replace=False)
    raw = latent + pool.bias[who] + pool.noise[who] * rng.standard_normal(n_votes)
    votes = np.clip(np.rint(raw), 1, N_BUCKETS).astype(np.int64)
    return np.bincount(votes - 1, minlength=N_BUCKETS)


def hist_mean_std(hist: np.ndarray) -> tuple[float, float]:
    """Mean and (population) standard deviation of scores 1..10 from a vote histogram."""
    scores = np.arange(1, N_BUCKETS + 1, dtype=np.float64)
    n = hist.sum()
    mean = float((hist * scores).sum() / n)
    return mean, float(np.sqrt((hist * (scores - mean) ** 2).sum() / n))
