"""What an export made and how long it took: per-artifact results, the ``<stem>.export_report.json``, failures.

A failed format leaves no file behind and does not stop the others; :class:`ExportFailed` lists every failure at
the end of the call.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from aestheticnet.artifacts import Format, Precision
from aestheticnet.artifacts.files import publish
from aestheticnet.artifacts.manifest import write_sidecar
from aestheticnet.export.errors import ExportError

__all__ = ["ArtifactResult", "ExportFailed", "ExportReport", "Recorder"]


@dataclass
class ArtifactResult:
    format: Format
    precision: Precision
    path: str
    manifest: str
    seconds: dict[str, float]

    @property
    def total(self) -> float:
        return round(sum(self.seconds.values()), 3)


@dataclass
class ExportReport:
    checkpoint: str
    out_dir: str
    artifacts: list[ArtifactResult] = field(default_factory=list)
    shared_seconds: dict[str, float] = field(default_factory=dict)
    format_seconds: dict[str, float] = field(default_factory=dict)
    wall_seconds: float = 0.0
    load_average: list[float] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failures: dict[str, str] = field(default_factory=dict)
    # CPU seconds per process (main, tflite worker, coreml worker) and of the main process up to ONNX fp32: on a
    # loaded machine these say more than the wall time about what idle cores would take.
    cpu_seconds: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        for a, obj in zip(d["artifacts"], self.artifacts):
            a["format"], a["precision"] = obj.format.value, obj.precision.value
            a["total_seconds"] = obj.total
        return d


class ExportFailed(ExportError):
    """Some artifacts could not be produced; ``failures`` maps ``format/precision`` to the reason."""

    def __init__(self, failures: dict[str, str], report: ExportReport):
        self.failures, self.report = failures, report
        lines = "\n".join(f"  {k}: {v}" for k, v in failures.items())
        super().__init__(f"{len(failures)} export(s) failed:\n{lines}")


class Recorder:
    """Writes each finished artifact's sidecar manifest and adds it, or a failure, to the report."""

    def __init__(self, report: ExportReport, say: Callable[[str], None]):
        self.report, self.say = report, say
        self.t_start, self.cpu_start = time.perf_counter(), time.process_time()

    def shared(self, step: str, since: float) -> None:
        """Seconds of a step shared by several artifacts, from ``since`` (a ``time.perf_counter()``)."""
        self.report.shared_seconds[step] = round(time.perf_counter() - since, 3)

    def artifact(self, fmt: Format, precision: Precision, path: Path, seconds: dict, manifest: dict) -> None:
        side = write_sidecar(path, manifest)
        publish(path, side)
        result = ArtifactResult(fmt, precision, str(path), str(side), seconds)
        self.report.artifacts.append(result)
        key = fmt.value
        self.report.format_seconds[key] = round(self.report.format_seconds.get(key, 0.0) + result.total, 3)
        self.say(f"{fmt.value:<6} {precision.value:<12} {result.total:7.1f}s  {path}")

    def failure(self, key: str, exc: BaseException | str) -> None:
        text = exc if isinstance(exc, str) else f"{type(exc).__name__}: {exc}"
        self.report.failures[key] = text
        self.say(f"FAILED {key}: {text.splitlines()[0][:300]}")

    def finish(self, out: Path, stem: str) -> ExportReport:
        """Write ``<stem>.export_report.json``; raise :class:`ExportFailed` when anything failed."""
        from aestheticnet.io import atomic_write_json

        report = self.report
        report.wall_seconds = round(time.perf_counter() - self.t_start, 3)
        report.cpu_seconds["main"] = round(time.process_time() - self.cpu_start, 3)
        report.load_average = [round(v, 2) for v in os.getloadavg()] if hasattr(os, "getloadavg") else []
        out.mkdir(parents=True, exist_ok=True)
        path = out / f"{stem}.export_report.json"
        atomic_write_json(path, report.to_dict())
        publish(path)
        self.say(
            f"done in {report.wall_seconds:.1f}s (load average {report.load_average}); per format: "
            + ", ".join(f"{k} {v:.1f}s" for k, v in report.format_seconds.items())
            + "; CPU seconds: "
            + ", ".join(f"{k} {v:.1f}" for k, v in report.cpu_seconds.items())
        )
        if report.failures:
            raise ExportFailed(report.failures, report)
        return report
