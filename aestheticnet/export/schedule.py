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

import dataclasses
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aestheticnet.artifacts import Format
from aestheticnet.artifacts.files import log_tail
from aestheticnet.export.errors import ExportError
from aestheticnet.export.plan import ExportPlan

__all__ = ["Job", "Placement", "place"]


@dataclass(frozen=True)
class Placement:
    workers: int
    coreml_worker: bool  # CoreML traces and converts in its own process
    tflite_worker: bool  # TFLite converts in its own process while this one makes the ONNX variants
    trace_here: bool  # this process runs torch.export (ONNX, or CoreML without a worker)
    decompose_here: bool  # ... and decomposes it, so one program serves ONNX and CoreML


def place(plan: ExportPlan, jobs: int | None) -> Placement:
    """Which process runs what for ``plan`` with ``jobs`` processes (default: 2 when there are 2 CPUs)."""
    workers = jobs if jobs is not None else min(2, os.cpu_count() or 1)
    coreml, tflite = plan.precisions(Format.COREML), plan.precisions(Format.TFLITE)
    tensor_input = plan.options.coreml_input == "tensor"
    coreml_worker = bool(coreml) and plan.needs_onnx and workers >= 2
    trace_here = (plan.needs_onnx or (bool(coreml) and tensor_input)) and plan.options.exporter != "torchscript"
    return Placement(
        workers=workers,
        coreml_worker=coreml_worker,
        tflite_worker=bool(tflite) and workers >= 2 and len(plan.pairs) > len(tflite),
        trace_here=trace_here,
        decompose_here=trace_here and bool(coreml) and not coreml_worker and tensor_input,
    )


def _encode(value: Any) -> Any:
    """Dataclasses (``DynamicSpec``) as dicts and paths as strings; the worker function rebuilds what it needs."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    raise TypeError(f"{type(value).__name__} cannot go into an export job file")


class Job:
    """A function call running in a child process; :meth:`result` waits for it and returns its value."""

    def __init__(self, function: str, args: tuple, workdir: str | os.PathLike, name: str):
        self._error = ExportError
        workdir = Path(workdir)
        self.job, self.out, self.log = (
            workdir / f"{name}.job.json",
            workdir / f"{name}.result.json",
            workdir / f"{name}.log",
        )
        self.job.write_text(json.dumps({"function": function, "args": list(args)}, default=_encode))
        with open(self.log, "wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "aestheticnet.export.worker", str(self.job), str(self.out), str(os.getpid())],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )

    def result(self) -> Any:
        code = self.process.wait()
        if self.out.is_file():
            status, value = json.loads(self.out.read_text())
            if status == "ok":
                return value
            raise self._error(value)
        raise self._error(f"worker process exited with code {code}:\n{log_tail(self.log)}")

    def cancel(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
