"""The search space: mixed ops over each edge's still-active candidates, search cells and the supernet.

Built from the one OPS table (``operations.py``) with ``affine=False`` batch norms, and a BatchNorm after the
pooling ops, as DARTS' ``model_search.py`` does. Differences from the reference supernets, on purpose:

* only the ops still active on an edge are built (P-DARTS), and ``none`` is never built nor computed: it only
  holds a share of the edge's softmax, so the weighted sum over the computed ops is the same as the reference
  sum with a zero term;
* the stem is the final network's (ImageNet style, total stride 8, reductions at 1/3 and 2/3 of the depth) so
  cells are searched at the scales they run at; ``stem="cifar"`` (stride 1) suits tiny inputs;
* the head predicts a distribution over score buckets (softmax), for the EMD losses;
* architecture weights are registered ``nn.Parameter``s (``alphas_normal``, ``alphas_reduce``), so they move
  with ``.to(device)`` and are saved with ``state_dict()``; :meth:`SearchNetwork.arch_parameters` and
  :meth:`SearchNetwork.weight_parameters` keep the two optimisers apart.

Active ops are data (``active_ops.py``); the skip-connect dropout rate reaches the cells through
:meth:`SearchNetwork.set_skip_dropout`.
"""

from __future__ import annotations

from typing import Any, Iterator, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from aestheticnet.nas.active_ops import ActiveOps, cell_edges, check_active
from aestheticnet.nas.derivation import derive_genotype
from aestheticnet.nas.genotypes import Genotype
from aestheticnet.nas.operations import FactorizedReduce, ReLUConvBN, make_op
from aestheticnet.nas.stem import build_stem, cell_slots, input_multiple, reduction_layers, run_stem

__all__ = ["MixedOp", "SearchCell", "SearchNetwork"]


class MixedOp(nn.Module):
    """The weighted sum of an edge's active ops; ``none`` is a weight without a module.

    ``names`` lists the active ops (the architecture weights' columns); ``ops`` holds a module for each of them
    except ``none``. ``forward`` returns None when nothing is computed (only ``none`` active).
    """

    def __init__(self, c: int, stride: int, names: Sequence[str]):
        super().__init__()
        self.names = tuple(names)
        self.stride = stride
        self.ops = nn.ModuleDict()
        for name in self.names:
            if name == "none":
                continue
            op = make_op(name, c, stride, affine=False)
            if "pool" in name:
                op = nn.Sequential(op, nn.BatchNorm2d(c, affine=False))
            self.ops[name] = op
        # (column of the weights, name) of every computed op
        self.computed = tuple((self.names.index(name), name) for name in self.ops)

    def forward(self, x: torch.Tensor, weights: torch.Tensor, skip_dropout: float = 0.0) -> torch.Tensor | None:
        out = None
        for column, name in self.computed:
            h = self.ops[name](x)
            # P-DARTS drops only the parameter-free identity skips (stride 1), never FactorizedReduce.
            if name == "skip_connect" and self.stride == 1 and skip_dropout > 0.0 and self.training:
                h = F.dropout(h, skip_dropout, training=True)
            h = weights[column] * h
            out = h if out is None else out + h
        return out

    def extra_repr(self) -> str:
        return f"names={list(self.names)}, stride={self.stride}"


class SearchCell(nn.Module):
    def __init__(
        self,
        active: ActiveOps,
        steps: int,
        c_prev_prev: int,
        c_prev: int,
        c: int,
        reduction: bool,
        reduction_prev: bool,
    ):
        super().__init__()
        self.reduction = reduction
        self.steps = steps
        self.multiplier = steps  # every intermediate node is concatenated (concat = 2..steps+1)
        self.preprocess0 = (
            FactorizedReduce(c_prev_prev, c, affine=False)
            if reduction_prev
            else ReLUConvBN(c_prev_prev, c, 1, 1, 0, affine=False)
        )
        self.preprocess1 = ReLUConvBN(c_prev, c, 1, 1, 0, affine=False)
        self.edges = cell_edges(steps)
        self.mixed = nn.ModuleList(
            MixedOp(c, 2 if reduction and inp < 2 else 1, ops) for (_, inp), ops in zip(self.edges, active)
        )

    def forward(
        self, s0: torch.Tensor, s1: torch.Tensor, weights: torch.Tensor, skip_dropout: float = 0.0
    ) -> torch.Tensor:
        states = [self.preprocess0(s0), self.preprocess1(s1)]
        offset = 0
        for node in range(2, 2 + self.steps):
            total = None
            for inp in range(node):
                h = self.mixed[offset + inp](states[inp], weights[offset + inp], skip_dropout)
                if h is not None:
                    total = h if total is None else total + h
            offset += node
            if total is None:  # every input edge holds only `none`
                stride = 2 if self.reduction else 1
                total = torch.zeros_like(states[1][:, :, ::stride, ::stride])
            states.append(total)
        return torch.cat(states[2:], dim=1)


