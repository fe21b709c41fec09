"""Accuracy against latency: the points of several trained models, their plot, and which is better at equal latency.

One home for what both the pipeline's report and ``benchmarks/accuracy_latency.py`` show: every model a point
(its latency on the target, its accuracy with the spread over seeds), the baseline's points joined as a curve
(NIMA-MobileNetV2 at its widths), and a verdict that compares a model with the baseline curve at the model's own
latency: above the curve means more accurate than the baseline would be at that latency.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path

__all__ = ["CurveVerdict", "TradeoffPoint", "against_curve", "baseline_at", "plot_tradeoff", "tradeoff_sentence"]


@dataclass(frozen=True)
class TradeoffPoint:
    name: str
    latency_ms: float
    accuracy: float  # the mean over seeds (or the one run's value)
    spread: float = 0.0  # the std over seeds; 0 for a single run
    baseline: bool = False  # a point of the baseline's curve


def baseline_at(points: list[TradeoffPoint], latency_ms: float) -> float | None:
    """The baseline curve's accuracy at ``latency_ms``: linear between its points, its one value when it has one
    point at that latency; None outside the curve's latency range (no extrapolation)."""
    curve = sorted((p.latency_ms, p.accuracy) for p in points if p.baseline)
    if not curve or not curve[0][0] <= latency_ms <= curve[-1][0]:
        return None
    for (x0, y0), (x1, y1) in itertools.pairwise(curve):
        if x0 <= latency_ms <= x1:
            return y0 if x1 == x0 else y0 + (y1 - y0) * (latency_ms - x0) / (x1 - x0)
    return curve[0][1]


@dataclass(frozen=True)
class CurveVerdict:
    """A model against the baseline curve at the model's own latency."""

    point: TradeoffPoint
    curve: float | None  # the curve's accuracy at the point's latency; None outside its latency range
    word: str  # inside: "above" or "below"; outside: "better than", "worse than" or "a trade against" ``nearest``
    nearest: TradeoffPoint  # the baseline point nearest in latency

    @property
    def above(self) -> bool | None:
        """Whether the point is at least the curve's accuracy; None outside the curve's range."""
        return None if self.curve is None else self.word == "above"


def against_curve(point: TradeoffPoint, points: list[TradeoffPoint]) -> CurveVerdict:
    """``point`` against the baseline points of ``points`` (at least one) at ``point``'s latency."""
    baselines = [p for p in points if p.baseline]
    near = min(baselines, key=lambda b: abs(b.latency_ms - point.latency_ms))
    at = baseline_at(baselines, point.latency_ms)
    if at is not None:
        return CurveVerdict(point, at, "above" if point.accuracy >= at else "below", near)
    # Outside the curve's range: compare with the nearest baseline point; a model that is both faster and more
    # accurate (or both slower and less accurate) is still decided, anything else is a trade.
    faster, better = point.latency_ms <= near.latency_ms, point.accuracy >= near.accuracy
    word = ("better than" if better else "worse than") if faster == better else "a trade against"
    return CurveVerdict(point, None, word, near)


def _verdict(point: TradeoffPoint, baselines: list[TradeoffPoint], metric: str) -> str:
    v = against_curve(point, baselines)
    if v.curve is not None:
        return (
            f"{point.name} ({point.latency_ms:.2f} ms, {metric} {point.accuracy:.3f}) lies {v.word} the baseline, "
            f"which reaches {v.curve:.3f} at that latency"
        )
    near, ratio = v.nearest, point.latency_ms / v.nearest.latency_ms
    return (
        f"{point.name} ({point.latency_ms:.2f} ms = {ratio:.2f}x, {metric} {point.accuracy:.3f}) is {v.word} "
        f"{near.name} ({near.latency_ms:.2f} ms, {metric} {near.accuracy:.3f})"
    )


def tradeoff_sentence(points: list[TradeoffPoint], metric: str = "SROCC") -> str:
    """One sentence: every model against the baseline at its own latency."""
    baselines = [p for p in points if p.baseline]
    others = [p for p in points if not p.baseline]
    if not baselines or not others:
        return "Nothing to compare: the plot needs the baseline and at least one other model."
    return "At equal latency: " + "; ".join(_verdict(p, baselines, metric) for p in others) + "."


def plot_tradeoff(points: list[TradeoffPoint], path: str | Path, xlabel: str, ylabel: str = "SROCC") -> Path:
    """Every point with its spread as an error bar, the baseline's points joined; written to ``path`` (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(7, 4.5))
    curve = sorted((p for p in points if p.baseline), key=lambda p: p.latency_ms)
    if curve:
        ax.plot([p.latency_ms for p in curve], [p.accuracy for p in curve], "-", color="grey", label="baseline")
    for p in points:
        ax.errorbar(
            p.latency_ms, p.accuracy, yerr=p.spread or None, fmt="s" if p.baseline else "o", capsize=3, label=p.name
        )
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    tmp = path.with_name(path.name + ".tmp.png")
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    tmp.replace(path)
    return path
