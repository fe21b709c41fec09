"""Where each part of an export runs: this process, or a worker process per converter.

Most of the time goes into ``torch.export`` (and its decomposition) and the converters' front-ends, all single
threaded Python, so the work is spread over processes (``jobs``, default 2 on a 2-core machine):

* this process: load, prepare an exact export copy (:mod:`~aestheticnet.export.prepare`), ``torch.export`` once,
  ONNX fp32 (translated from the raw program: no decomposition needed), then the ONNX fp16/int8 variants;
* TFLite worker: starts as soon as the ONNX fp32 file exists (onnx2tf needs it; written to a scratch folder when
  ONNX itself is not asked for);
* CoreML worker: starts first, traces and decomposes on its own and converts every CoreML precision.

With ``jobs=1`` everything runs here and one decomposed trace serves both ONNX and CoreML.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from aestheticnet.artifacts import Format
from aestheticnet.export.options import OnnxExporter
from aestheticnet.export.plan import ExportPlan
from aestheticnet.export.registry import exporter_for

__all__ = ["Placement", "place"]


@dataclass(frozen=True)
class Placement:
    workers: int
    in_workers: frozenset[Format]  # formats that convert in their own process
    trace_here: bool  # this process runs torch.export (ONNX, or a format that uses the program here)
    decompose_here: bool  # ... and decomposes it, so one program serves ONNX and that format


def place(plan: ExportPlan, jobs: int | None) -> Placement:
    """Which process runs what for ``plan`` with ``jobs`` processes (default: 2 when there are 2 CPUs)."""
    workers = jobs if jobs is not None else min(2, os.cpu_count() or 1)
    in_workers = frozenset(f for f in plan.formats if exporter_for(f).in_worker(plan, workers))
    here = [exporter_for(f) for f in plan.formats if f not in in_workers]
    trace_here = (plan.needs_onnx or any(e.uses_trace(plan) for e in here)) and (
        plan.options.exporter != OnnxExporter.TORCHSCRIPT
    )
    decompose_here = trace_here and any(e.wants_decomposed_trace(plan) for e in here)
    return Placement(workers, in_workers, trace_here, decompose_here)
