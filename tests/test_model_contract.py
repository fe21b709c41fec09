"""Every registered variant keeps the model contract (models/contract.py) from construction on."""

import pytest
import torch

from aestheticnet.models import ScoringModel, count_parameters, create_model, get_entry, list_models, load, save

# Small enough for a test, big enough for both reduction cells and a last stage.
SMALL = {"aestheticnet": {"layers": 5, "init_channels": 4}, "aestheticnet_star": {"layers": 5, "init_channels": 4}}
EXTRA = {
    "aestheticnet lcn": ("aestheticnet", {"layers": 3, "init_channels": 4, "input_norm": "lcn"}),
    "aestheticnet_star auxiliary": ("aestheticnet_star", {"layers": 4, "init_channels": 4, "auxiliary": True}),
    "aestheticnet cifar stem": ("aestheticnet", {"layers": 3, "init_channels": 4, "stem": "cifar"}),
}
CASES = {name: (name, SMALL.get(name, {})) for name in list_models()} | EXTRA


def _build(case: str):
    variant, overrides = CASES[case]
    torch.manual_seed(0)
    return variant, create_model(variant, **overrides).eval()


def _run_with_hooks(model, x: torch.Tensor) -> tuple[list[str], dict[str, tuple], dict[str, torch.Tensor]]:
    """The parts in the order they ran, and each part's inputs and output."""
    order, inputs, outputs = [], {}, {}
    hooks = []
    for part in model.parts():

        def record(_module, args, out, name=part.name):
            order.append(name)
            inputs[name], outputs[name] = args, out

        hooks.append(part.module.register_forward_hook(record))
    try:
        with torch.no_grad():
            model(x)
    finally:
        for hook in hooks:
            hook.remove()
    return order, inputs, outputs


def test_every_registered_variant_has_a_case():
    assert set(list_models()) <= set(CASES)


@pytest.mark.parametrize("case", sorted(CASES))
def test_built_variant_keeps_the_contract(case):
    variant, model = _build(case)
    assert isinstance(model, ScoringModel)
    assert model.variant == variant
    assert isinstance(model.config, get_entry(variant).config_cls)
    assert model.preprocessing == dict(get_entry(variant).preprocess) and model.metadata is None
    genotype = model.genotype.to_dict() if model.genotype is not None else None
    assert genotype == model.config.to_dict().get("genotype")  # None without searched cells


@pytest.mark.parametrize("case", sorted(CASES))
def test_parts_hold_every_parameter_once(case):
    _, model = _build(case)
    parts = model.parts()
    assert all(model.get_submodule(p.name) is p.module for p in parts)
    assert len({p.name for p in parts}) == len(parts)
    owned = [id(t) for p in parts for t in p.module.parameters()]
    assert len(owned) == len(set(owned))
    aux = model.auxiliary_head
    aux_params = {id(t) for t in aux.parameters()} if aux is not None else set()
    assert set(owned) | aux_params == {id(t) for t in model.parameters()}
    assert sum(p.numel() for part in parts for p in part.module.parameters()) == count_parameters(model)
    for part in parts:
        if part.pieces:
            assert all(model.get_submodule(q.name) is q.module for q in part.pieces)
            pieces = sum(t.numel() for q in part.pieces for t in q.module.parameters())
            assert pieces == sum(t.numel() for t in part.module.parameters())


@pytest.mark.parametrize("case", sorted(CASES))
def test_forward_runs_the_parts_once_in_order(case):
    _, model = _build(case)
    x = torch.randn(2, 3, 64, 64)
    order, _, outputs = _run_with_hooks(model, x)
    names = [p.name for p in model.parts()]
    assert order == names
    with torch.no_grad():
        features, dist = model.forward_features(x), model(x)
    torch.testing.assert_close(outputs[names[-2]], features, rtol=0, atol=0)
    assert names[-1] == "head"
    torch.testing.assert_close(torch.softmax(outputs["head"], dim=1), dist, rtol=0, atol=0)


@pytest.mark.parametrize("case", sorted(CASES))
def test_parts_run_in_order_reproduce_forward_where_they_chain(case):
    """Where every part before the head takes the previous part's output alone (MobileNetV2's layers, not the
    two-input cells), running them one after the other gives ``forward_features``, and the head gives ``forward``."""
    _, model = _build(case)
    x = torch.randn(2, 3, 64, 64)
    _, inputs, outputs = _run_with_hooks(model, x)
    body = [p for p in model.parts() if p.group != "head"]
    chained = all(len(inputs[b.name]) == 1 and inputs[b.name][0] is outputs[a.name] for a, b in zip(body, body[1:]))
    if not chained:
        assert any(p.kind in ("normal", "reduce") for p in body)  # only the cells break the chain
        return
    y = x
    with torch.no_grad():
        for part in body:
            y = part.module(y)
        torch.testing.assert_close(y, model.forward_features(x), rtol=0, atol=0)
        torch.testing.assert_close(model.forward_head(y), model(x), rtol=0, atol=0)


def test_loaded_model_keeps_the_contract(tmp_path):
    _, model = _build("aestheticnet_star")
    preprocess = {**get_entry("aestheticnet_star").preprocess, "size": 320}
    again = load(save(model, tmp_path / "m.safetensors", preprocess=preprocess))
    assert isinstance(again, ScoringModel) and again.variant == "aestheticnet_star"
    assert again.preprocessing == again.metadata["preprocess"] and again.preprocessing["size"] == 320
    assert [p.name for p in again.parts()] == [p.name for p in model.parts()]
