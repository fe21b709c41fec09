"""The small models a latency table is timed with: one part of the final network each, and its baseline.

Every probe takes the network's own input (a ``1x3xHxW`` image, so the device runner and the exporters treat it
like any exported network) and makes the part's input from it with a :class:`Feed`: average pooling down to the
part's resolution, then 1x1 convolutions to its channels. Copies of the part run on that tensor (more copies, more
difference to the baseline for the same noise) and a one-pixel sink hands out the result. The baseline is the
same model without the part; the part's cost is the difference of the two latencies over the number of copies,
which removes what every probe pays besides the part (the runtime's call, the input copy, the feed, the sink).

Each part is timed in the surroundings it has in the network, because runtimes fuse across that boundary (ONNX
Runtime folds a ReLU into the convolution before it when nothing else reads the convolution, folds a sum into the
convolution that produces one of its terms, and keeps convolution outputs in a blocked layout that a concatenation
of channel counts off its block has to leave):

* an edge's operation reads a tensor that other edges read too and its output is summed into a node: copies of a
  stride-1 operation form a residual chain, ``x = op(x) + x``; copies of a stride-2 one read the feed side by side
  and are summed. Either way the entry holds the edge's share of its node's sum;
* preprocessing and CBAM read a cell's output, a concatenation of ``multiplier`` nodes: their feed is that many
  convolutions concatenated (copies of a preprocessing block read it side by side and are summed);
* the concatenation is timed as such a feed against one convolution to all of its channels;
* the stem reads the image itself (negated, so that its baseline is a model with one node);
* a standalone ReLU (``relu``) reads a cell state that something else reads too: its copies form a chain
  ``x = relu(x) + f`` on the feed ``f``, and its baseline is the same chain without the ReLUs, ``x = x + f``. (A
  plain chain of ReLUs is no probe: exporters fold ``relu(relu(x))`` into one ReLU, and runtimes fold a ReLU that
  alone reads a convolution's output into the convolution.)

Parts are built from the same constructors as the network (``nas.operations``, ``nas.stem``, ``models.cbam``).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from aestheticnet.models.cbam import CBAM
from aestheticnet.models.input_norm import INPUT_NORMS, make_input_norm
from aestheticnet.nas.network_plan import NetworkSpec, OpShape
from aestheticnet.nas.operations import PRIMITIVES, FactorizedReduce, ReLUConvBN, make_op
from aestheticnet.nas.stem import build_stem, run_stem

__all__ = ["PROBES_VERSION", "CopyRule", "Feed", "baseline_feed", "copies_of", "feed_for", "probe", "probe_body"]

# Changes whenever a probe's structure changes: kept probe files carry it in their names, tables in their method.
PROBES_VERSION = 6

_RUN_ONCE = ("stem", "concat", "cbam", "head")
# A ReLU takes a few microseconds: many copies, the same number in every table (its baseline holds as many sums).
_RELU_COPIES = 32
_READS_CELL_OUTPUT = ("relu_conv_bn", "factorized_reduce", "cbam", "concat")


@dataclass(frozen=True, order=True)
class Feed:
    """A probe's input: the image average-pooled by ``scale``, then ``pieces`` 1x1 convolutions concatenated to
    ``channels`` (none when the part reads the image itself)."""

    scale: int
    channels: int
    pieces: int = 1
    sums: int = 0  # then the feed ``f`` summed into itself: ``x = x + f``, ``sums`` times (the ReLU's baseline)

    @property
    def name(self) -> str:
        return f"feed-x{self.scale}-c{self.channels}-p{self.pieces}" + (f"-s{self.sums}" if self.sums else "")


class _Sums(nn.Module):
    """``x = relu(x) + f`` (or ``x = x + f`` without the ReLU), ``copies`` times, on ``f``: the ReLU's probe body
    and its baseline's."""

    def __init__(self, copies: int, relu: bool):
        super().__init__()
        self.copies, self.relu = copies, relu

    def forward(self, f: torch.Tensor) -> torch.Tensor:
        x = f
        for _ in range(self.copies):
            x = (torch.relu(x) if self.relu else x) + f
        return x


