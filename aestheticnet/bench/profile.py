"""Static profile of a network: parameters, multiply-accumulates at an input size, per-stage output shapes.

Every registered variant gets the totals and the output shapes of its ``stage_names()``; networks of searched
cells (those whose ``parts()`` hold normal and reduction cells) also get per-cell and per-stage sums.

MACs come from ``torch.utils.flop_counter.FlopCounterMode`` (the counter torch ships), which counts two FLOPs
per multiply-add for convolutions and matrix products; element-wise ops (BN, ReLU, pooling) are not counted,
as in the usual MAC tables of mobile networks.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from aestheticnet.models.aestheticnet import count_parameters

__all__ = ["profile_model"]

CELL_KINDS = ("normal", "reduce")


@torch.no_grad()
def _count(model: nn.Module, size: tuple[int, int], batch: int) -> tuple[FlopCounterMode, dict[str, list[int]]]:
    """The FLOP counter after one eval-mode run at ``size``, and the output shape of every ``stage_names()``."""
    h, w = size
    model_was_training = model.training
    model.eval()
    shapes: dict[str, list[int]] = {}
    hooks = []
    for name in model.stage_names():
        module = model.get_submodule(name)
        hooks.append(
            module.register_forward_hook(lambda _m, _i, out, name=name: shapes.__setitem__(name, list(out.shape)))
        )
    counter = FlopCounterMode(display=False, depth=None)
    try:
        x = torch.zeros(batch, 3, h, w)
        with counter:
            model(x)
    finally:
        for hook in hooks:
            hook.remove()
        model.train(model_was_training)
    return counter, shapes


def profile_model(model: nn.Module, size: tuple[int, int] = (224, 224), batch: int = 1) -> dict[str, Any]:
    """Parameters, MACs and per-stage output shapes at ``size`` (H, W). The model is run once, in eval mode."""
    counter, shapes = _count(model, size, batch)
    totals = {
        "input_size": list(size),
        "batch": batch,
        "params": count_parameters(model, exclude_auxiliary=True),
        "params_with_auxiliary": count_parameters(model, exclude_auxiliary=False),
        "macs": int(counter.get_total_flops()) // 2,
        "output_shape": [batch, model.config.num_buckets],
    }
    parts = model.parts()
    if not any(part.kind in CELL_KINDS for part in parts):
        return {**totals, "output_shapes": shapes}
    return {**totals, **_cell_profile(model, parts, counter.get_flop_counts(), shapes)}


def _params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def _cell_profile(model: nn.Module, parts: list, flops_by_module: dict, shapes: dict[str, list[int]]) -> dict[str, Any]:
    """Per-cell, per-stage and per-cell-type parameters and MACs, and the stem's and head's, from the model's
    ``parts()``."""
    root = type(model).__name__  # the counter names submodules "<RootClass>.<fqn>"

    def macs_of(name: str) -> int:
        return int(sum(flops_by_module.get(f"{root}.{name}", {}).values())) // 2

    cells = []
    per_stage: dict[str, dict[str, int]] = {}
    for index, part in enumerate(p for p in parts if p.kind in CELL_KINDS):
        params, macs = _params(part.module), macs_of(part.name)
        cells.append(
            {
                "index": index,
                "type": part.kind,
                "group": part.group,
                "params": params,
                "macs": macs,
                "output_shape": shapes.get(part.name),
            }
        )
        agg = per_stage.setdefault(part.group, {"params": 0, "macs": 0, "cells": 0})
        agg["params"] += params
        agg["macs"] += macs
        agg["cells"] += 1
    stems = [p for p in parts if p.kind == "stem"]
    heads = [p for p in parts if p.group in ("attention", "head")]
    by_type = {t: {k: sum(c[k] for c in cells if c["type"] == t) for k in ("params", "macs")} for t in CELL_KINDS}
    return {
        "stem": {
            "params": sum(_params(p.module) for p in stems),
            "macs": sum(macs_of(p.name) for p in stems),
            "output_shapes": {k: v for k, v in shapes.items() if k.startswith("stem")},
        },
        "head": {"params": sum(_params(p.module) for p in heads), "macs": sum(macs_of(p.name) for p in heads)},
        "stages": per_stage,
        "cell_types": by_type,
        "cells": cells,
    }
