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

Active ops are data: ``ActiveOps`` is a tuple with one entry per edge, each a tuple of op names in PRIMITIVES
order. Edges are ordered node by node (node 2: inputs 0, 1; node 3: inputs 0, 1, 2; ...), 14 for 4 steps.
"""

from __future__ import annotations

from typing import Any, Iterator, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from aestheticnet.nas.genotypes import Genotype
from aestheticnet.nas.operations import PRIMITIVES, FactorizedReduce, ReLUConvBN, make_op

__all__ = [
    "ActiveOps",
    "MixedOp",
    "SearchCell",
    "SearchNetwork",
    "cell_edges",
    "full_space",
    "check_active",
]

ActiveOps = tuple[tuple[str, ...], ...]


def cell_edges(steps: int) -> list[tuple[int, int]]:
    """``(node, input)`` of every edge of a cell, in the order architecture weights use."""
    return [(node, inp) for node in range(2, 2 + steps) for inp in range(node)]


def full_space(steps: int = 4) -> ActiveOps:
    """Every primitive on every edge: the first stage's space."""
    return tuple(PRIMITIVES for _ in cell_edges(steps))


def check_active(active: Sequence[Sequence[str]], steps: int, kind: str = "cell") -> ActiveOps:
    """Validate and normalise active ops: one entry per edge, known names in PRIMITIVES order, same count."""
    n_edges = len(cell_edges(steps))
    active = tuple(tuple(ops) for ops in active)
    if len(active) != n_edges:
        raise ValueError(f"{kind}: {len(active)} edges of active ops given, a {steps}-step cell has {n_edges}")
    for e, ops in enumerate(active):
        unknown = [op for op in ops if op not in PRIMITIVES]
        if unknown:
            raise ValueError(f"{kind} edge {e}: unknown op(s) {unknown}; valid: {', '.join(PRIMITIVES)}")
        if not ops or len(set(ops)) != len(ops):
            raise ValueError(f"{kind} edge {e}: need distinct ops, got {list(ops)}")
        if list(ops) != sorted(ops, key=PRIMITIVES.index):
            raise ValueError(f"{kind} edge {e}: ops must be listed in PRIMITIVES order, got {list(ops)}")
    counts = {len(ops) for ops in active}
    if len(counts) != 1:
        raise ValueError(f"{kind}: every edge needs the same number of active ops, got counts {sorted(counts)}")
    return active


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
        self.skip_dropout = 0.0  # set by the strategy every epoch
        c = init_channels
        if stem == "imagenet":
            self.stem0 = nn.Sequential(
                nn.Conv2d(3, c // 2, 3, stride=2, padding=1, bias=False),
                nn.BatchNorm2d(c // 2),
                nn.ReLU(inplace=False),
                nn.Conv2d(c // 2, c, 3, stride=2, padding=1, bias=False),
                nn.BatchNorm2d(c),
            )
            self.stem1 = nn.Sequential(
                nn.ReLU(inplace=False), nn.Conv2d(c, c, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(c)
            )
            c_prev_prev, c_prev, c_curr, reduction_prev = c, c, c, True
            self.input_multiple = 32
        elif stem == "cifar":
            self.stem0 = nn.Sequential(nn.Conv2d(3, 3 * c, 3, padding=1, bias=False), nn.BatchNorm2d(3 * c))
            self.stem1 = None
            c_prev_prev, c_prev, c_curr, reduction_prev = 3 * c, 3 * c, c, False
            self.input_multiple = 4
        else:
            raise ValueError(f"SearchNetwork: stem={stem!r} (valid: imagenet, cifar)")
        self.reduction_layers = (layers // 3, 2 * layers // 3)
        self.cells = nn.ModuleList()
        for i in range(layers):
            reduction = i in self.reduction_layers
            if reduction:
                c_curr *= 2
            active = self.active_reduce if reduction else self.active_normal
            cell = SearchCell(active, steps, c_prev_prev, c_prev, c_curr, reduction, reduction_prev)
            self.cells.append(cell)
            reduction_prev = reduction
            c_prev_prev, c_prev = c_prev, cell.multiplier * c_curr
        self.head = nn.Linear(c_prev, num_buckets)
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

    # ---- forward --------------------------------------------------------------------------------------------
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4 or x.shape[2] % self.input_multiple or x.shape[3] % self.input_multiple:
            raise ValueError(
                f"SearchNetwork: expected (N, 3, H, W) with H and W multiples of {self.input_multiple}, "
                f"got {tuple(x.shape)}"
            )
        w_normal = F.softmax(self.alphas_normal, dim=-1)
        w_reduce = F.softmax(self.alphas_reduce, dim=-1)
        s0 = self.stem0(x)
        s1 = self.stem1(s0) if self.stem1 is not None else s0
        for cell in self.cells:
            weights = w_reduce if cell.reduction else w_normal
            s0, s1 = s1, cell(s0, s1, weights, self.skip_dropout)
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
        from aestheticnet.nas.derivation import derive_genotype

        p_normal, p_reduce = self.probabilities()
        return derive_genotype(
            self.active_normal, p_normal, self.active_reduce, p_reduce, self.steps, max_skip_connect=max_skip_connect
        )
