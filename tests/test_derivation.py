"""Derivation on hand-made architecture weights with known answers (P-DARTS' rules, deterministic ties)."""

import logging
import math
import random

import pytest
import torch

from aestheticnet.models import create_model
from aestheticnet.nas.active_ops import cell_edges, full_space
from aestheticnet.nas.derivation import (
    DerivationError,
    derive_cell,
    derive_genotype,
    prune_ops,
    prune_stage,
    rank_ops,
)
from aestheticnet.nas.genotypes import Genotype
from aestheticnet.nas.operations import PRIMITIVES
from aestheticnet.nas.strategy import PRESETS


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny convolutions on a shared machine
    yield
    torch.set_num_threads(n)


# Last-stage ops on every edge: none, skip, sep (weights in this order).
OPS3 = ("none", "skip_connect", "sep_conv_3x3")
WEAK = (0.9, 0.04, 0.06)  # an edge nobody wants: none dominates, best real op is sep at 0.06


def edge_id(node: int, inp: int) -> int:
    return cell_edges(4).index((node, inp))


def cell(weights: dict[tuple[int, int], tuple[float, float, float]]):
    """(active, probs) for a 4-step cell: OPS3 on every edge, WEAK unless ``weights[(node, input)]`` says."""
    active = tuple(OPS3 for _ in cell_edges(4))
    probs = [list(weights.get(e, WEAK)) for e in cell_edges(4)]
    return active, probs


# ---- dropping ops between stages -------------------------------------------------------------------------------
def test_prune_keeps_the_strongest_ops_in_primitives_order():
    active = full_space(4)
    # Edge weights rising with the PRIMITIVES index except dil_conv_3x3, the weakest.
    row = [0.10, 0.11, 0.12, 0.13, 0.14, 0.15, 0.01, 0.24]
    probs = [row for _ in active]
    out = prune_ops(active, probs, keep=5)
    assert all(ops == ("avg_pool_3x3", "skip_connect", "sep_conv_3x3", "sep_conv_5x5", "dil_conv_5x5") for ops in out)
    # The next stage (5 -> 2): probabilities now align with the 5 kept ops.
    out2 = prune_ops(out, [[0.3, 0.1, 0.2, 0.15, 0.25] for _ in out], keep=2)
    assert all(ops == ("avg_pool_3x3", "dil_conv_5x5") for ops in out2)


def test_prune_is_per_edge_and_keeps_none_when_strong():
    active = full_space(4)
    probs = [[1 / 8] * 8 for _ in active]
    probs[3] = [0.5, 0.2, 0.1, 0.05, 0.05, 0.04, 0.03, 0.03]
    out = prune_ops(active, probs, keep=2)
    assert out[3] == ("none", "max_pool_3x3")
    assert all(len(ops) == 2 for ops in out)


def test_prune_ties_keep_the_lower_primitive_index():
    active = full_space(4)
    out = prune_ops(active, [[1 / 8] * 8 for _ in active], keep=3)
    assert all(ops == PRIMITIVES[:3] for ops in out)
    assert rank_ops(("skip_connect", "max_pool_3x3"), (0.5, 0.5)) == ["max_pool_3x3", "skip_connect"]


def test_prune_rejects_mismatched_probabilities():
    with pytest.raises(ValueError, match="do not match"):
        prune_ops(full_space(4), [[0.5, 0.5]] * 14, keep=2)
    with pytest.raises(ValueError, match="cannot keep 9"):
        prune_ops(full_space(4), [[1 / 8] * 8] * 14, keep=9)


# ---- the final cell --------------------------------------------------------------------------------------------
def test_none_is_dropped_and_each_node_keeps_its_two_strongest_inputs():
    active, probs = cell(
        {
            (2, 0): (0.8, 0.05, 0.15),
            (2, 1): (0.1, 0.2, 0.7),  # node 2 has only two inputs: both kept
            (3, 0): (0.2, 0.3, 0.5),
            (3, 1): (0.1, 0.1, 0.8),
            (3, 2): (0.1, 0.6, 0.3),  # 0.8 (in 1) and 0.6 (in 2)
            (4, 3): (0.2, 0.1, 0.7),
            (4, 0): (0.3, 0.3, 0.4),  # 0.7 (in 3), 0.4 (in 0)
            (5, 4): (0.2, 0.2, 0.6),
            (5, 2): (0.2, 0.5, 0.3),  # 0.6 (in 4), 0.5 (in 2)
        }
    )
    edges = derive_cell(active, probs, 4, max_skip_connect=None)
    assert edges == [
        ("sep_conv_3x3", 0),
        ("sep_conv_3x3", 1),  # none (0.8) on 0->2 is never chosen
        ("sep_conv_3x3", 1),
        ("skip_connect", 2),
        ("sep_conv_3x3", 0),
        ("sep_conv_3x3", 3),
        ("skip_connect", 2),
        ("sep_conv_3x3", 4),
    ]


