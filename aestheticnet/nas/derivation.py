"""From architecture weights to discrete choices: op dropping between stages and the final genotype.

P-DARTS (chenxin061/pdarts ``train_search.py``):

* between stages each edge keeps the ops with the largest softmax weights (``get_min_k`` drops the others);
  here, under a skip-connect cap, a normal-cell edge whose kept ops would all be ``none``/``skip_connect`` swaps
  the weakest of them for its strongest other op (``prune_stage``), so the cap below always has an op to fall
  back to (the release's 8 -> 5 -> 3 keeps three ops, which always include one; the paper's 8 -> 5 -> 2 may not);
* after the last stage ``none`` is dropped, each edge keeps its strongest op, each intermediate node keeps its
  two input edges whose chosen op is strongest, and the normal cell's skip_connects are capped: while there are
  more than ``max_skip_connect`` (2 in the paper), the selected skip edge with the smallest skip weight loses
  its skip (``delete_min_sk_prob``), that edge falls back to its next-best op and the edges of every node are
  ranked again (``keep_1_on`` + ``keep_2_branches``), which may select another edge.

Ties are broken deterministically (the release leaves them to ``np.argmin``'s order):

* ops: the lower PRIMITIVES index wins (is kept / chosen);
* input edges of a node: the lower input index wins;
* skip-connect cap: the skip edge with the smaller weight is replaced first; among equal weights the later
  edge (higher node, then higher input) is replaced first.

Probabilities come as one row per edge aligned with that edge's active ops (``SearchNetwork.probabilities``).
"""

from __future__ import annotations

import logging
from typing import Sequence

from aestheticnet.nas.genotypes import Genotype
from aestheticnet.nas.operations import PRIMITIVES
from aestheticnet.nas.active_ops import ActiveOps, cell_edges, check_active

__all__ = ["DerivationError", "rank_ops", "prune_ops", "prune_stage", "derive_cell", "derive_genotype"]

log = logging.getLogger("aestheticnet.nas")

SKIP = "skip_connect"
# Ops that cannot stand in for a skip_connect the cap removes: ``none`` is never chosen, skip is what is capped.
NOT_FALLBACK = ("none", SKIP)


class DerivationError(ValueError):
    """The weights cannot give a valid cell (e.g. a node without two edges holding a real op)."""


def _check_probs(active: ActiveOps, probs: Sequence[Sequence[float]], kind: str) -> list[list[float]]:
    rows = [[float(p) for p in row] for row in probs]
    if len(rows) != len(active) or any(len(r) != len(a) for r, a in zip(rows, active)):
        raise ValueError(
            f"{kind}: probabilities of shape {[len(r) for r in rows]} do not match the active ops "
            f"{[len(a) for a in active]}"
        )
    return rows


def rank_ops(ops: Sequence[str], probs: Sequence[float]) -> list[str]:
    """Ops from strongest to weakest; equal weights: lower PRIMITIVES index first."""
    return [op for op, _ in sorted(zip(ops, probs), key=lambda t: (-t[1], PRIMITIVES.index(t[0])))]


def _with_fallback_op(kept: list[str], dropped: list[str]) -> list[str]:
    """``kept`` (strongest first), its weakest op swapped for the strongest of ``dropped`` that is neither ``none``
    nor ``skip_connect`` when ``kept`` holds only those two; unchanged when it holds another op or none is left."""
    if any(op not in NOT_FALLBACK for op in kept):
        return kept
    fallbacks = [op for op in dropped if op not in NOT_FALLBACK]
    return kept[:-1] + fallbacks[:1] if fallbacks else kept


def prune_ops(
    active: Sequence[Sequence[str]],
    probs: Sequence[Sequence[float]],
    keep: int,
    steps: int = 4,
    kind: str = "cell",
    keep_fallback_op: bool = False,
) -> ActiveOps:
    """Keep the ``keep`` strongest ops of every edge (listed in PRIMITIVES order), as between P-DARTS stages.

    keep_fallback_op: an edge whose ``keep`` strongest ops are all ``none``/``skip_connect`` keeps, in place of
    the weakest of them, its strongest op that is neither, so a later skip-connect cap can replace the edge's skip.
    Only ``keep`` <= 2 can trigger it; edges whose strongest ops include another op are pruned as without it.
    """
    active = check_active(active, steps, kind)
    rows = _check_probs(active, probs, kind)
    if not 1 <= keep <= len(active[0]):
        raise ValueError(f"{kind}: cannot keep {keep} ops per edge out of {len(active[0])}")
    out = []
    for ops, row in zip(active, rows):
        ranked = rank_ops(ops, row)
        kept = _with_fallback_op(ranked[:keep], ranked[keep:]) if keep_fallback_op else ranked[:keep]
        out.append(tuple(op for op in PRIMITIVES if op in kept))
    return tuple(out)


