import pytest

from aestheticnet.nas.genotypes import resolve_genotype
from aestheticnet.nas.latency import EdgeCosts, LatencyError, edge_index, num_edges
from aestheticnet.nas.operations import PRIMITIVES


def _costs(fixed: float = 5.0) -> EdgeCosts:
    # op k on edge e costs e + k/10 in normal cells and twice that in reduction cells
    normal = tuple(tuple(e + k / 10 for k in range(len(PRIMITIVES))) for e in range(num_edges(4)))
    reduce = tuple(tuple(2 * c for c in row) for row in normal)
    return EdgeCosts(PRIMITIVES, normal, reduce, fixed)


def test_edge_numbering_follows_darts():
    assert num_edges(4) == 14
    assert [edge_index(0, 0), edge_index(0, 1), edge_index(1, 0), edge_index(3, 4)] == [0, 1, 2, 13]


def test_genotype_ms_sums_the_chosen_edges():
    g = resolve_genotype("DARTS_V2")
    costs = _costs()
    k = {op: i / 10 for i, op in enumerate(PRIMITIVES)}
    want_normal = sum(edge_index(j // 2, src) + k[op] for j, (op, src) in enumerate(g.normal))
    want_reduce = sum(2 * (edge_index(j // 2, src) + k[op]) for j, (op, src) in enumerate(g.reduce))
    assert costs.genotype_ms(g) == pytest.approx(5.0 + want_normal + want_reduce)


def test_refuses_wrong_shapes_and_unknown_ops():
    row = tuple(0.0 for _ in PRIMITIVES)
    with pytest.raises(LatencyError, match="edge count"):
        EdgeCosts(PRIMITIVES, (row,) * 13, (row,) * 13, 0.0)
    with pytest.raises(LatencyError, match="one cost per op"):
        EdgeCosts(PRIMITIVES, (row[:-1],) * 14, (row,) * 14, 0.0)
    with pytest.raises(LatencyError, match="no latency"):
        _costs().cost("normal", 0, "conv_7x1_1x7")