class SearchNetwork(nn.Module):
    """The supernet of one search stage.

    Args:
        active_normal, active_reduce: active ops per edge (``ActiveOps``) of the normal and reduction cells.
        layers: number of cells; reduction cells at ``layers // 3`` and ``2 * layers // 3``.
        init_channels: C of the first cells (doubled at each reduction).
        steps: intermediate nodes per cell.
        num_buckets: length of the predicted distribution.
        stem: ``imagenet`` (stride 8, the final network's) or ``cifar`` (stride 1, 3C channels).
        alpha_init_std: architecture weights start at ``alpha_init_std * randn`` (DARTS: 1e-3).
    """

    def __init__(
        self,
        active_normal: Sequence[Sequence[str]],
        active_reduce: Sequence[Sequence[str]],
        *,
        layers: int,
        init_channels: int = 16,
        steps: int = 4,
        num_buckets: int = 10,
        stem: str = "imagenet",
        alpha_init_std: float = 1e-3,
    ):
        super().__init__()
        if layers < 3:
            raise ValueError(f"SearchNetwork: layers={layers} (need >= 3 for two reduction cells)")
        self.steps = steps
        self.layers = layers
        self.active_normal = check_active(active_normal, steps, "normal cell")
        self.active_reduce = check_active(active_reduce, steps, "reduction cell")
        self._skip_dropout = 0.0  # this epoch's rate (set_skip_dropout)
        stem_layout = build_stem(stem, 3, init_channels)
        self.stem0, self.stem1 = stem_layout.stem0, stem_layout.stem1
        self.input_multiple = input_multiple(stem)
        self.reduction_layers = reduction_layers(layers)
        slots = cell_slots(stem_layout, layers, lambda reduction: steps)  # every node is concatenated
        self.cells = nn.ModuleList(
            SearchCell(
                self.active_reduce if slot.reduction else self.active_normal,
                steps,
                slot.c_prev_prev,
                slot.c_prev,
                slot.c,
                slot.reduction,
                slot.reduction_prev,
            )
            for slot in slots
        )
        self.head = nn.Linear(slots[-1].c_out, num_buckets)
        n_edges = len(cell_edges(steps))
        self.alphas_normal = nn.Parameter(alpha_init_std * torch.randn(n_edges, len(self.active_normal[0])))
        self.alphas_reduce = nn.Parameter(alpha_init_std * torch.randn(n_edges, len(self.active_reduce[0])))

    # ---- parameters -----------------------------------------------------------------------------------------
    def arch_parameters(self) -> list[nn.Parameter]:
        return [self.alphas_normal, self.alphas_reduce]

    def weight_parameters(self) -> list[nn.Parameter]:
        arch = {id(p) for p in self.arch_parameters()}
        return [p for p in self.parameters() if id(p) not in arch]

    def named_weight_parameters(self) -> Iterator[tuple[str, nn.Parameter]]:
        for name, p in self.named_parameters():
            if not name.startswith("alphas_"):
                yield name, p

    # ---- schedule -------------------------------------------------------------------------------------------
    def set_skip_dropout(self, rate: float) -> None:
        """The dropout rate after stride-1 skip_connect ops while training."""
        if not 0.0 <= rate < 1.0:
            raise ValueError(f"skip-connect dropout rate {rate} (need 0 <= p < 1)")
        self._skip_dropout = float(rate)

    # ---- forward --------------------------------------------------------------------------------------------
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4 or x.shape[2] % self.input_multiple or x.shape[3] % self.input_multiple:
            raise ValueError(
                f"SearchNetwork: expected (N, 3, H, W) with H and W multiples of {self.input_multiple}, "
                f"got {tuple(x.shape)}"
            )
        w_normal = F.softmax(self.alphas_normal, dim=-1)
        w_reduce = F.softmax(self.alphas_reduce, dim=-1)
        s0, s1 = run_stem(self.stem0, self.stem1, x)
        for cell in self.cells:
            weights = w_reduce if cell.reduction else w_normal
            s0, s1 = s1, cell(s0, s1, weights, self._skip_dropout)
        return F.softmax(self.head(s1.mean(dim=(2, 3))), dim=1)

    # ---- export ---------------------------------------------------------------------------------------------
    @torch.no_grad()
    def probabilities(self) -> tuple[list[list[float]], list[list[float]]]:
        """Softmax of the architecture weights per edge (normal, reduce), aligned with the active ops."""
        return (
            F.softmax(self.alphas_normal.detach().float().cpu(), dim=-1).tolist(),
            F.softmax(self.alphas_reduce.detach().float().cpu(), dim=-1).tolist(),
        )

    def export_probs(self) -> dict[str, Any]:
        """JSON-ready probabilities per edge per active op (NNI's 'export probabilities')."""
        p_normal, p_reduce = self.probabilities()

        def cell(active: ActiveOps, probs: list[list[float]]) -> list[dict[str, Any]]:
            return [
                {"node": node, "input": inp, "probs": dict(zip(ops, p))}
                for (node, inp), ops, p in zip(cell_edges(self.steps), active, probs)
            ]

        return {
            "steps": self.steps,
            "normal": cell(self.active_normal, p_normal),
            "reduce": cell(self.active_reduce, p_reduce),
        }

    def export(self, max_skip_connect: int | None = 2) -> Genotype:
        """The discrete cells chosen by P-DARTS' final rule (see ``derivation.derive_genotype``)."""
        p_normal, p_reduce = self.probabilities()
        return derive_genotype(
            self.active_normal, p_normal, self.active_reduce, p_reduce, self.steps, max_skip_connect=max_skip_connect
        )
