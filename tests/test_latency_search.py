"""Latency-aware search, without data: edge costs on file, the expected latency, the penalty, the config."""

import json

import pytest
import torch
from click.testing import CliRunner

from aestheticnet.distributed import DistContext
from aestheticnet.nas.active_ops import cell_edges, full_space
from aestheticnet.nas.bilevel import BilevelStepper, build_supernet
from aestheticnet.nas.genotypes import resolve_genotype
from aestheticnet.nas.latency import EdgeCosts, LatencyError, edge_index, num_edges
from aestheticnet.nas.latency_penalty import ExpectedLatency, average_network_ms, latency_penalty
from aestheticnet.nas.latency_source import load_edge_costs
from aestheticnet.nas.operations import PRIMITIVES
from aestheticnet.nas.strategy import PRESETS, SearchConfig, StageSpec

# Convolutions cost more than pools and skips; every edge and cell kind differs, so a misplaced index shows.
OP_MS = {
    "none": 7.0,
    "max_pool_3x3": 0.5,
    "avg_pool_3x3": 0.6,
    "skip_connect": 0.1,
    "sep_conv_3x3": 2.0,
    "sep_conv_5x5": 3.0,
    "dil_conv_3x3": 1.5,
    "dil_conv_5x5": 2.5,
}


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    # Tiny convolutions: one thread beats two contended ones on a shared machine.
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def edge_costs(steps: int = 4, fixed: float = 4.0) -> EdgeCosts:
    # `none` gets a cost on purpose: the expected latency must count it as 0 whatever the table says.
    normal = tuple(tuple(OP_MS[op] * (1 + e / 10) for op in PRIMITIVES) for e in range(num_edges(steps)))
    reduce = tuple(tuple(3 * c + 0.01 * k for k, c in enumerate(row)) for row in normal)
    return EdgeCosts(PRIMITIVES, normal, reduce, fixed)


def one_hot(active, chosen: dict[int, str]) -> torch.Tensor:
    """Weight 1 on the chosen op of each chosen edge, on `none` elsewhere."""
    return torch.tensor([[float(op == chosen.get(e, "none")) for op in ops] for e, ops in enumerate(active)])


