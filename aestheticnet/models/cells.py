"""A cell of the final (discrete) network, built from a genotype and the shared OPS table."""

from __future__ import annotations

import torch
from torch import nn

from aestheticnet.models.contract import Part
from aestheticnet.nas.genotypes import Genotype
from aestheticnet.nas.operations import FactorizedReduce, Identity, ReLUConvBN, make_op

__all__ = ["Cell", "drop_path", "op_label"]


def drop_path(x: torch.Tensor, drop_prob: float) -> torch.Tensor:
    """Zero whole samples of a path with probability ``drop_prob`` and rescale the rest (DARTS' drop path)."""
    if drop_prob <= 0.0:
        return x
    keep = 1.0 - drop_prob
    mask = torch.empty(x.shape[0], 1, 1, 1, device=x.device, dtype=x.dtype).bernoulli_(keep)
    return x / keep * mask


def op_label(name: str, dilation: int) -> str:
    """How breakdowns name an operation: a sep conv that ``make_op`` dilates as e.g. ``sep_conv_3x3@d2``."""
    return f"{name}@d{dilation}" if dilation > 1 and name.startswith("sep_conv") else name


class Cell(nn.Module):
    def __init__(
        self,
        genotype: Genotype,
        c_prev_prev: int,
        c_prev: int,
        c: int,
        reduction: bool,
        reduction_prev: bool,
        dilation: int = 1,
    ):
        super().__init__()
        self.reduction = reduction
        # The input two cells back is at twice the resolution when the previous cell reduced.
        self.preprocess0 = FactorizedReduce(c_prev_prev, c) if reduction_prev else ReLUConvBN(c_prev_prev, c, 1, 1, 0)
        self.preprocess1 = ReLUConvBN(c_prev, c, 1, 1, 0)
        edges = genotype.reduce if reduction else genotype.normal
        concat = genotype.reduce_concat if reduction else genotype.normal_concat
        self.steps = len(edges) // 2
        self.concat = tuple(concat)
        self.multiplier = len(concat)
        self.indices = tuple(inp for _, inp in edges)
        self.op_labels = tuple(op_label(name, dilation) for name, _ in edges)
        self.ops = nn.ModuleList(
            make_op(name, c, 2 if reduction and inp < 2 else 1, True, dilation) for name, inp in edges
        )

    def pieces(self, prefix: str, group: str) -> tuple[Part, ...]:
        """Its preprocessing and operations in the order ``forward`` runs them; ``prefix`` is its path."""
        pre = tuple(
            Part(f"{prefix}.{name}", module, group, f"preprocess ({type(module).__name__})")
            for name, module in (("preprocess0", self.preprocess0), ("preprocess1", self.preprocess1))
        )
        labelled = enumerate(zip(self.ops, self.op_labels, strict=True))
        return pre + tuple(Part(f"{prefix}.ops.{j}", op, group, label) for j, (op, label) in labelled)

    def forward(self, s0: torch.Tensor, s1: torch.Tensor, drop_prob: float = 0.0) -> torch.Tensor:
        states = [self.preprocess0(s0), self.preprocess1(s1)]
        for i in range(self.steps):
            op1, op2 = self.ops[2 * i], self.ops[2 * i + 1]
            h1 = op1(states[self.indices[2 * i]])
            h2 = op2(states[self.indices[2 * i + 1]])
            if self.training and drop_prob > 0.0:
                # Identity paths carry the signal through deep stacks; dropping them only slows training.
                if not isinstance(op1, Identity):
                    h1 = drop_path(h1, drop_prob)
                if not isinstance(op2, Identity):
                    h2 = drop_path(h2, drop_prob)
            states.append(h1 + h2)
        return torch.cat([states[i] for i in self.concat], dim=1)