def test_input_ties_keep_the_lower_input_index_and_op_ties_the_lower_primitive():
    active, probs = cell({(5, i): (0.2, 0.4, 0.4) for i in range(5)})  # five equal edges, skip == sep on each
    edges = derive_cell(active, probs, 4)
    assert edges[6:] == [("skip_connect", 0), ("skip_connect", 1)]


# Four skips chosen in the normal cell: 0->2 (0.6), 1->2 (0.5), 0->3 (0.7), 0->4 (0.8).
SKIPPY = {
    (2, 0): (0.1, 0.6, 0.3),
    (2, 1): (0.1, 0.5, 0.4),
    (3, 0): (0.1, 0.7, 0.2),
    (3, 1): (0.35, 0.1, 0.55),
    (3, 2): (0.5, 0.1, 0.4),
    (4, 0): (0.1, 0.8, 0.1),
    (4, 1): (0.3, 0.1, 0.6),
    (5, 0): (0.4, 0.1, 0.5),
    (5, 1): (0.45, 0.1, 0.45),
}


def test_without_a_cap_the_skips_stay():
    active, probs = cell(SKIPPY)
    edges = derive_cell(active, probs, 4, max_skip_connect=None)
    assert edges == [
        ("skip_connect", 0),
        ("skip_connect", 1),
        ("skip_connect", 0),
        ("sep_conv_3x3", 1),
        ("skip_connect", 0),
        ("sep_conv_3x3", 1),
        ("sep_conv_3x3", 0),
        ("sep_conv_3x3", 1),
    ]


def test_skip_cap_replaces_the_weakest_skips_by_their_next_best_op():
    active, probs = cell(SKIPPY)
    edges = derive_cell(active, probs, 4, max_skip_connect=2)
    # 1->2 (0.5) then 0->2 (0.6) lose their skip; node 2 has no other inputs, so they turn into sep convs.
    assert edges == [
        ("sep_conv_3x3", 0),
        ("sep_conv_3x3", 1),
        ("skip_connect", 0),
        ("sep_conv_3x3", 1),
        ("skip_connect", 0),
        ("sep_conv_3x3", 1),
        ("sep_conv_3x3", 0),
        ("sep_conv_3x3", 1),
    ]
    assert sum(op == "skip_connect" for op, _ in edges) == 2


def test_skip_cap_reranks_the_inputs_of_a_node():
    active, probs = cell(SKIPPY)
    edges = derive_cell(active, probs, 4, max_skip_connect=1)
    # Next, 0->3 (0.7) loses its skip: its sep (0.2) is weaker than 2->3's sep (0.4), so node 3 takes 1 and 2.
    assert edges[2:4] == [("sep_conv_3x3", 1), ("sep_conv_3x3", 2)]
    assert edges[4] == ("skip_connect", 0)  # the strongest skip (0.8) stays
    assert sum(op == "skip_connect" for op, _ in edges) == 1
    edges0 = derive_cell(active, probs, 4, max_skip_connect=0)
    # cap 0: 0->4 falls back to its sep (0.1), still above the weak 2->4 and 3->4 (0.06)
    assert edges0[4:6] == [("sep_conv_3x3", 0), ("sep_conv_3x3", 1)]
    assert all(op != "skip_connect" for op, _ in edges0)


def test_skip_cap_ties_replace_the_later_edge_first():
    weights = dict(SKIPPY)
    weights[(2, 0)] = weights[(2, 1)] = (0.1, 0.6, 0.3)
    weights[(3, 0)] = (0.1, 0.1, 0.8)  # now three skips: 0->2, 1->2 (equal) and 0->4
    active, probs = cell(weights)
    edges = derive_cell(active, probs, 4, max_skip_connect=2)
    assert edges[:2] == [("skip_connect", 0), ("sep_conv_3x3", 1)]


def test_skip_cap_that_cannot_be_met_warns_and_keeps_the_cell(caplog):
    skip_only = ("none", "skip_connect")
    active = tuple(skip_only for _ in cell_edges(4))
    probs = [[0.3, 0.7] for _ in active]
    with caplog.at_level(logging.WARNING, logger="aestheticnet.nas"):
        edges = derive_cell(active, probs, 4, max_skip_connect=2)
    assert all(op == "skip_connect" for op, _ in edges)
    assert "cannot cap skip_connects" in caplog.text


