"""What a target's latency table tells the search: the cost of each candidate operation on each edge.

A latency table (built by ``aestheticnet bench ops``) times every candidate operation at every shape the final
network runs it at. For the search and for predictions that reduces to :class:`EdgeCosts`: for each cell kind
(normal, reduction), edge and operation, the milliseconds that operation costs on that edge summed over every
cell of that kind in the final network (cells of one kind share their architecture, so their costs add up), plus
the fixed cost of everything the genotype does not choose (stem, cell preprocessing, CBAM, head).

Edges are numbered as in DARTS: node ``i`` (0-based) has ``i + 2`` incoming edges, from the two cell inputs and
the earlier nodes, and its edges follow those of node ``i - 1``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from aestheticnet.nas.genotypes import Genotype

__all__ = ["EdgeCosts", "LatencyError", "edge_index", "num_edges"]


class LatencyError(ValueError):
    """A latency table or cost matrix that does not fit the search space or the run it is used with."""


def num_edges(steps: int) -> int:
    """Edges of a cell with ``steps`` intermediate nodes."""
    return sum(i + 2 for i in range(steps))


def edge_index(node: int, source: int) -> int:
    """The index of the edge from ``source`` (0, 1: cell inputs; 2+: earlier nodes) into intermediate ``node``."""
    return sum(i + 2 for i in range(node)) + source


@dataclass(frozen=True)
class EdgeCosts:
    """Milliseconds per (edge, operation) summed over all cells of a kind, and the fixed cost around them."""

    ops: tuple[str, ...]  # column order of ``normal`` and ``reduce``
    normal: tuple[tuple[float, ...], ...]  # [edge][op]
    reduce: tuple[tuple[float, ...], ...]  # [edge][op]
    fixed_ms: float

    def __post_init__(self) -> None:
        for kind, rows in (("normal", self.normal), ("reduce", self.reduce)):
            if not rows or any(len(r) != len(self.ops) for r in rows):
                raise LatencyError(f"EdgeCosts.{kind}: every edge needs one cost per op ({len(self.ops)} ops)")
            if len(rows) not in {num_edges(s) for s in range(1, 9)}:
                raise LatencyError(f"EdgeCosts.{kind}: {len(rows)} edges is no cell's edge count")
        if len(self.normal) != len(self.reduce):
            raise LatencyError("EdgeCosts: the normal and reduction cells must have the same number of edges")

    def to_dict(self) -> dict[str, Any]:
        return {
            "ops": list(self.ops),
            "normal": [list(r) for r in self.normal],
            "reduce": [list(r) for r in self.reduce],
            "fixed_ms": self.fixed_ms,
        }

    @classmethod
    def from_dict(cls, data: Any, source: str = "edge costs") -> "EdgeCosts":
        """The inverse of :meth:`to_dict`; every cost must be a finite number >= 0. Errors name ``source``."""
        keys = ("ops", "normal", "reduce", "fixed_ms")
        if not isinstance(data, dict) or set(data) != set(keys):
            got = sorted(data) if isinstance(data, dict) else type(data).__name__
            raise LatencyError(f"{source}: expected an object with exactly the keys {list(keys)}, got {got}")
        ops = data["ops"]
        if not isinstance(ops, list) or not all(isinstance(op, str) for op in ops) or len(set(ops)) != len(ops):
            raise LatencyError(f"{source}: 'ops' must be a list of distinct operation names, got {ops!r}")
        rows = {kind: _cost_rows(data[kind], f"{source}: '{kind}'") for kind in ("normal", "reduce")}
        fixed = _cost(data["fixed_ms"], f"{source}: 'fixed_ms'")
        try:
            return cls(tuple(ops), rows["normal"], rows["reduce"], fixed)
        except LatencyError as exc:
            raise LatencyError(f"{source}: {exc}") from None

    @property
    def steps(self) -> int:
        return next(s for s in range(1, 9) if num_edges(s) == len(self.normal))

    def cost(self, kind: str, edge: int, op: str) -> float:
        """Summed milliseconds of ``op`` on ``edge`` of every ``kind`` ("normal" or "reduce") cell."""
        if op not in self.ops:
            raise LatencyError(f"operation {op!r} has no latency in this table (it has: {', '.join(self.ops)})")
        rows = self.normal if kind == "normal" else self.reduce
        return rows[edge][self.ops.index(op)]

    def cell_ms(self, kind: str, edges: Sequence[tuple[str, int]]) -> float:
        """Summed milliseconds of a derived cell's edges: (op, source) pairs, two per node in node order."""
        return sum(self.cost(kind, edge_index(k // 2, source), op) for k, (op, source) in enumerate(edges))

    def genotype_ms(self, genotype: Genotype) -> float:
        """The predicted latency of the final network built from ``genotype``."""
        if len(genotype.normal) != 2 * self.steps or len(genotype.reduce) != 2 * self.steps:
            raise LatencyError(f"the genotype has {len(genotype.normal) // 2} nodes per cell; this table {self.steps}")
        return self.fixed_ms + self.cell_ms("normal", genotype.normal) + self.cell_ms("reduce", genotype.reduce)


def _cost(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        raise LatencyError(f"{where}: {value!r} is not a latency (need a finite number of milliseconds >= 0)")
    return float(value)


def _cost_rows(rows: Any, where: str) -> tuple[tuple[float, ...], ...]:
    if not isinstance(rows, list) or not all(isinstance(r, list) for r in rows):
        raise LatencyError(f"{where}: expected a list of edges, each a list of costs per op")
    return tuple(tuple(_cost(c, f"{where}[{e}]") for c in row) for e, row in enumerate(rows))
