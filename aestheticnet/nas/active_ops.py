"""Active ops as data: which candidate ops each edge of a cell still holds during the search.

``ActiveOps`` is a tuple with one entry per edge, each a tuple of op names in PRIMITIVES order. Edges are
ordered node by node (node 2: inputs 0, 1; node 3: inputs 0, 1, 2; ...), 14 for 4 steps; architecture weights
and derived genotypes use the same order.
"""

from __future__ import annotations

from typing import Sequence

from aestheticnet.nas.operations import PRIMITIVES

__all__ = ["ActiveOps", "cell_edges", "full_space", "check_active"]

ActiveOps = tuple[tuple[str, ...], ...]


def cell_edges(steps: int) -> list[tuple[int, int]]:
    """``(node, input)`` of every edge of a cell, in the order architecture weights use."""
    return [(node, inp) for node in range(2, 2 + steps) for inp in range(node)]


def full_space(steps: int = 4) -> ActiveOps:
    """Every primitive on every edge: the first stage's space."""
    return tuple(PRIMITIVES for _ in cell_edges(steps))


def check_active(active: Sequence[Sequence[str]], steps: int, kind: str = "cell") -> ActiveOps:
    """Validate and normalise active ops: one entry per edge, known names in PRIMITIVES order, same count."""
    n_edges = len(cell_edges(steps))
    active = tuple(tuple(ops) for ops in active)
    if len(active) != n_edges:
        raise ValueError(f"{kind}: {len(active)} edges of active ops given, a {steps}-step cell has {n_edges}")
    for e, ops in enumerate(active):
        unknown = [op for op in ops if op not in PRIMITIVES]
        if unknown:
            raise ValueError(f"{kind} edge {e}: unknown op(s) {unknown}; valid: {', '.join(PRIMITIVES)}")
        if not ops or len(set(ops)) != len(ops):
            raise ValueError(f"{kind} edge {e}: need distinct ops, got {list(ops)}")
        if list(ops) != sorted(ops, key=PRIMITIVES.index):
            raise ValueError(f"{kind} edge {e}: ops must be listed in PRIMITIVES order, got {list(ops)}")
    counts = {len(ops) for ops in active}
    if len(counts) != 1:
        raise ValueError(f"{kind}: every edge needs the same number of active ops, got counts {sorted(counts)}")
    return active
