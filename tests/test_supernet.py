"""The supernet: only active ops are built and computed, alphas are registered, stage transitions, exports."""

import json
import random

import pytest
import torch

from aestheticnet.nas.derivation import prune_ops
from aestheticnet.nas.genotypes import Genotype
from aestheticnet.nas.operations import PRIMITIVES, Zero
from aestheticnet.nas.active_ops import cell_edges, full_space
from aestheticnet.nas.search_space import MixedOp, SearchNetwork


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    # Tiny convolutions: one thread is faster than two contended ones, and the machine is shared.
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def tiny(active_normal=None, active_reduce=None, layers=3, stem="imagenet"):
    torch.manual_seed(0)
    return SearchNetwork(
        active_normal or full_space(4), active_reduce or full_space(4), layers=layers, init_channels=4, stem=stem
    )


def random_probs(active, seed):
    rng = random.Random(seed)
    rows = []
    for ops in active:
        row = [rng.random() for _ in ops]
        rows.append([v / sum(row) for v in row])
    return rows


def executed_ops(model, x):
    """(cell, edge, op) of every candidate-op module that actually ran, and how often each ran."""
    calls = {}
    handles = []
    for c, cell in enumerate(model.cells):
        for e, mixed in enumerate(cell.mixed):
            for name, op in mixed.ops.items():
                key = (c, e, name)

                def count(module, inputs, output, key=key):
                    calls[key] = calls.get(key, 0) + 1

                handles.append(op.register_forward_hook(count))
    try:
        model(x)
    finally:
        for h in handles:
            h.remove()
    return calls


def test_alphas_are_registered_and_separate_from_weights():
    model = tiny()
    names = dict(model.named_parameters())
    assert names["alphas_normal"].shape == (14, 8) and names["alphas_reduce"].shape == (14, 8)
    arch = {id(p) for p in model.arch_parameters()}
    weights = {id(p) for p in model.weight_parameters()}
    assert arch.isdisjoint(weights) and arch | weights == {id(p) for p in model.parameters()}
    assert "alphas_normal" in model.state_dict()
    assert all(not n.startswith("alphas") for n, _ in model.named_weight_parameters())


def test_none_is_never_built_and_pools_get_a_batch_norm():
    model = tiny()
    assert not any(isinstance(m, Zero) for m in model.modules())
    mixed = model.cells[0].mixed[0]
    assert mixed.names == PRIMITIVES and "none" not in mixed.ops
    assert isinstance(mixed.ops["max_pool_3x3"][1], torch.nn.BatchNorm2d)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) and m.affine for m in model.cells.modules())


@pytest.mark.parametrize("keep", [5, 2])
def test_stage_transition_keeps_exactly_the_configured_ops_and_only_those_run(keep):
    first = tiny()
    p_normal, p_reduce = random_probs(first.active_normal, 1), random_probs(first.active_reduce, 2)
    active_normal = prune_ops(first.active_normal, p_normal, 5)
    active_reduce = prune_ops(first.active_reduce, p_reduce, 5)
    if keep == 2:  # 8 -> 5 -> 2, as in the paper
        active_normal = prune_ops(active_normal, random_probs(active_normal, 3), 2)
        active_reduce = prune_ops(active_reduce, random_probs(active_reduce, 4), 2)
    assert all(len(ops) == keep for ops in active_normal + active_reduce)
    model = tiny(active_normal, active_reduce, layers=5)
    assert model.alphas_normal.shape == (14, keep)
    calls = executed_ops(model.train(), torch.randn(2, 3, 32, 32))
    expected = set()
    for c, cell in enumerate(model.cells):
        active = active_reduce if cell.reduction else active_normal
        for e, ops in enumerate(active):
            expected |= {(c, e, name) for name in ops if name != "none"}
    assert set(calls) == expected
    assert set(calls.values()) == {1}


