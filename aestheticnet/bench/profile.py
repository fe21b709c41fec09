"""Static profile of a network: parameters, multiply-accumulates at an input size, per-stage output shapes.

Every registered variant gets the totals and the output shapes of its ``stage_names()``; networks of searched
cells (``AestheticNet``) also get per-cell and per-stage sums.

MACs come from ``torch.utils.flop_counter.FlopCounterMode`` (the counter torch ships), which counts two FLOPs
per multiply-add for convolutions and matrix products; element-wise ops (BN, ReLU, pooling) are not counted,
as in the usual MAC tables of mobile networks.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from aestheticnet.models.aestheticnet import AestheticNet, count_parameters

__all__ = ["profile_model"]


def _stage_of(model: AestheticNet, index: int) -> int:
    r1, r2 = model.reduction_layers
    return 0 if index < r1 else 1 if index < r2 else 2


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
    if not isinstance(model, AestheticNet):
        return {**totals, "output_shapes": shapes}
    return {**totals, **_cell_profile(model, counter.get_flop_counts(), shapes)}


def _cell_profile(model: AestheticNet, flops_by_module: dict, shapes: dict[str, list[int]]) -> dict[str, Any]:
    """Per-cell, per-stage and per-cell-type parameters and MACs, and the stem's and head's."""
    root = type(model).__name__  # the counter names submodules "<RootClass>.<fqn>"

    def macs_of(prefix: str) -> int:
        key = f"{root}.{prefix}"
        return int(sum(flops_by_module.get(key, {}).values())) // 2

    cells = []
    per_stage: dict[str, dict[str, int]] = {}
    for i, cell in enumerate(model.cells):
        params = sum(p.numel() for p in cell.parameters())
        macs = macs_of(f"cells.{i}")
        stage = (
            f"stage{_stage_of(model, i) + 1}"
            if not cell.reduction
            else f"reduction{1 + (i == model.reduction_layers[1])}"
        )
        cells.append(
            {
                "index": i,
                "type": "reduce" if cell.reduction else "normal",
                "group": stage,
                "params": params,
                "macs": macs,
                "output_shape": shapes.get(f"cells.{i}"),
            }
        )
        agg = per_stage.setdefault(stage, {"params": 0, "macs": 0, "cells": 0})
        agg["params"] += params
        agg["macs"] += macs
        agg["cells"] += 1
    stem_params = sum(p.numel() for p in model.stem0.parameters())
    if model.stem1 is not None:
        stem_params += sum(p.numel() for p in model.stem1.parameters())
    head_params = sum(p.numel() for p in model.head.parameters()) + sum(p.numel() for p in model.attention.parameters())
    by_type = {
        t: {k: sum(c[k] for c in cells if c["type"] == t) for k in ("params", "macs")} for t in ("normal", "reduce")
    }
    return {
        "stem": {
            "params": stem_params,
            "macs": macs_of("stem0") + macs_of("stem1"),
            "output_shapes": {k: v for k, v in shapes.items() if k.startswith("stem")},
        },
        "head": {"params": head_params, "macs": macs_of("attention") + macs_of("head")},
        "stages": per_stage,
        "cell_types": by_type,
        "cells": cells,
    }
