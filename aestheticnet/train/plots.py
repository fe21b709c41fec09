"""Plots for people: predicted vs ground-truth mean-score distributions (the paper's figures 7 and 8) and a
scatter of predicted against true mean scores."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from aestheticnet.io import atomic_path

__all__ = ["plot_score_distributions", "plot_scatter"]


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # files only; no display on servers
    import matplotlib.pyplot as plt

    return plt


def plot_score_distributions(pred_mean: np.ndarray, true_mean: np.ndarray, path: str | Path, title: str = "") -> Path:
    plt = _pyplot()
    lo = float(min(pred_mean.min(initial=1.0), true_mean.min(initial=1.0)))
    hi = float(max(pred_mean.max(initial=10.0), true_mean.max(initial=10.0)))
    bins = np.linspace(np.floor(lo), np.ceil(hi), 41)
    fig, ax = plt.subplots(figsize=(6, 4), dpi=110)
    ax.hist(true_mean, bins=bins, alpha=0.55, label="ground truth", color="#4477aa")
    ax.hist(pred_mean, bins=bins, alpha=0.55, label="predicted", color="#ee6677")
    ax.set_xlabel("mean score")
    ax.set_ylabel("images")
    ax.set_title(title or "mean-score distribution", fontsize=9)
    ax.legend()
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
    return Path(path)


def plot_scatter(pred_mean: np.ndarray, true_mean: np.ndarray, path: str | Path, title: str = "") -> Path:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(4.5, 4.5), dpi=110)
    ax.scatter(true_mean, pred_mean, s=6, alpha=0.5, color="#228833")
    lo = float(min(pred_mean.min(initial=1.0), true_mean.min(initial=1.0)))
    hi = float(max(pred_mean.max(initial=10.0), true_mean.max(initial=10.0)))
    ax.plot([lo, hi], [lo, hi], color="grey", lw=1, ls="--")
    ax.set_xlabel("ground-truth mean score")
    ax.set_ylabel("predicted mean score")
    ax.set_title(title or "predicted vs ground truth", fontsize=9)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
    return Path(path)