def test_an_edge_of_only_none_contributes_zeros():
    active = tuple(("none",) if node == 2 else ("sep_conv_3x3",) for node, _ in cell_edges(4))
    model = tiny(active, active, layers=3).eval()
    assert len(model.cells[0].mixed[0].ops) == 0
    seen = []
    model.cells[1].register_forward_hook(lambda m, i, o: seen.append(o))
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 10)
    node2 = seen[0][:, :8]  # the reduction cell's first intermediate node (C = 8, 4x4 -> 2x2)
    assert node2.shape == (2, 8, 2, 2) and not node2.any()


def test_gradients_reach_the_alphas_and_the_output_is_a_distribution():
    model = tiny(stem="cifar")
    out = model(torch.randn(2, 3, 8, 8))
    torch.testing.assert_close(out.sum(1), torch.ones(2))
    out[:, 0].sum().backward()
    assert model.alphas_normal.grad.abs().sum() > 0 and model.alphas_reduce.grad.abs().sum() > 0


def test_input_size_is_checked():
    with pytest.raises(ValueError, match="multiples of 32"):
        tiny()(torch.randn(1, 3, 48, 48))


def test_skip_dropout_only_on_identity_skips_and_only_in_training():
    torch.manual_seed(0)
    x = torch.ones(4, 3, 8, 8)
    w = torch.ones(1)
    skip = MixedOp(3, 1, ("skip_connect",))
    dropped = skip.train()(x, w, skip_dropout=0.5)
    assert (dropped == 0).any() and ((dropped == 0) | (dropped == 2)).all()
    assert torch.equal(skip.eval()(x, w, skip_dropout=0.5), x)
    reduce = MixedOp(4, 2, ("skip_connect",)).train()  # FactorizedReduce: not dropped (P-DARTS drops Identity)
    x4 = torch.randn(4, 4, 8, 8)
    torch.testing.assert_close(reduce(x4, w, 0.9), reduce(x4, w, 0.0))


def test_export_probs_is_json_and_export_is_a_genotype():
    active = prune_ops(full_space(4), random_probs(full_space(4), 5), 5)
    model = tiny(active, full_space(4))
    probs = json.loads(json.dumps(model.export_probs()))
    assert len(probs["normal"]) == len(probs["reduce"]) == 14
    for entry, ops in zip(probs["normal"], active):
        assert tuple(entry["probs"]) == ops
        assert sum(entry["probs"].values()) == pytest.approx(1.0, abs=1e-6)
    assert (probs["normal"][2]["node"], probs["normal"][2]["input"]) == (3, 0)
    with torch.no_grad():
        model.alphas_normal.zero_()
        model.alphas_normal[:, 0] = 5.0  # the first active op dominates every normal edge
    g = model.export(max_skip_connect=2)
    assert isinstance(g, Genotype) and len(g.normal) == 8
    assert Genotype.from_json(g.to_json()) == g


def test_the_supernet_sets_its_skip_dropout_through_its_own_method():
    model = tiny()
    with pytest.raises(ValueError, match="skip-connect dropout rate 1.0"):
        model.set_skip_dropout(1.0)
    model.set_skip_dropout(0.3)
    seen = []
    model.cells[0].mixed[0].register_forward_hook(lambda m, args, out: seen.append(args[2]))
    model.train()(torch.randn(2, 3, 32, 32))
    assert seen == [0.3]


@pytest.mark.parametrize("stem", ["imagenet", "cifar"])
def test_supernet_and_final_network_share_the_stem(stem):
    from aestheticnet.models import create_model

    supernet = tiny(stem=stem)
    final = create_model("aestheticnet", stem=stem, init_channels=4, layers=3)
    shapes = [{k: tuple(v.shape) for k, v in m.state_dict().items() if k.startswith("stem")} for m in (supernet, final)]
    assert shapes[0] == shapes[1] and shapes[0]
    assert supernet.input_multiple == final.input_multiple == {"imagenet": 32, "cifar": 4}[stem]