def test_a_node_without_two_real_ops_is_an_error():
    active = tuple(("none",) for _ in cell_edges(4))
    with pytest.raises(DerivationError, match="fewer than two input edges"):
        derive_cell(active, [[1.0]] * 14, 4)


def test_derive_genotype_caps_only_the_normal_cell_and_builds_a_model(tmp_path):
    active, probs = cell(SKIPPY)
    g = derive_genotype(active, probs, active, probs, steps=4, max_skip_connect=2)
    assert sum(op == "skip_connect" for op, _ in g.normal) == 2
    assert sum(op == "skip_connect" for op, _ in g.reduce) == 4
    assert g.normal_concat == g.reduce_concat == (2, 3, 4, 5)
    g.save(tmp_path / "g.json")
    assert Genotype.load(tmp_path / "g.json") == g
    model = create_model("aestheticnet", genotype=str(tmp_path / "g.json"), layers=3, init_channels=4)
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 10)


# ---- a fallback op for the skip-connect cap ---------------------------------------------------------------------
NOT_FALLBACK = {"none", "skip_connect"}
STAGE2_OPS = ("none", "max_pool_3x3", "skip_connect", "sep_conv_3x3", "dil_conv_3x3")


def n_skips(edges) -> int:
    return sum(op == "skip_connect" for op, _ in edges)


def test_prune_with_fallback_swaps_the_weakest_of_none_and_skip_for_the_strongest_other_op():
    active = tuple(STAGE2_OPS for _ in cell_edges(4))
    probs = [[0.2] * 5 for _ in active]
    probs[0] = [0.40, 0.10, 0.30, 0.15, 0.05]  # none > skip: skip (the weaker) gives way to sep (0.15 > max 0.10)
    probs[1] = [0.30, 0.05, 0.40, 0.10, 0.15]  # skip > none: none gives way to dil (0.15)
    probs[2] = [0.20, 0.05, 0.40, 0.35, 0.00]  # a real op among the two strongest: pruned by weight alone
    plain = prune_ops(active, probs, keep=2)
    assert plain[0] == plain[1] == ("none", "skip_connect") and plain[2] == ("skip_connect", "sep_conv_3x3")
    out = prune_ops(active, probs, keep=2, keep_fallback_op=True)
    assert out[0] == ("none", "sep_conv_3x3")
    assert out[1] == ("skip_connect", "dil_conv_3x3")
    assert out[2:] == plain[2:]  # the 0.2-uniform edges keep none and max_pool (a real op), as without the rule
    # One op per edge: a leading none or skip is replaced; three or more ops always include a real op.
    assert prune_ops(active, probs, keep=1, keep_fallback_op=True)[:3] == (
        ("sep_conv_3x3",),
        ("dil_conv_3x3",),
        ("sep_conv_3x3",),
    )
    assert prune_ops(active, probs, keep=3, keep_fallback_op=True) == prune_ops(active, probs, keep=3)


def test_prune_with_fallback_leaves_an_edge_without_a_real_op_as_it_is():
    active = tuple(("none", "skip_connect") for _ in cell_edges(4))
    probs = [[0.6, 0.4] for _ in active]
    assert prune_ops(active, probs, keep=1, keep_fallback_op=True) == tuple(("none",) for _ in active)


def collapse_probs(active, rng: random.Random, boost: float) -> list[list[float]]:
    """Softmax of N(0, 1) logits per edge, ``none`` and ``skip_connect`` raised by ``boost``: the weights of a
    search collapsing towards parameter-free ops (``boost=0``: no preference)."""
    rows = []
    for ops in active:
        logits = [rng.gauss(0.0, 1.0) + (boost if op in NOT_FALLBACK else 0.0) for op in ops]
        total = sum(math.exp(x) for x in logits)
        rows.append([math.exp(x) / total for x in logits])
    return rows


def test_prune_stage_keeps_a_real_op_on_every_normal_edge_and_prunes_the_reduction_cell_by_weight():
    rng = random.Random(1)
    for _ in range(20):
        normal = reduce = full_space(4)
        for keep in (5, 2):
            p_normal, p_reduce = collapse_probs(normal, rng, 2.0), collapse_probs(reduce, rng, 2.0)
            new_normal, new_reduce = prune_stage(normal, p_normal, reduce, p_reduce, keep)
            assert all(set(ops) - NOT_FALLBACK for ops in new_normal)
            assert new_reduce == prune_ops(reduce, p_reduce, keep)
            uncapped, _ = prune_stage(normal, p_normal, reduce, p_reduce, keep, max_skip_connect=None)
            assert uncapped == prune_ops(normal, p_normal, keep)
            normal, reduce = new_normal, new_reduce


