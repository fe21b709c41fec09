"""``export_checkpoint``: one checkpoint -> ONNX, TFLite and CoreML artifacts with manifests and timings.

Three stages: :func:`~aestheticnet.export.plan.make_plan` decides what will be made (and refuses what cannot be),
:func:`~aestheticnet.export.schedule.place` decides which process makes it, and
:class:`~aestheticnet.export.steps.ExportRun` makes it while a :class:`~aestheticnet.export.report.Recorder`
writes every artifact's sidecar manifest and ``<stem>.export_report.json`` (per-format and per-step seconds, the
load average, any failures). A failed format leaves no file behind and does not stop the others; the call raises
:class:`~aestheticnet.export.report.ExportFailed` at the end listing what failed.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable

from aestheticnet.artifacts import Format, Precision
from aestheticnet.export.options import ExportOptions
from aestheticnet.export.report import ArtifactResult, ExportFailed, ExportReport

__all__ = ["ArtifactResult", "ExportFailed", "ExportOptions", "ExportReport", "export_checkpoint"]


def export_checkpoint(
    checkpoint: str | os.PathLike,
    formats: Iterable[Format] = (Format.ONNX,),
    precisions: Iterable[Precision] = (Precision.FP32,),
    out_dir: str | os.PathLike = ".",
    options: ExportOptions = ExportOptions(),  # noqa: B008 - frozen dataclass
    *,
    jobs: int | None = None,
    name: str | None = None,
    log: Callable[[str], None] | None = print,
) -> ExportReport:
    """Export ``checkpoint`` to every requested format x precision under ``out_dir``.

    ``formats`` and ``precisions`` are :class:`~aestheticnet.artifacts.Format` and
    :class:`~aestheticnet.artifacts.Precision` values; each format makes the precisions it offers and the others are
    reported as skipped. ``options``: calibration images (``data``; int8 needs them), the int8 recipe, CoreML and
    ONNX choices (:class:`~aestheticnet.export.options.ExportOptions`). ``jobs``: processes (default 2 when there
    are 2 CPUs). ``name``: the artifacts' file stem.
    """
    from aestheticnet.export.plan import make_plan
    from aestheticnet.export.report import Recorder
    from aestheticnet.export.schedule import place
    from aestheticnet.export.steps import ExportRun

    say = log or (lambda _m: None)
    plan = make_plan(checkpoint, formats, precisions, out_dir, options, name)
    recorder = Recorder(ExportReport(str(plan.checkpoint), str(plan.out), skipped=plan.skipped), say)
    for skipped in plan.skipped:
        say(f"skip {skipped}: not offered by that format")
    ExportRun(plan, place(plan, jobs), recorder).run()
    return recorder.finish(plan.out, plan.stem)