class _FeedModule(nn.Module):
    def __init__(self, feed: Feed):
        super().__init__()
        self.scale = feed.scale
        image = feed.scale == 1 and feed.channels == 3 and feed.pieces == 1
        width = feed.channels // feed.pieces
        self.convs = nn.ModuleList([] if image else [nn.Conv2d(3, width, 1) for _ in range(feed.pieces)])
        self.sums = _Sums(feed.sums, relu=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.scale > 1:
            x = F.avg_pool2d(x, self.scale)
        if not self.convs:
            return -x  # a model needs one node; the probe and its baseline both pay for it
        outs = [conv(x) for conv in self.convs]
        return self.sums(outs[0] if len(outs) == 1 else torch.cat(outs, dim=1))


class _Stem(nn.Module):
    def __init__(self, spec: NetworkSpec):
        super().__init__()
        self.input_norm = make_input_norm(spec.input_norm)
        layout = build_stem(spec.stem, INPUT_NORMS[spec.input_norm], spec.init_channels)
        self.stem0, self.stem1 = layout.stem0, layout.stem1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return run_stem(self.stem0, self.stem1, self.input_norm(x))[1]


class _Head(nn.Module):
    """The network's head: global average pooling, linear layer, softmax (dropout is off at inference)."""

    def __init__(self, c: int, buckets: int):
        super().__init__()
        self.head = nn.Linear(c, buckets)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.head(x.mean(dim=(2, 3))), dim=1)


class _Copies(nn.Module):
    def __init__(self, parts: list[nn.Module]):
        super().__init__()
        self.parts = nn.ModuleList(parts)


class _Residual(_Copies):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for part in self.parts:
            x = part(x) + x
        return x


class _ParallelSum(_Copies):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.parts[0](x)
        for part in self.parts[1:]:
            out = out + part(x)
        return out


class _Probe(nn.Module):
    """``feed -> body -> sink``. The sink keeps one pixel per channel of a feature map (a 1x1 max pool with the
    map's size as stride), so that handing out the result costs every probe the same: a whole map as the output
    would cost its copy (and in ONNX Runtime a layout change) in proportion to its size."""

    def __init__(self, feed: Feed, body: nn.Module | None, out_size: tuple[int, int] | None):
        super().__init__()
        self.feed = _FeedModule(feed)
        self.body = body if body is not None else nn.Identity()
        self.out_size = out_size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.body(self.feed(x))
        return y if self.out_size is None else F.max_pool2d(y, 1, stride=self.out_size)


def _scale(shape: OpShape, spec: NetworkSpec) -> int:
    scale = spec.height // shape.height
    if scale * shape.height != spec.height or scale * shape.width != spec.width:
        raise ValueError(f"{shape.key}: its input is no integer fraction of the {spec.height}x{spec.width} input")
    return scale


def feed_for(shape: OpShape, spec: NetworkSpec) -> Feed:
    """The input the part reads in its probe (see the module docstring)."""
    if shape.op == "stem":
        return Feed(1, 3)
    scale = _scale(shape, spec)
    cell_output = shape.op in _READS_CELL_OUTPUT
    channels = shape.c_out if shape.op == "concat" else shape.c_in
    pieces = spec.multiplier if cell_output and channels % spec.multiplier == 0 else 1
    return Feed(scale, channels, pieces)


def baseline_feed(shape: OpShape, spec: NetworkSpec) -> Feed:
    """The model whose latency is subtracted from the probe's: its feed alone (one convolution for a concat)."""
    feed = feed_for(shape, spec)
    if shape.op == "relu":
        return Feed(feed.scale, feed.channels, sums=_RELU_COPIES)
    return Feed(feed.scale, feed.channels) if shape.op == "concat" else feed


