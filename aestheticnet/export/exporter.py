"""What a format is to the export: one :class:`Exporter` object per format, in ``export/<format>/exporter.py``.

An exporter holds its :class:`~aestheticnet.artifacts.FormatSpec`, says what it needs from the shared steps (the
fp32 ONNX file, calibration images, the shared ``torch.export`` program), builds its manifests, makes its files
(here, or in a worker process it starts) and names the :class:`~aestheticnet.runtime.Backend` that runs them.
:class:`~aestheticnet.export.steps.ExportRun` drives every exporter through the same two calls, ``start`` and
``finish``; verify, bench, ``runtime.load`` and the pipeline ask the registry (:mod:`aestheticnet.export.registry`)
instead of knowing formats by name.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aestheticnet.artifacts import Format, FormatSpec, Precision
from aestheticnet.export.jobs import Job
from aestheticnet.export.report import Recorder
from aestheticnet.runtime.backends import Backend, CoreMLRunner

__all__ = ["ExportContext", "Exporter", "Started"]


@dataclass
class ExportContext:
    """What the shared steps of one export made, handed to every exporter."""

    # The ExportPlan and its Manifests (export/plan.py, which asks this module's registry what formats need).
    plan: Any
    manifests: Any
    in_workers: frozenset[Format]  # the formats that convert in a worker process
    recorder: Recorder
    prepared: Any  # the exact export copy of the network (torch.nn.Module)
    scratch: Path  # inside the output folder: workers write here, this process renames into place
    calibration: list = field(default_factory=list)  # NCHW float32 images for int8
    calibration_info: dict | None = None
    traced: Any = None  # the shared torch.export program, when one was made here
    onnx_fp32: Path | None = None  # the fp32 ONNX file, when an exporter needs it
    onnx_result: Any = None  # what the ONNX export reported (exporter used, seconds)
    jobs: list[Job] = field(default_factory=list)  # worker processes to cancel on an error

    def say(self, message: str) -> None:
        self.recorder.say(message)

    def calibration_for(self, precision: Precision) -> dict | None:
        return self.calibration_info if precision == Precision.INT8 else None


@dataclass
class Started:
    """What an exporter's ``start`` began: a worker job (or None: it converts in ``finish``) and its state."""

    job: Job | None
    since: float
    state: dict[str, Any] = field(default_factory=dict)


class Exporter:
    """Base of the per-format exporters; a subclass sets ``spec`` and ``backend`` and implements ``finish``."""

    spec: FormatSpec
    backend: type[Backend]
    from_onnx: bool = False  # converts from the fp32 ONNX file (which the shared steps then make)
    calibrated: frozenset[Precision] = frozenset()  # precisions calibrated on images (--data needed)
    # The runner backend that times this format on a device (bench/runner.py's --backend); None: only this
    # package runs it, so bench measures it locally through runtime.load and never on a remote board.
    bench_backend: str | None = None
    bench_refusal: str | None = None  # why bench does not time this format at all (None: it does)

    @property
    def format(self):
        return self.spec.format

    def uses_trace(self, plan) -> bool:
        """Whether this process's shared ``torch.export`` program serves this format."""
        return False

    def wants_decomposed_trace(self, plan) -> bool:
        """Whether the shared program must be decomposed to the core ATen set for this format."""
        return False

    def in_worker(self, plan, workers: int) -> bool:
        """Whether this format converts in its own process when ``workers`` processes are allowed."""
        return False

    def starts_before_trace(self) -> bool:
        """A worker that traces on its own starts first, so it runs while this process traces."""
        return False

    def start(self, ctx: ExportContext, precisions: list[Precision]) -> Started | None:
        """Begin the conversion (e.g. start a worker); None: all the work happens in :meth:`finish`."""
        return None

    def finish(self, ctx: ExportContext, precisions: list[Precision], started: Started | None) -> None:
        """Make (or collect) every file of ``precisions`` and record each artifact or failure."""
        raise NotImplementedError

    def open(self, path: Path, threads: int | None, coreml: CoreMLRunner) -> Backend:
        """The backend that runs an artifact of this format."""
        return self.backend(path, threads)

    def check_artifact(self, artifact: Path, manifest: dict | None) -> tuple[dict | None, list[dict[str, Any]]]:
        """Format-specific checks for verify: (a summary for the report, problems with check/expected/got)."""
        return None, []