def run_stages(stages, stage_probs, fallback: bool) -> Genotype:
    """Stage pruning through to the final genotype as the search does it, architecture weights per stage from
    ``stage_probs(stage_index, active_normal, active_reduce)``; ``fallback=False``: pruning by weight alone."""
    normal = reduce = full_space(4)
    for i in range(len(stages)):
        p_normal, p_reduce = stage_probs(i, normal, reduce)
        if i + 1 == len(stages):
            return derive_genotype(normal, p_normal, reduce, p_reduce, max_skip_connect=2)
        keep = stages[i + 1].ops_kept
        if fallback:
            normal, reduce = prune_stage(normal, p_normal, reduce, p_reduce, keep)
        else:
            normal, reduce = prune_ops(normal, p_normal, keep), prune_ops(reduce, p_reduce, keep)


# Before the last stage, none and skip lead on seven of the fourteen edges (both inputs of node 2, two of node 3,
# ...); in the last stage skip_connect dominates wherever it is active.
SKIP_LEADS = {"skip_connect": 0.3, "none": 0.25, "sep_conv_5x5": 0.15, "max_pool_3x3": 0.1}
NONE_LEADS = {"none": 0.3, "skip_connect": 0.25, "dil_conv_3x3": 0.15, "avg_pool_3x3": 0.1}
HEALTHY = {"sep_conv_3x3": 0.3, "skip_connect": 0.2, "none": 0.15, "dil_conv_5x5": 0.1}
COLLAPSE_EDGES = {
    (2, 0): SKIP_LEADS,
    (2, 1): NONE_LEADS,
    (3, 0): NONE_LEADS,
    (3, 1): SKIP_LEADS,
    (4, 2): SKIP_LEADS,
    (5, 0): NONE_LEADS,
    (5, 3): SKIP_LEADS,
}
LAST_STAGE = {"skip_connect": 0.6, "none": 0.3}


def hand_made_collapse(stage: int, normal, reduce):
    def rows(active):
        weights = [LAST_STAGE if stage == 2 else COLLAPSE_EDGES.get(e, HEALTHY) for e in cell_edges(4)]
        raw = [[w.get(op, 0.1 if stage == 2 else 0.02) for op in ops] for w, ops in zip(weights, active)]
        return [[x / sum(row) for x in row] for row in raw]

    return rows(normal), rows(reduce)


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_collapse_weights_end_with_at_most_two_skips_in_the_normal_cell(preset, caplog):
    stages = PRESETS[preset]
    with caplog.at_level(logging.WARNING, logger="aestheticnet.nas"):
        g = run_stages(stages, hand_made_collapse, fallback=True)
    assert n_skips(g.normal) <= 2 and "cannot cap" not in caplog.text
    assert n_skips(g.reduce) == 8  # no cap on the reduction cell
    by_weight = run_stages(stages, hand_made_collapse, fallback=False)
    if stages[-1].ops_kept == 2:  # pruning by weight alone leaves none + skip on the collapse edges: cap broken
        assert n_skips(by_weight.normal) >= 3
    else:  # three ops per edge always hold a real op: the rule changes nothing
        assert by_weight == g


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_skip_cap_holds_over_random_collapse_weights(preset, caplog):
    """Seeded draws whose none/skip boost (1.2) breaks the cap in about one derivation in nine under 8 -> 5 -> 2
    when pruning by weight alone (these 300 draws: 31; 554 of 5000 with seed 3); never with the fallback op."""
    caplog.set_level(logging.ERROR, logger="aestheticnet.nas")  # the weight-only runs warn hundreds of times
    stages, draws = PRESETS[preset], 300
    broken = {}
    for fallback in (True, False):
        rng = random.Random(17)

        def draw(stage, normal, reduce):
            return collapse_probs(normal, rng, 1.2), collapse_probs(reduce, rng, 0.0)

        broken[fallback] = sum(n_skips(run_stages(stages, draw, fallback).normal) > 2 for _ in range(draws))
    assert broken[True] == 0
    if stages[-1].ops_kept == 2:
        assert broken[False] >= draws // 20  # the draws do hit the case the rule is for
    else:
        assert broken[False] == 0