def genotype_probs(active, edges) -> torch.Tensor:
    return one_hot(active, {edge_index(k // 2, src): op for k, (op, src) in enumerate(edges)})


# ---- edge costs on file --------------------------------------------------------------------------------------
def test_edge_costs_round_trip_through_a_json_file(tmp_path):
    costs = edge_costs()
    path = tmp_path / "t.json"
    path.write_text(json.dumps(costs.to_dict()))
    assert load_edge_costs(path) == costs
    assert EdgeCosts.from_dict(json.loads(json.dumps(costs.to_dict()))) == costs


@pytest.mark.parametrize(
    "content,message",
    [
        (None, "does not exist; build one with `aestheticnet bench ops`"),
        ("{not json", "cannot read latency table"),
        (json.dumps({"ops": [], "normal": []}), r"exactly the keys .*got \['normal', 'ops'\]"),
        (json.dumps([1, 2]), "exactly the keys"),
        (json.dumps({**edge_costs().to_dict(), "fixed_ms": -1}), r"'fixed_ms': -1 is not a latency"),
        (json.dumps({**edge_costs().to_dict(), "ops": ["none", "none"]}), "distinct operation names"),
        (json.dumps({**edge_costs().to_dict(), "normal": [[1.0] * 8] * 13}), "13 edges is no cell's edge count"),
        (json.dumps({**edge_costs().to_dict(), "reduce": [["x"] * 8] * 14}), r"'reduce'\[0\]: 'x' is not"),
    ],
)
def test_edge_costs_file_errors_name_the_file(tmp_path, content, message):
    path = tmp_path / "table.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(LatencyError, match=message) as err:
        load_edge_costs(path)
    assert str(path) in str(err.value)


# ---- expected latency ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["DARTS_V2", "PDARTS"])
def test_one_hot_weights_on_two_edges_per_node_predict_the_genotype(name):
    g, costs = resolve_genotype(name), edge_costs()
    full = full_space(4)
    expected = ExpectedLatency(costs, full, full)
    got = expected.of_probs(genotype_probs(full, g.normal), genotype_probs(full, g.reduce))
    assert float(got) == pytest.approx(costs.genotype_ms(g), rel=1e-6)
    # A later stage's pruned space of three ops per edge, `none` and the chosen op among them: the same.
    chosen = {edge_index(k // 2, src): op for k, (op, src) in enumerate(g.normal)}
    pruned_n = tuple(
        tuple(op for op in PRIMITIVES if op in {"none", chosen.get(e, "sep_conv_3x3"), "max_pool_3x3", "avg_pool_3x3"})
        for e in range(14)
    )
    pruned_n = tuple(ops if len(ops) == 3 else tuple(o for o in ops if o != "avg_pool_3x3") for ops in pruned_n)
    assert {len(ops) for ops in pruned_n} == {3}
    stage3 = ExpectedLatency(costs, pruned_n, full)
    got = stage3.of_probs(genotype_probs(pruned_n, g.normal), genotype_probs(full, g.reduce))
    assert float(got) == pytest.approx(costs.genotype_ms(g), rel=1e-6)
    # Large architecture weights on the same choices: softmax is almost one-hot.
    alphas = 40.0 * genotype_probs(full, g.normal), 40.0 * genotype_probs(full, g.reduce)
    assert float(expected(*alphas)) == pytest.approx(costs.genotype_ms(g), rel=1e-4)


def test_without_none_each_edge_counts_two_of_its_nodes_inputs():
    costs = edge_costs()
    active = tuple(("skip_connect", "sep_conv_3x3") for _ in cell_edges(4))
    w = torch.tensor([[0.25, 0.75]] * 14)
    want = costs.fixed_ms
    for kind in ("normal", "reduce"):
        for node in range(4):
            edges = range(edge_index(node, 0), edge_index(node, 0) + node + 2)
            mean = sum(
                0.25 * costs.cost(kind, e, "skip_connect") + 0.75 * costs.cost(kind, e, "sep_conv_3x3") for e in edges
            )
            want += 2 / (node + 2) * mean
    assert float(ExpectedLatency(costs, active, active).of_probs(w, w)) == pytest.approx(want, rel=1e-6)


def test_expected_latency_is_differentiable_in_the_architecture_weights():
    costs, full = edge_costs(), full_space(4)
    torch.manual_seed(0)
    alphas = [torch.randn(14, 8, requires_grad=True) for _ in range(2)]
    ms = ExpectedLatency(costs, full, full)(*alphas)
    ms.backward()
    for a in alphas:
        assert torch.isfinite(a.grad).all() and a.grad.abs().sum() > 0
    col = PRIMITIVES.index
    # More weight on the 5x5 separable convolution costs more than on skip, on every edge.
    assert (alphas[0].grad[:, col("sep_conv_5x5")] > alphas[0].grad[:, col("skip_connect")]).all()
    # The average network: every real op equally likely, two of each node's edges.
    assert average_network_ms(costs) == pytest.approx(
        float(ExpectedLatency(costs, full, full).of_probs(torch.full((14, 8), 1 / 8), torch.full((14, 8), 1 / 8)))
    )


def test_penalty_with_a_target_leaves_a_fast_network_to_the_loss():
    loss = torch.tensor(0.2, requires_grad=True)
    lat = torch.tensor(8.0, requires_grad=True)
    fast = latency_penalty(loss, lat, 0.5, target_ms=10.0, reference_ms=1.0)
    assert float(fast.detach()) == pytest.approx(0.2)
    fast.backward()
    assert float(lat.grad) == 0.0
    slow_lat = torch.tensor(40.0, requires_grad=True)
    slow = latency_penalty(loss, slow_lat, 0.5, target_ms=10.0, reference_ms=1.0)
    assert float(slow.detach()) == pytest.approx(0.2 * 2.0)  # (40 / 10) ** 0.5
    soft = latency_penalty(loss, slow_lat, 0.5, target_ms=None, reference_ms=10.0)
    assert float(soft.detach()) == pytest.approx(0.4)
    soft.backward()
    assert float(slow_lat.grad) > 0
    with pytest.raises(LatencyError, match="set latency_target_ms"):
        latency_penalty(loss, slow_lat, 0.5, target_ms=None, reference_ms=0.0)


def _stepper(weight: float, order: str = "first"):
    cfg = SearchConfig(
        stages=(StageSpec(3, 8, 1, 0),),
        resolution=32,
        init_channels=4,
        batch_size=4,
        latency_table="t.json" if weight else None,
        latency_weight=weight,
        order=order,
    )
    model = build_supernet(cfg, 0, full_space(4), full_space(4), num_buckets=10).train()
    latency = ExpectedLatency(edge_costs(), model.active_normal, model.active_reduce)
    opt_w = torch.optim.SGD(model.weight_parameters(), 0.1, momentum=0.9)
    return BilevelStepper(cfg, model, opt_w, None, DistContext(), lambda: "", latency), model


def test_the_architecture_gradient_sees_latency_only_with_a_weight():
    torch.manual_seed(1)
    x, y = torch.randn(4, 3, 32, 32), torch.softmax(torch.randn(4, 10), 1)
    grads = {}
    for weight in (0.0, 2.0):
        stepper, model = _stepper(weight)
        loss = stepper._loss(x, y)
        objective = stepper.arch_objective(loss)
        assert (objective is loss) == (weight == 0.0)  # weight 0: not even a factor of 1 enters the graph
        grads[weight] = torch.autograd.grad(objective, model.arch_parameters())
    for g0, g2 in zip(grads[0.0], grads[2.0]):
        assert torch.isfinite(g2).all() and not torch.allclose(g0, g2)
    # The latency part alone pushes the expensive ops down.
    col = PRIMITIVES.index
    diff = grads[2.0][0] - grads[0.0][0]
    assert (diff[:, col("sep_conv_5x5")] > diff[:, col("skip_connect")]).all()


def test_the_second_order_gradient_carries_the_latency_factor():
    torch.manual_seed(2)
    x, xa = torch.randn(4, 3, 32, 32), torch.randn(4, 3, 32, 32)
    y, ya = torch.softmax(torch.randn(4, 10), 1), torch.softmax(torch.randn(4, 10), 1)
    stepper, model = _stepper(2.0, order="second")
    _, second = stepper._unrolled_grads(xa, ya, x, y, lr=0.0)  # no unrolling: the first-order objective's gradient
    first = torch.autograd.grad(stepper.arch_objective(stepper._loss(xa, ya)), model.arch_parameters())
    unweighted = torch.autograd.grad(stepper._loss(xa, ya), model.arch_parameters())
    for s, f, u in zip(second, first, unweighted):
        torch.testing.assert_close(s, f, rtol=1e-4, atol=1e-7)
        assert not torch.allclose(s, u)


# ---- config --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "changes,message",
    [
        (dict(latency_weight=-0.1, latency_table="t.json"), "latency_weight=-0.1"),
        (dict(latency_weight=1.0), "latency_weight=1.0 needs latency_table"),
        (dict(latency_target_ms=0.0), "latency_target_ms=0.0"),
        (dict(latency_target_ms=float("inf")), "latency_target_ms=inf"),
        (dict(latency_table=""), "latency_table=''"),
        (dict(preset="phone"), "preset 'phone' searches against a target's latency: set latency_table"),
    ],
)
def test_latency_settings_are_checked(changes, message):
    with pytest.raises(ValueError, match=message):
        SearchConfig(**changes)


def test_phone_preset_needs_a_table_and_sets_a_weight(tmp_path):
    from aestheticnet.cli import main
    from aestheticnet.cli.search import _config_from_options

    cfg = SearchConfig.from_preset("phone", epochs_scale=0.2, latency_table="t.json")
    assert cfg.latency_weight > 0 and cfg.stages == tuple(s.scaled(0.2) for s in PRESETS["pdarts_paper"])
    assert SearchConfig.from_preset("phone", latency_table="t.json", latency_weight=0.1).latency_weight == 0.1
    assert SearchConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
    options = {"latency_table": "t.json", "latency_weight": None, "latency_target_ms": 12.5}
    cli_cfg = _config_from_options(None, "phone", 1.0, options)
    assert (cli_cfg.latency_weight, cli_cfg.latency_target_ms) == (cfg.latency_weight, 12.5)
    assert _config_from_options(None, "phone", 1.0, {**options, "latency_weight": 0.0}).latency_weight == 0.0
    help_text = CliRunner().invoke(main, ["search", "--help"]).output
    assert all(o in help_text for o in ("--latency-table", "--latency-target-ms", "--latency-weight", "phone"))
    r = CliRunner().invoke(main, ["search", "--data", str(tmp_path), "--out", str(tmp_path / "o"), "--preset", "phone"])
    assert r.exit_code == 2 and "set latency_table" in r.output


def test_a_table_for_other_cells_is_refused(tmp_path):
    from aestheticnet.nas.latency_penalty import check_costs

    with pytest.raises(LatencyError, match="its cells have 3 nodes, the search 4"):
        check_costs(edge_costs(steps=3), 4)
    row = tuple(1.0 for _ in PRIMITIVES[:-1])
    partial = EdgeCosts(PRIMITIVES[:-1], (row,) * 14, (row,) * 14, 0.0)
    with pytest.raises(LatencyError, match=r"no latency for the candidate op\(s\) \['dil_conv_5x5'\]"):
        check_costs(partial, 4)
