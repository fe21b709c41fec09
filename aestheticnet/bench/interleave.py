"""Interleaved rounds: several cases timed against each other on a machine whose load drifts.

Timed one after the other, each case would meet its own stretch of the drift, and a burst of load would land on
one case only. So every round measures every case once, in an order that alternates between rounds (rotated by
one place per round: no case always runs first or last), and a case's figure is the median over its rounds, with
percentiles for the spread. Rounds before the counted ones (``warmup_rounds``) are measured and dropped: the
first measurement of a case also pays for cold file caches and first imports. Each measurement runs in a fresh
process, so memory, caches and thread pools start clean: the ``measure`` function starts it, with
:func:`run_fresh` (a child that prints one JSON object) or through ``run_benchmark`` (the device runner).
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable, Hashable, Mapping, Sequence
from typing import TypeVar

from aestheticnet.bench.runner import percentile

__all__ = ["interleaved_rounds", "round_order", "run_fresh", "summarize_rounds"]

Case = TypeVar("Case", bound=Hashable)
Result = TypeVar("Result")


def round_order(cases: Sequence[Case], index: int, group: Callable[[Case], Hashable] | None = None) -> list[Case]:
    """Round ``index``'s order: the cases rotated by ``index`` places.

    With ``group``, the cases of one group run back to back (groups in the order they first appear in ``cases``),
    rotated within their group: a group is one runtime and precision, say, whose cases are compared to each other.
    """
    groups: dict[Hashable, list[Case]] = {}
    for case in cases:
        groups.setdefault(None if group is None else group(case), []).append(case)
    order: list[Case] = []
    for members in groups.values():
        shift = index % len(members)
        order += members[shift:] + members[:shift]
    return order


def interleaved_rounds(
    cases: Sequence[Case],
    measure: Callable[[Case], Result],
    rounds: int,
    *,
    warmup_rounds: int = 0,
    group: Callable[[Case], Hashable] | None = None,
    progress: Callable[[str, Case, Result], None] | None = None,
) -> dict[Case, list[Result]]:
    """``measure(case)`` for every case in every round; the counted results per case, in round order.

    The first ``warmup_rounds`` rounds are measured and dropped. ``progress(label, case, result)`` hears of every
    measurement, ``label`` being ``"warm-up 1/1"`` or ``"round 2/5"``.
    """
    if rounds < 1 or warmup_rounds < 0:
        raise ValueError(f"rounds={rounds}, warmup_rounds={warmup_rounds}: need rounds >= 1 and warmup_rounds >= 0")
    if len(set(cases)) != len(cases):
        raise ValueError(f"the cases must differ, got {list(cases)}")
    results: dict[Case, list[Result]] = {case: [] for case in cases}
    for index in range(warmup_rounds + rounds):
        counted = index >= warmup_rounds
        label = f"round {index - warmup_rounds + 1}/{rounds}" if counted else f"warm-up {index + 1}/{warmup_rounds}"
        for case in round_order(cases, index, group):
            result = measure(case)
            if counted:
                results[case].append(result)
            if progress is not None:
                progress(label, case, result)
    return results


def summarize_rounds(values: Sequence[float], percentiles: Sequence[float] = (10, 90)) -> dict[str, float | int]:
    """Median, the given percentiles (``p10``, ``p90``: linear between ranks), min and max of per-round values."""
    if not values:
        raise ValueError("no values to summarize")
    ordered = sorted(float(v) for v in values)
    out: dict[str, float | int] = {"median": percentile(ordered, 50)}
    out.update({f"p{q:g}": percentile(ordered, q) for q in percentiles})
    out.update({"min": ordered[0], "max": ordered[-1], "rounds": len(ordered)})
    return out


def run_fresh(argv: Sequence[str], *, timeout_s: float = 3600, env: Mapping[str, str] | None = None) -> dict:
    """Run ``argv`` in a fresh process; the JSON object its stdout ends with (the child prints it last).

    Raises RuntimeError, quoting the end of stderr, when the child fails or prints no JSON object.
    """
    proc = subprocess.run(
        list(argv),
        check=False,
        capture_output=True,
        text=True,
        timeout=timeout_s,
        env=None if env is None else dict(env),
    )
    lines = proc.stdout.strip().splitlines()
    if proc.returncode == 0 and lines and lines[-1].lstrip().startswith("{"):
        try:
            return json.loads(lines[-1])
        except json.JSONDecodeError:
            pass
    raise RuntimeError(
        f"{' '.join(argv[:3])} ... exited with status {proc.returncode} without a JSON result:\n{proc.stderr[-4000:]}"
    )