def probe_body(shape: OpShape, spec: NetworkSpec) -> nn.Module | None:
    """The part itself, built as the network builds it; None for the concatenation (its feed is the part)."""
    op = shape.op
    if op == "stem":
        return _Stem(spec)
    if op == "relu_conv_bn":
        return ReLUConvBN(shape.c_in, shape.c_out, 1, 1, 0)
    if op == "factorized_reduce":
        return FactorizedReduce(shape.c_in, shape.c_out)
    if op == "concat":
        return None
    if op == "cbam":
        return CBAM(shape.c_in, spec.cbam_reduction)
    if op == "head":
        return _Head(shape.c_in, shape.c_out)
    if op == "relu":
        return nn.ReLU()
    if op in PRIMITIVES and op != "none":
        return make_op(op, shape.c_in, shape.stride, True, shape.dilation if op.startswith("sep_conv_") else 1)
    raise ValueError(f"{shape.key}: nothing to time")


@dataclass(frozen=True)
class CopyRule:
    """How many copies of a part its probe runs: at least ``copies`` (the difference to the baseline grows with
    them, its noise does not), and enough that their weights add up to ``weights_bytes``, up to ``max_copies``.
    The network's weights (megabytes) come from beyond the L2 cache at every run; a probe with less weight data
    than the L2 cache would run each operation from it, and faster than the network does (measured: 7-16% for the
    separable convolutions of AestheticNet* with 8 copies against 4 MiB worth of them)."""

    copies: int = 8
    weights_bytes: int = 4 << 20  # more than the L2 cache of the CPUs this targets (1-2 MiB per core)
    max_copies: int = 64


def copies_of(shape: OpShape, spec: NetworkSpec, rule: CopyRule = CopyRule()) -> int:
    """The copies of ``shape``'s part in its probe (:class:`CopyRule`), except

    one for the parts a network runs once where it has them (stem, concatenation, CBAM, head), and for pools of
    stride 2: copies side by side would read the same input, and a runtime computes identical parameter-free
    operations once (common subexpressions). Copies of a preprocessing block share the ReLU in front of them for the
    same reason; in the network two of them do (the next two cells read a cell's output). Measured on ONNX Runtime,
    the cold weights of many copies outweigh the shared ReLU: 2 copies read 3-18% faster per copy than 13-64.
    """
    if shape.op in _RUN_ONCE or (shape.op.endswith("_pool_3x3") and shape.stride != 1):
        return 1
    if shape.op == "relu":
        return _RELU_COPIES
    weights = 4 * sum(p.numel() for p in probe_body(shape, spec).parameters())  # fp32
    enough = -(-rule.weights_bytes // weights) if weights else 0
    return max(rule.copies, min(rule.max_copies, enough))


def probe(shape: OpShape | None, spec: NetworkSpec, feed: Feed | None = None, copies: int = 1) -> nn.Module:
    """The eval-mode probe of ``copies`` copies of ``shape``'s part (see the module docstring; :func:`copies_of`
    says how many), or (``shape`` None) the baseline model of ``feed``."""
    torch.manual_seed(0)
    if shape is None:
        if feed is None:
            raise ValueError("a baseline needs its feed")
        return _Probe(feed, None, (spec.height // feed.scale, spec.width // feed.scale)).eval()
    out_size = None if shape.op == "head" else (shape.height // shape.stride, shape.width // shape.stride)
    if copies != 1 and shape.op in _RUN_ONCE:
        raise ValueError(f"{shape.key}: a network runs it once where it has it; its probe has one copy")
    if shape.op == "relu":
        if copies != _RELU_COPIES:
            raise ValueError(f"{shape.key}: its baseline sums the feed {_RELU_COPIES} times; it needs as many copies")
        return _Probe(feed_for(shape, spec), _Sums(copies, relu=True), out_size).eval()
    if copies == 1:
        return _Probe(feed_for(shape, spec), probe_body(shape, spec), out_size).eval()
    parts = [probe_body(shape, spec) for _ in range(copies)]
    chain = shape.stride == 1 and shape.c_in == shape.c_out and shape.op not in _READS_CELL_OUTPUT
    return _Probe(feed_for(shape, spec), _Residual(parts) if chain else _ParallelSum(parts), out_size).eval()
