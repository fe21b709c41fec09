"""The steps of one export, in the order :func:`~aestheticnet.export.api.export_checkpoint` runs them.

The shared steps come first (load, calibration images, the export copy, ``torch.export``, the fp32 ONNX file that
other formats convert from, calibration outliers); then every requested format's exporter (from the registry) is
driven through the same two calls: ``start`` (a worker that traces on its own starts before the trace), and
``finish``, first for the formats made in this process and then for those a worker made, so this process works
while the workers do. Each artifact is recorded (sidecar manifest, report entry) or its failure; a failed step
leaves no file and the steps that do not depend on it still run. Which process runs what is
:func:`~aestheticnet.export.schedule.place`'s decision.
"""

from __future__ import annotations

import contextlib
import time

from aestheticnet.artifacts import Precision
from aestheticnet.export.exporter import ExportContext, Exporter, Started
from aestheticnet.export.plan import ExportPlan, Manifests
from aestheticnet.export.registry import exporter_for
from aestheticnet.export.report import Recorder
from aestheticnet.export.schedule import Placement

__all__ = ["ExportRun"]

SCRATCH = "export"  # the scratch folder's name for lifetime.temp_name / remove_stale


class ExportRun:
    def __init__(self, plan: ExportPlan, placement: Placement, recorder: Recorder):
        self.plan, self.placement, self.rec = plan, placement, recorder
        self.names: list[str] = []  # the calibration images' names, for the outlier report
        self.exporters: list[tuple[Exporter, list[Precision]]] = [
            (exporter_for(f), plan.precisions(f)) for f in plan.formats
        ]

    def run(self) -> None:
        from aestheticnet.artifacts.files import scratch_dir
        from aestheticnet.lifetime import remove_stale, temp_name

        with contextlib.ExitStack() as stack:
            # In the output folder, so that what a worker made is renamed into place by this process; what a
            # killed export left there is removed first.
            self.plan.out.mkdir(parents=True, exist_ok=True)
            remove_stale(self.plan.out, SCRATCH)
            scratch = stack.enter_context(scratch_dir(self.plan.out, temp_name(SCRATCH) + "-"))
            ctx = self.load(scratch)
            stack.callback(_cancel_jobs, ctx)  # kills workers left running by an error here
            started: dict[int, Started | None] = {}
            for k, (exporter, precisions) in enumerate(self.exporters):
                if exporter.starts_before_trace():
                    started[k] = exporter.start(ctx, precisions)
            self.trace(ctx)
            self.fp32_onnx(ctx)
            self.drop_outliers(ctx)
            for k, (exporter, precisions) in enumerate(self.exporters):
                if k not in started:
                    started[k] = exporter.start(ctx, precisions)
            in_worker = {k for k, s in started.items() if s is not None and s.job is not None}
            for k in [k for k in range(len(self.exporters)) if k not in in_worker] + sorted(in_worker):
                exporter, precisions = self.exporters[k]
                exporter.finish(ctx, precisions, started[k])

    def load(self, scratch) -> ExportContext:
        """The model, its hash, the calibration images and the exact export copy of the network."""
        from aestheticnet.export.prepare import prepare_for_export
        from aestheticnet.io import sha256_file
        from aestheticnet.models import load

        t0 = time.perf_counter()
        model = load(self.plan.checkpoint)
        sha = sha256_file(self.plan.checkpoint)
        self.rec.shared("load", t0)
        calibration, calibration_info = [], None
        if self.plan.needs_calibration:
            from aestheticnet.export.calibration import load_images

            t0 = time.perf_counter()
            pre = dict(self.plan.meta.get("preprocess", {}))
            options = self.plan.options
            calibration, self.names, calibration_info = load_images(options.data, pre, options.calibration_samples)
            self.rec.shared("calibration_images", t0)
        t0 = time.perf_counter()
        prepared, rewrites = prepare_for_export(model)
        self.rec.shared("prepare", t0)
        return ExportContext(
            plan=self.plan,
            manifests=Manifests(self.plan, sha, rewrites),
            in_workers=self.placement.in_workers,
            recorder=self.rec,
            prepared=prepared,
            scratch=scratch,
            calibration=calibration,
            calibration_info=calibration_info,
        )

    def trace(self, ctx: ExportContext) -> None:
        """One torch.export for everything done in this process; decomposed only when a format here needs it."""
        if not self.placement.trace_here:
            return
        from aestheticnet.export.prepare import trace

        t0 = time.perf_counter()
        decompose = self.placement.decompose_here
        ctx.traced = trace(ctx.prepared, self.plan.options.spec, decompose=decompose)
        self.rec.report.shared_seconds.update({f"trace_{k}": v for k, v in ctx.traced.seconds.items()})
        ctx.say(f"torch.export{' + decomposition' if decompose else ''} in {time.perf_counter() - t0:.1f}s")

    def fp32_onnx(self, ctx: ExportContext) -> None:
        """The fp32 ONNX file, when a requested format is it or converts from it."""
        if not self.plan.needs_onnx:
            return
        from aestheticnet.export.onnx.exporter import make_fp32_onnx

        make_fp32_onnx(ctx)
        self.rec.report.cpu_seconds["main_until_onnx_fp32"] = round(time.process_time() - self.rec.cpu_start, 3)

    def drop_outliers(self, ctx: ExportContext) -> None:
        """One calibration set for every int8 format, without images whose activations are out of line."""
        if not ctx.calibration or ctx.onnx_fp32 is None:
            return
        from aestheticnet.export.int8.outliers import drop_calibration_outliers

        t0 = time.perf_counter()
        ctx.calibration, ctx.calibration_info = drop_calibration_outliers(
            ctx.onnx_fp32, ctx.calibration, self.names, ctx.calibration_info, self.plan.options.recipe
        )
        self.rec.shared("calibration_outliers", t0)
        for o in ctx.calibration_info["outliers"]:
            ctx.say(f"calibration: left out image {o['image']} ({o['ratio']:g}x the median range at {o['tensor']})")


def _cancel_jobs(ctx: ExportContext) -> None:
    for job in ctx.jobs:
        job.cancel()  # no-op for finished jobs
