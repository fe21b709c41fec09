"""A ``torch.export`` program -> the bytes of an ExecuTorch program with every supported op in XNNPACK.

The lowering is Python passes over the graph, and nearly every pass re-propagates symbolic shapes through every
node (fake tensors whose sizes are expressions in batch, H and W), so its time is (passes x nodes), and dynamic H/W
make each node 2-3 times as dear as static shapes. On the default network (1,500 nodes) three choices cut the CPU
time of the lowering about in half (``benchmarks/export_time.py`` times whole exports), none of which changes what
the program computes (the tests compare the outputs of both lowerings bit for bit):

* ``to_edge`` + ``to_backend`` instead of ``to_edge_transform_and_lower``: the latter decomposes the program three
  times (functionalise, decompose around the ops the partitioner wants whole, decompose again, keeping those of
  them that pass the partitioner's checks). ``to_edge`` decomposes once, told to keep the same ops whole
  (:func:`ops_kept_whole`: the partitioner's list and checks, applied to the program beforehand), so the same ops
  reach XNNPACK (decomposed, ``max_pool2d`` would become ``max_pool2d_with_indices``, which XNNPACK does not
  take). XNNPACK's partitioner logs that this workflow is deprecated; with executorch pinned, the tests hold both
  workflows to the same operators outside XNNPACK and the same outputs, and the log line is kept out of the
  export's output.
* ``EdgeCompileConfig(_check_ir_validity=False)``: the edge-dialect check re-runs every node with fake tensors
  after passes to compare dtypes; the parity check after every export compares the numbers themselves.
* XNNPACK preprocessing runs its whole pass list on every delegated partition; the passes that rewrite ops our
  graph does not contain (:data:`PASS_TRIGGERS`) are left out for that graph, decided per export from its ops.
"""

from __future__ import annotations

import contextlib
import logging
import warnings
from collections.abc import Iterator
from typing import Any

__all__ = [
    "PASS_TRIGGERS",
    "lower_program",
    "lower_to_executorch",
    "ops_kept_whole",
    "passes_to_skip",
    "planned_memory_bytes",
]

# XNNPACK pass -> what in an op's name makes it rewrite anything (read from the passes of executorch 1.5.1: each
# one matches only these ops or patterns built on them). Conv1dUnsqueezePass rewrites 1-D convolutions only, so
# it is kept when a convolution has a 3-D output (:func:`passes_to_skip`).
PASS_TRIGGERS: dict[str, tuple[str, ...]] = {
    "ConvertToUpsampleBilinear2d": ("upsample", "_unsafe_index", "aten.index."),  # the op or its decomposition
    "ConvertToSDPAPass": ("bmm",),  # the attention patterns it matches multiply with bmm
    "FuseBatchNormPass": ("batch_norm",),
    "DecomposeBatchNorm": ("batch_norm",),
    "PReLUReshapePass": ("prelu",),
    "InsertPadQDQPass": ("constant_pad_nd",),
    "PropagateCustomMetaPass": ("quantize_per", "dequantize_per"),
    "Conv1dUnsqueezePass": ("convolution",),
}


def _op_name(target: Any) -> str:
    return getattr(target, "__name__", None) or str(target)


def passes_to_skip(graph) -> frozenset[str]:
    """The XNNPACK passes of :data:`PASS_TRIGGERS` that cannot change ``graph`` (an edge-dialect FX graph)."""
    names = [_op_name(n.target) for n in graph.nodes if n.op == "call_function"]
    skip = {p for p, triggers in PASS_TRIGGERS.items() if not any(t in name for name in names for t in triggers)}
    convolutions = [n for n in graph.nodes if n.op == "call_function" and "convolution" in _op_name(n.target)]
    if all(getattr(n.meta.get("val"), "ndim", 0) == 4 for n in convolutions):
        skip.add("Conv1dUnsqueezePass")  # 2-D convolutions only
    return frozenset(skip)


@contextlib.contextmanager
def _xnnpack_default_passes_without(skipped: frozenset[str]) -> Iterator[None]:
    """XNNPACK's default pass list less ``skipped`` while the block runs (the list is built in the pass manager's
    ``__init__``; a caller that names its own passes is left alone)."""
    from executorch.backends.xnnpack import _passes

    manager = _passes.XNNPACKPassManager
    original = manager.__init__

    def init(self, exported_program, passes=None):
        original(self, exported_program, passes)
        if not passes:
            self.passes = [p for p in self.passes if p.__name__ not in skipped]

    manager.__init__ = init
    try:
        yield
    finally:
        manager.__init__ = original


def ops_kept_whole(program, partitioner) -> list:
    """The ops ``partitioner`` asks to keep undecomposed that every node of ``program`` using them passes the
    partitioner's check for (what ``to_edge_transform_and_lower`` keeps, decided on the program as exported)."""
    ops, check = partitioner.ops_to_not_decompose(program)
    keep = []
    for op in ops:
        nodes = [n for n in program.graph.nodes if n.op == "call_function" and n.target == op]
        if nodes and all(check is None or check(n) for n in nodes):
            keep.append(op)
    return keep


class _DropWorkflowNotice(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return "to_edge() + to_backend()" not in record.getMessage()


def lower_program(program, constant_methods: dict[str, Any] | None = None, *, trim_passes: bool = True):
    """The ExecuTorch program (``ExecutorchProgramManager``) of ``program`` with XNNPACK delegation (module
    docstring). ``trim_passes=False`` runs XNNPACK's full pass list."""
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
    from executorch.exir import EdgeCompileConfig, to_edge

    partitioner = XnnpackPartitioner()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        config = EdgeCompileConfig(_check_ir_validity=False, preserve_ops=ops_kept_whole(program, partitioner))
        edge = to_edge(program, constant_methods=constant_methods, compile_config=config)
        skipped = passes_to_skip(edge.exported_program().graph) if trim_passes else frozenset()
        notice = _DropWorkflowNotice()
        logger = logging.getLogger("executorch.backends.xnnpack.partition.xnnpack_partitioner")
        logger.addFilter(notice)
        try:
            with _xnnpack_default_passes_without(skipped):
                lowered = edge.to_backend(partitioner)
        finally:
            logger.removeFilter(notice)
        return lowered.to_executorch()


def lower_to_executorch(program, constant_methods: dict[str, Any] | None = None, *, trim_passes: bool = True) -> bytes:
    """The ``.pte`` bytes of :func:`lower_program`."""
    return lower_program(program, constant_methods, trim_passes=trim_passes).buffer


def planned_memory_bytes(manager, method: str = "forward") -> int:
    """The bytes ExecuTorch allocates for ``method``'s planned tensors when it loads (input, output, and the tensors
    between delegated parts, laid out for the upper bounds): the sum of its execution plan's memory buffers. Buffer 0
    is the constant segment's placeholder, which the runtime ignores (``executorch.exir.schema.ExecutionPlan``);
    the XNNPACK delegate's own workspace is allocated at run time and is not counted."""
    (plan,) = [p for p in manager.executorch_program.execution_plan if p.name == method]
    return int(sum(plan.non_const_buffer_sizes[1:]))
