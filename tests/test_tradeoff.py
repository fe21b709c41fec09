"""Accuracy against latency: the baseline curve at a model's latency, the verdict sentence, the plot."""

import pytest

from aestheticnet.bench import TradeoffPoint, against_curve, baseline_at, plot_tradeoff, tradeoff_sentence

CURVE = [
    TradeoffPoint("nima_050", 8.0, 0.40, 0.02, baseline=True),
    TradeoffPoint("nima_100", 16.0, 0.60, 0.03, baseline=True),
    TradeoffPoint("nima_075", 12.0, 0.50, 0.02, baseline=True),
]


def test_curve_is_interpolated_inside_its_latency_range_only():
    assert baseline_at(CURVE, 10.0) == pytest.approx(0.45)
    assert baseline_at(CURVE, 14.0) == pytest.approx(0.55)
    assert baseline_at(CURVE, 16.0) == pytest.approx(0.60)
    assert baseline_at(CURVE, 7.9) is None and baseline_at(CURVE, 16.1) is None
    assert baseline_at([TradeoffPoint("b", 5.0, 0.3, baseline=True)], 5.0) == 0.3


def test_sentence_says_above_or_below_the_curve_at_the_models_own_latency():
    above = TradeoffPoint("searched", 10.0, 0.47)
    below = TradeoffPoint("plain", 14.0, 0.52)
    sentence = tradeoff_sentence([*CURVE, above, below])
    assert "searched (10.00 ms, SROCC 0.470) lies above the baseline, which reaches 0.450" in sentence
    assert "plain (14.00 ms, SROCC 0.520) lies below the baseline, which reaches 0.550" in sentence


@pytest.mark.parametrize(
    ("latency", "srocc", "word"),
    [(4.0, 0.45, "better than"), (4.0, 0.30, "a trade against"), (20.0, 0.55, "worse than"), (20.0, 0.7, "a trade")],
)
def test_outside_the_curve_only_a_model_that_wins_or_loses_on_both_axes_is_decided(latency, srocc, word):
    sentence = tradeoff_sentence([*CURVE, TradeoffPoint("m", latency, srocc)])
    near = "nima_050" if latency < 8 else "nima_100"
    assert f"is {word}" in sentence and near in sentence


def test_verdict_as_data_carries_the_curve_value_and_the_nearest_width():
    inside = against_curve(TradeoffPoint("m", 10.0, 0.44), CURVE)
    assert inside.curve == pytest.approx(0.45) and inside.word == "below" and inside.above is False
    assert inside.nearest.name == "nima_050"
    edge = against_curve(TradeoffPoint("m", 16.0, 0.60), CURVE)
    assert edge.above is True and edge.nearest.name == "nima_100"
    outside = against_curve(TradeoffPoint("m", 2.0, 0.41), CURVE)
    assert outside.curve is None and outside.above is None and outside.word == "better than"
    assert outside.nearest.name == "nima_050"


def test_nothing_to_compare_without_a_baseline():
    assert tradeoff_sentence([TradeoffPoint("m", 1.0, 0.5)]).startswith("Nothing to compare")


def test_plot_is_written(tmp_path):
    path = plot_tradeoff([*CURVE, TradeoffPoint("m", 10.0, 0.5, 0.1)], tmp_path / "sub" / "plot.png", "ms")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 5000
