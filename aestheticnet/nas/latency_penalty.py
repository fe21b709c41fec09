"""The architecture step's latency term: a differentiable expected latency of the final network and the penalty
that weighs it against the SW-EMD loss.

Expected latency (FBNet, ProxylessNAS): each edge costs its ops' latencies weighted by their softmax weights,
over the ops still active in this stage; ``none`` costs nothing. The costs are those of the final network
(:class:`EdgeCosts` sums every cell of a kind), so the number estimates the derived network whatever the depth
of the stage's supernet.

A derived cell keeps two of the ``i + 2`` input edges of node ``i``. The estimate counts edge ``e`` of node ``i``
with the share ``2 * r_e / sum(r)`` of the node's two slots, ``r_e`` being the edge's weight on ops other than
``none`` (its chance to hold a real op). The node then costs
``2 * sum_e sum_{op != none} p_e(op) * ms_e(op) / sum_e r_e``. Without ``none`` among the active ops every edge
gets ``2 / (i + 2)``; with one-hot weights choosing two edges (all others ``none``) the estimate is exactly the
derived genotype's :meth:`EdgeCosts.genotype_ms`.
"""

from __future__ import annotations

import functools
from typing import Sequence

import torch
import torch.nn.functional as F

from aestheticnet.nas.active_ops import ActiveOps, check_active, full_space
from aestheticnet.nas.latency import EdgeCosts, LatencyError, edge_index
from aestheticnet.nas.operations import PRIMITIVES

__all__ = ["ExpectedLatency", "average_network_ms", "check_costs", "latency_penalty"]

# Keeps a node whose edges all hold only `none` at zero cost instead of 0/0.
_TINY = 1e-12


def check_costs(costs: EdgeCosts, steps: int, source: str = "latency table") -> None:
    """Refuse costs that do not fit a search of ``steps`` nodes per cell over PRIMITIVES."""
    if costs.steps != steps:
        raise LatencyError(f"{source}: its cells have {costs.steps} nodes, the search {steps} (SearchConfig.steps)")
    missing = [op for op in PRIMITIVES if op != "none" and op not in costs.ops]
    if missing:
        raise LatencyError(f"{source}: no latency for the candidate op(s) {missing}; rebuild it with every op")


def _cost_matrix(costs: EdgeCosts, kind: str, active: ActiveOps) -> list[list[float]]:
    return [[0.0 if op == "none" else costs.cost(kind, e, op) for op in ops] for e, ops in enumerate(active)]


class ExpectedLatency:
    """The expected latency (ms) of the final network under a stage's architecture weights.

    ``active_normal`` / ``active_reduce`` are the stage's active ops (the columns of its architecture weights).
    ``reference_ms`` is the expected latency of the first stage at uniform weights: the average derived network.
    """

    def __init__(
        self,
        costs: EdgeCosts,
        active_normal: Sequence[Sequence[str]],
        active_reduce: Sequence[Sequence[str]],
        device: torch.device | str | None = None,
    ):
        check_costs(costs, costs.steps)
        self.steps, self.fixed_ms = costs.steps, costs.fixed_ms
        cells = {
            "normal": check_active(active_normal, self.steps, "normal cell"),
            "reduce": check_active(active_reduce, self.steps, "reduction cell"),
        }
        self._cost = {
            k: torch.tensor(_cost_matrix(costs, k, a), dtype=torch.float32, device=device) for k, a in cells.items()
        }
        self._real = {
            k: torch.tensor([[op != "none" for op in ops] for ops in a], dtype=torch.float32, device=device)
            for k, a in cells.items()
        }
        self.costs = costs

    @functools.cached_property
    def reference_ms(self) -> float:
        return average_network_ms(self.costs)

    def _cell_ms(self, kind: str, probs: torch.Tensor) -> torch.Tensor:
        cost, real = self._cost[kind], self._real[kind]
        per_edge = (probs * cost).sum(dim=1)  # `none` costs 0
        real_share = (probs * real).sum(dim=1)
        total = per_edge.new_zeros(())
        for node in range(self.steps):
            edges = slice(edge_index(node, 0), edge_index(node, 0) + node + 2)
            total = total + 2.0 * per_edge[edges].sum() / real_share[edges].sum().clamp_min(_TINY)
        return total

    def of_probs(self, probs_normal: torch.Tensor, probs_reduce: torch.Tensor) -> torch.Tensor:
        """Expected milliseconds from the softmax weights (one row per edge, one column per active op)."""
        return self.fixed_ms + self._cell_ms("normal", probs_normal) + self._cell_ms("reduce", probs_reduce)

    def __call__(self, alphas_normal: torch.Tensor, alphas_reduce: torch.Tensor) -> torch.Tensor:
        """Expected milliseconds from the architecture weights (differentiable in them)."""
        return self.of_probs(F.softmax(alphas_normal, dim=-1), F.softmax(alphas_reduce, dim=-1))


def average_network_ms(costs: EdgeCosts) -> float:
    """The expected latency of the first stage's supernet at uniform weights: the average derived network."""
    full = full_space(costs.steps)
    uniform = torch.full((len(full), len(PRIMITIVES)), 1.0 / len(PRIMITIVES))
    return float(ExpectedLatency(costs, full, full).of_probs(uniform, uniform))


def latency_penalty(
    loss: torch.Tensor, expected_ms: torch.Tensor, weight: float, target_ms: float | None, reference_ms: float
) -> torch.Tensor:
    """The architecture objective ``loss * max(1, lat / target) ** weight``, or ``loss * (lat / ref) ** weight``
    without a target.

    Multiplicative, as MnasNet's and FBNet's objectives: in logarithms it is ``log(loss) + weight * log(lat)``, so
    ``weight`` reads as the relative loss increase worth a relative latency decrease, whatever the scale of the
    SW-EMD values or of the target's milliseconds. With a target it is MnasNet's hard constraint: a network
    predicted within the target is left to the loss alone, one over it pays ``weight`` per log-unit of excess.
    Without a target it is their soft constraint; ``ref`` does not change the gradient's direction, it keeps the
    factor near 1 so that the architecture gradient clipping sees the loss's own magnitude.
    """
    if target_ms is not None:
        return loss * torch.clamp(expected_ms / target_ms, min=1.0) ** weight
    if not reference_ms > 0:
        raise LatencyError(f"the latency table's average network costs {reference_ms} ms; set latency_target_ms")
    return loss * (expected_ms / reference_ms) ** weight