def prune_stage(
    active_normal: Sequence[Sequence[str]],
    probs_normal: Sequence[Sequence[float]],
    active_reduce: Sequence[Sequence[str]],
    probs_reduce: Sequence[Sequence[float]],
    keep: int,
    steps: int = 4,
    max_skip_connect: int | None = 2,
) -> tuple[ActiveOps, ActiveOps]:
    """Both cells' active ops for the next stage: the ``keep`` strongest per edge.

    Under a skip-connect cap (``max_skip_connect`` not None) every normal-cell edge also keeps an op other than
    ``none`` and ``skip_connect`` (``prune_ops(keep_fallback_op=True)``): with it, ``derive_genotype`` can always
    meet the cap. The reduction cell has no cap and is pruned by weight alone.
    """
    normal = prune_ops(active_normal, probs_normal, keep, steps, "normal cell", max_skip_connect is not None)
    reduce = prune_ops(active_reduce, probs_reduce, keep, steps, "reduction cell")
    return normal, reduce


def _best_ops(
    active: ActiveOps, rows: list[list[float]], excluded: set[tuple[int, str]]
) -> list[tuple[str, float] | None]:
    """Per edge the strongest op other than ``none`` and the excluded ones, with its weight (None: nothing left)."""
    best: list[tuple[str, float] | None] = []
    for e, (ops, row) in enumerate(zip(active, rows)):
        cands = [(op, p) for op, p in zip(ops, row) if op != "none" and (e, op) not in excluded]
        best.append(min(cands, key=lambda t: (-t[1], PRIMITIVES.index(t[0]))) if cands else None)
    return best


def _select(
    active: ActiveOps, rows: list[list[float]], steps: int, excluded: set[tuple[int, str]]
) -> list[tuple[int, str, float]] | None:
    """Two strongest input edges per node as ``(edge, op, weight)`` in input order; None if a node lacks two."""
    best = _best_ops(active, rows, excluded)
    edges = cell_edges(steps)
    chosen = []
    for node in range(2, 2 + steps):
        cands = [(e, inp) for e, (n, inp) in enumerate(edges) if n == node and best[e] is not None]
        if len(cands) < 2:
            return None
        ranked = sorted(cands, key=lambda t: (-best[t[0]][1], t[1]))[:2]
        for e, _ in sorted(ranked, key=lambda t: t[1]):
            chosen.append((e, best[e][0], best[e][1]))
    return chosen


def derive_cell(
    active: Sequence[Sequence[str]],
    probs: Sequence[Sequence[float]],
    steps: int = 4,
    max_skip_connect: int | None = None,
    kind: str = "cell",
) -> list[tuple[str, int]]:
    """Genotype edges ``[(op, input), ...]`` (two per node, in input order) by P-DARTS' final rule."""
    active = check_active(active, steps, kind)
    rows = _check_probs(active, probs, kind)
    edges = cell_edges(steps)
    excluded: set[tuple[int, str]] = set()
    chosen = _select(active, rows, steps, excluded)
    if chosen is None:
        raise DerivationError(
            f"{kind}: some node has fewer than two input edges with an op other than 'none'; "
            "keep more ops per edge in the last stage"
        )
    if max_skip_connect is not None:
        while sum(op == SKIP for _, op, _ in chosen) > max_skip_connect:
            skips = sorted(((p, -e) for e, op, p in chosen if op == SKIP))
            for _, neg_e in skips:  # weakest first; on equal weights the later edge
                trial = _select(active, rows, steps, excluded | {(-neg_e, SKIP)})
                if trial is not None:
                    excluded.add((-neg_e, SKIP))
                    node, inp = edges[-neg_e]
                    log.info("%s: skip_connect on edge %d->%d replaced (cap %d)", kind, inp, node, max_skip_connect)
                    chosen = trial
                    break
            else:
                log.warning(
                    "%s: cannot cap skip_connects at %d: every selected skip edge lacks an alternative op; keeping %d",
                    kind,
                    max_skip_connect,
                    sum(op == SKIP for _, op, _ in chosen),
                )
                break
    return [(op, edges[e][1]) for e, op, _ in chosen]


def derive_genotype(
    active_normal: Sequence[Sequence[str]],
    probs_normal: Sequence[Sequence[float]],
    active_reduce: Sequence[Sequence[str]],
    probs_reduce: Sequence[Sequence[float]],
    steps: int = 4,
    max_skip_connect: int | None = 2,
) -> Genotype:
    """The final genotype; the skip-connect cap applies to the normal cell only, as in P-DARTS."""
    normal = derive_cell(active_normal, probs_normal, steps, max_skip_connect, kind="normal cell")
    reduce = derive_cell(active_reduce, probs_reduce, steps, None, kind="reduction cell")
    concat = list(range(2, 2 + steps))
    return Genotype.create(normal, concat, reduce, concat, source="derived genotype")
