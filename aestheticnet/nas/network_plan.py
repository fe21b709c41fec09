"""What the final network runs, part by part: every shape a latency table times and how the parts add up.

A latency table times each candidate operation at every shape the final network can run it at, and the parts
every network of one configuration runs whatever its genotype: the stem, each cell's two preprocessing blocks
(``ReLUConvBN``, or ``FactorizedReduce`` after a reduction), the concatenation of the nodes, CBAM and the head
(global pooling, linear, softmax). A node's sum of its two edges has no entry of its own: each edge is timed where
it feeds a sum, so its entry holds the sum (which runtimes fuse into the edge's last convolution).
:func:`plan_network` lists the parts for a :class:`NetworkSpec` (variant, depth, width, stem, CBAM, last-stage
dilation, input size), with the same channel plan the networks are built from (``nas/stem.py``: ``build_stem``,
``cell_slots``, ``cell_dilation``).

ReLUs are shared. Every separable and dilated convolution (and ``FactorizedReduce``, a stride-2 skip) starts
with a ReLU of the state it reads; runtimes compute the ReLUs of one state once (common subexpressions), and fold
that one into the convolution that made the state when nothing else reads the state. So a cell runs one standalone
ReLU per state that such an operation reads, except a cell input read only by such operations and made by a
``ReLUConvBN`` (a convolution); a node (a sum, also read by the concatenation) always has one. The ``relu`` part
is one standalone ReLU on a state; :meth:`NetworkPlan.relus` says which a cell runs and which its edges' entries
already hold (a stride-1 edge is timed reading a tensor something else reads too, so its entry holds its ReLU; a
stride-2 edge's copies share theirs, folded into the feed).

An :class:`OpShape` is one such part at one shape: the operation, input and output channels, the input height and
width, the stride and the dilation it runs with. Edges of a reduction cell that leave the cell inputs have stride
2 (``skip_connect`` there is a ``FactorizedReduce``); ``none`` and a stride-1 ``skip_connect`` run nothing.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from aestheticnet.nas.latency import LatencyError
from aestheticnet.nas.operations import PRIMITIVES
from aestheticnet.nas.stem import (
    STEM_STRIDES,
    build_stem,
    cell_dilation,
    cell_slots,
    check_stem,
    input_multiple,
    reduction_layers,
)

__all__ = ["FIXED_PARTS", "CellPlan", "NetworkPlan", "NetworkSpec", "OpShape", "plan_network", "stage_of"]

# The parts every network of a configuration runs, whatever its genotype, and ``relu``: a standalone ReLU on a
# cell state, which every network runs but as many times as its genotype says (NetworkPlan.relus).
FIXED_PARTS = ("stem", "relu_conv_bn", "factorized_reduce", "concat", "cbam", "head", "relu")
# Where a DARTS cell's dilated ops (dil_conv) always run: dilation 2, in every cell.
_DIL_CONV_DILATION = 2
# Candidate operations that start with a ReLU of their input (a stride-2 skip_connect too: FactorizedReduce).
_RELU_FIRST = ("sep_conv_3x3", "sep_conv_5x5", "dil_conv_3x3", "dil_conv_5x5")


@dataclass(frozen=True, order=True)
class OpShape:
    """One operation at one shape: channels in and out, input height and width, stride and dilation."""

    op: str  # a candidate operation (nas/operations.py PRIMITIVES) or one of FIXED_PARTS
    c_in: int
    c_out: int
    height: int
    width: int
    stride: int = 1
    dilation: int = 1

    def __post_init__(self) -> None:
        if self.op not in PRIMITIVES and self.op not in FIXED_PARTS:
            raise LatencyError(f"unknown operation {self.op!r} (valid: {', '.join(PRIMITIVES + FIXED_PARTS)})")

    @property
    def key(self) -> str:
        """A readable unique name, e.g. ``sep_conv_3x3 c36->36 28x28 s1 d1``."""
        return f"{self.op} c{self.c_in}->{self.c_out} {self.height}x{self.width} s{self.stride} d{self.dilation}"

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "") -> "OpShape":
        names = [f.name for f in dataclasses.fields(cls)]
        if not isinstance(data, dict) or not set(data) <= set(names) or "op" not in data:
            raise LatencyError(f"{source}: an entry needs the keys {names}, got {data!r}")
        return cls(**data)


@dataclass(frozen=True)
class NetworkSpec:
    """The final network a table is made for: everything that sets the shapes it runs, none of the genotype."""

    variant: str
    layers: int
    init_channels: int
    height: int
    width: int
    stem: str = "imagenet"
    cbam: bool = True
    cbam_reduction: int = 16
    dilation: int = 2
    num_buckets: int = 10
    input_norm: str = "none"
    steps: int = 4  # intermediate nodes per cell
    multiplier: int = 4  # nodes each cell concatenates

    def __post_init__(self) -> None:
        problem = check_stem(self.stem)
        if problem:
            raise LatencyError(f"network spec: {problem}")
        m = input_multiple(self.stem)
        if self.height % m or self.width % m or self.height < m or self.width < m:
            raise LatencyError(f"network spec: input {self.height}x{self.width} (need multiples of {m})")
        if self.layers < 3 or self.init_channels < 2 or not 1 <= self.multiplier <= self.steps:
            raise LatencyError(
                f"network spec: layers={self.layers}, init_channels={self.init_channels}, "
                f"{self.multiplier} of {self.steps} nodes concatenated is no network"
            )

    @classmethod
    def of(cls, variant: str, config: Any, size: tuple[int, int]) -> "NetworkSpec":
        """The spec of a model ``config`` (an ``AestheticNetConfig``) of ``variant`` run at ``size`` (H, W)."""
        g = config.genotype
        if len(g.normal_concat) != len(g.reduce_concat):
            raise LatencyError(
                f"the genotype concatenates {len(g.normal_concat)} nodes in normal cells and "
                f"{len(g.reduce_concat)} in reduction cells; a latency table needs one cell plan"
            )
        return cls(
            variant,
            config.layers,
            config.init_channels,
            size[0],
            size[1],
            config.stem,
            config.cbam,
            config.cbam_reduction,
            config.dilation,
            config.num_buckets,
            config.input_norm,
            g.steps,
            len(g.normal_concat),
        )

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "") -> "NetworkSpec":
        names = {f.name for f in dataclasses.fields(cls)}
        if not isinstance(data, dict) or set(data) - names:
            raise LatencyError(f"{source}: the network needs the keys {sorted(names)}, got {data!r}")
        return cls(**data)

    def differences(self, other: "NetworkSpec") -> list[str]:
        """``field: mine, theirs`` for every field that differs."""
        return [
            f"{f.name}: {getattr(self, f.name)}, not {getattr(other, f.name)}"
            for f in dataclasses.fields(self)
            if getattr(self, f.name) != getattr(other, f.name)
        ]

    def describe(self) -> str:
        cbam = "on" if self.cbam else "off"
        return (
            f"{self.variant}, {self.layers} cells, C={self.init_channels}, {self.stem} stem, CBAM {cbam}, "
            f"dilation {self.dilation}, {self.height}x{self.width}"
        )


def stage_of(index: int, reductions: tuple[int, int]) -> str:
    """The stage name of cell ``index``, as ``aestheticnet info`` groups cells."""
    r1, r2 = reductions
    if index in reductions:
        return "reduction1" if index == r1 else "reduction2"
    return "stage1" if index < r1 else "stage2" if index < r2 else "stage3"


@dataclass(frozen=True)
class CellPlan:
    """One cell of the final network: where it runs and its genotype-independent parts."""

    index: int
    stage: str
    reduction: bool
    c: int  # channels of each node
    height: int  # of the cell's preprocessed inputs
    width: int
    dilation: int  # of its sep convs
    preprocess: tuple[OpShape, OpShape]
    concat: OpShape

    def stride(self, source: int) -> int:
        """The stride of the edges leaving ``source`` (0, 1: the cell inputs; 2+: earlier nodes)."""
        return 2 if self.reduction and source < 2 else 1

    def state_size(self, source: int) -> tuple[int, int]:
        """Height and width of state ``source``: a reduction cell's nodes are half its inputs' size."""
        return (self.height, self.width) if source < 2 or not self.reduction else (self.height // 2, self.width // 2)

    def edge_op(self, op: str, source: int) -> OpShape | None:
        """What ``op`` on an edge from ``source`` (0, 1: the cell inputs; 2+: earlier nodes) runs, None: nothing."""
        stride = self.stride(source)
        if op == "none" or (op == "skip_connect" and stride == 1):
            return None
        h, w = self.state_size(source)
        dilation = self.dilation if op.startswith("sep_conv_") else _DIL_CONV_DILATION if op.startswith("dil_") else 1
        return OpShape(op, self.c, self.c, h, w, stride, dilation)

    def relu_first(self, op: str, source: int) -> bool:
        """Whether ``op`` on an edge from ``source`` starts with a ReLU of its input."""
        return op in _RELU_FIRST or (op == "skip_connect" and self.stride(source) == 2)

    def relu(self, source: int) -> OpShape:
        """A standalone ReLU on state ``source``."""
        return OpShape("relu", self.c, self.c, *self.state_size(source))

    def fixed(self) -> list[OpShape]:
        """The parts the cell runs whatever its genotype: its preprocessing and its concatenation."""
        return [*self.preprocess, self.concat]


@dataclass(frozen=True)
class NetworkPlan:
    spec: NetworkSpec
    stem: OpShape
    cells: tuple[CellPlan, ...]
    cbam: OpShape | None
    head: OpShape

    def edges(self) -> list[tuple[int, int]]:
        """(node, source) of every edge, in edge-index order (``nas.latency.edge_index``)."""
        return [(node, source) for node in range(self.spec.steps) for source in range(node + 2)]

    def fixed(self) -> list[OpShape]:
        """Every genotype-independent part the network runs, once per time it runs it."""
        tail = [self.cbam] if self.cbam is not None else []
        return [self.stem, *(p for cell in self.cells for p in cell.fixed()), *tail, self.head]

    def entries(self) -> tuple[OpShape, ...]:
        """Every distinct part and candidate operation at every shape the network can run it at, sorted."""
        found = set(self.fixed())
        for cell in self.cells:
            for _node, source in self.edges():
                found.update(s for op in PRIMITIVES if (s := cell.edge_op(op, source)) is not None)
            found.update(cell.relu(source) for source in range(self.spec.steps + 2))
        return tuple(sorted(found))

    def relus(self, cell: CellPlan, edges: Sequence[tuple[str, int]]) -> tuple[list[OpShape], list[OpShape]]:
        """For a cell built from ``edges`` ((op, source) pairs): the standalone ReLUs it runs, and those its edges'
        entries hold already (see the module docstring)."""
        held = [cell.relu(source) for op, source in edges if cell.relu_first(op, source) and cell.stride(source) == 1]
        readers: dict[int, list[bool]] = {}
        for op, source in edges:
            if op != "none":
                readers.setdefault(source, []).append(cell.relu_first(op, source))
        folded = cell.preprocess[0].op == "relu_conv_bn", cell.preprocess[1].op == "relu_conv_bn"
        run = [
            cell.relu(source)
            for source, relu_first in sorted(readers.items())
            if any(relu_first) and (source >= 2 or not all(relu_first) or not folded[source])
        ]
        return run, held


def plan_network(spec: NetworkSpec) -> NetworkPlan:
    """The parts of the final network of ``spec`` and the shapes it runs them at."""
    stem = build_stem(spec.stem, 3, spec.init_channels)  # the input channels do not change the channel plan
    slots = cell_slots(stem, spec.layers, lambda _reduction: spec.multiplier)
    h1, w1 = spec.height // STEM_STRIDES[spec.stem], spec.width // STEM_STRIDES[spec.stem]
    h0, w0 = (2 * h1, 2 * w1) if stem.reduction_prev else (h1, w1)
    reductions = reduction_layers(spec.layers)
    cells = []
    for slot in slots:
        c = slot.c
        if slot.reduction_prev:
            pre0 = OpShape("factorized_reduce", slot.c_prev_prev, c, h0, w0, stride=2)
        else:
            pre0 = OpShape("relu_conv_bn", slot.c_prev_prev, c, h0, w0)
        pre1 = OpShape("relu_conv_bn", slot.c_prev, c, h1, w1)
        ho, wo = (h1 // 2, w1 // 2) if slot.reduction else (h1, w1)
        cells.append(
            CellPlan(
                slot.index,
                stage_of(slot.index, reductions),
                slot.reduction,
                c,
                h1,
                w1,
                cell_dilation(slot.index, slot.reduction, spec.layers, spec.dilation),
                (pre0, pre1),
                OpShape("concat", c, slot.c_out, ho, wo),
            )
        )
        h0, w0, h1, w1 = h1, w1, ho, wo
    c_last = slots[-1].c_out
    stem_part = OpShape("stem", 3, stem.c_prev, spec.height, spec.width, stride=STEM_STRIDES[spec.stem])
    cbam = OpShape("cbam", c_last, c_last, h1, w1) if spec.cbam else None
    head = OpShape("head", c_last, spec.num_buckets, h1, w1)
    return NetworkPlan(spec, stem_part, tuple(cells), cbam, head)
