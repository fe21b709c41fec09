"""Interleaved rounds (aestheticnet.bench.interleave): order, warm-up, summaries and fresh processes."""

from __future__ import annotations

import sys

import pytest

from aestheticnet.bench import interleaved_rounds, round_order, run_fresh, summarize_rounds


def test_round_order_rotates_by_the_round():
    assert [round_order("abc", i) for i in range(4)] == [list("abc"), list("bca"), list("cab"), list("abc")]


def test_round_order_keeps_groups_together_and_rotates_within_them():
    cases = [("a", "fp32"), ("b", "fp32"), ("a", "int8"), ("b", "int8")]
    assert round_order(cases, 1, group=lambda c: c[1]) == [("b", "fp32"), ("a", "fp32"), ("b", "int8"), ("a", "int8")]
    assert round_order(cases, 2, group=lambda c: c[1]) == cases


def test_interleaved_rounds_drops_the_warm_up_and_alternates_the_order():
    calls, heard = [], []

    def measure(case: str) -> int:
        calls.append(case)
        return len(calls)

    results = interleaved_rounds(
        ["a", "b"], measure, 2, warmup_rounds=1, progress=lambda label, case, r: heard.append((label, case, r))
    )
    assert calls == ["a", "b", "b", "a", "a", "b"]
    assert results == {"a": [4, 5], "b": [3, 6]}
    assert [label for label, _, _ in heard] == ["warm-up 1/1"] * 2 + ["round 1/2"] * 2 + ["round 2/2"] * 2


@pytest.mark.parametrize("cases, rounds, warmup", [(["a"], 0, 0), (["a"], 1, -1), (["a", "a"], 1, 0)])
def test_interleaved_rounds_refuses_what_it_cannot_measure(cases, rounds, warmup):
    with pytest.raises(ValueError):
        interleaved_rounds(cases, lambda case: 0, rounds, warmup_rounds=warmup)


def test_summarize_rounds_gives_the_median_and_percentiles():
    s = summarize_rounds([3.0, 1.0, 2.0, 10.0])
    assert s == {
        "median": 2.5,
        "p10": pytest.approx(1.3),
        "p90": pytest.approx(7.9),
        "min": 1.0,
        "max": 10.0,
        "rounds": 4,
    }
    assert summarize_rounds([5.0], percentiles=(25,)) == {
        "median": 5.0,
        "p25": 5.0,
        "min": 5.0,
        "max": 5.0,
        "rounds": 1,
    }
    with pytest.raises(ValueError):
        summarize_rounds([])


def test_every_measurement_runs_in_a_fresh_process():
    child = [sys.executable, "-c", "import json, os; print('noise'); print(json.dumps({'pid': os.getpid()}))"]
    results = interleaved_rounds(["a", "b"], lambda case: run_fresh(child)["pid"], 2)
    pids = [pid for per_case in results.values() for pid in per_case]
    assert len(set(pids)) == 4


@pytest.mark.parametrize(
    "code", ["import sys; sys.stderr.write('boom'); sys.exit(3)", "print('no JSON here')", "print('{not json')"]
)
def test_run_fresh_says_when_the_child_gives_no_result(code):
    with pytest.raises(RuntimeError, match="without a JSON result"):
        run_fresh([sys.executable, "-c", code], timeout_s=60)
