"""The CoreML format: an ML program package, converted in a worker process that traces on its own."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from aestheticnet.artifacts import SPECS, Format, Precision
from aestheticnet.export.exporter import ExportContext, Exporter, Started
from aestheticnet.export.options import CoreMLInput, CoreMLOptions, CoreMLShapes
from aestheticnet.imagenet import IMAGENET_MEAN, IMAGENET_STD
from aestheticnet.runtime.backends import Backend, CoreMLBackend, CoreMLRunner, MilBackend

__all__ = ["CoreMLExporter"]


class CoreMLExporter(Exporter):
    spec = SPECS[Format.COREML]
    backend = CoreMLBackend
    bench_refusal = (
        "CoreML packages are not timed here: Core ML runs only on Apple systems, and the MIL evaluator that "
        "computes their numbers elsewhere says nothing about Core ML's speed (use `aestheticnet verify` for their "
        "numbers)"
    )

    def uses_trace(self, plan) -> bool:
        return plan.options.coreml_input == CoreMLInput.TENSOR

    def wants_decomposed_trace(self, plan) -> bool:
        return self.uses_trace(plan)

    def in_worker(self, plan, workers: int) -> bool:
        # Worth a process when this one is busy with the ONNX export meanwhile.
        return workers >= 2 and plan.needs_onnx

    def starts_before_trace(self) -> bool:
        return True

    def open(self, path: Path, threads: int | None, coreml: CoreMLRunner) -> Backend:
        return (CoreMLBackend if coreml == CoreMLRunner.COREML else MilBackend)(path, threads)

    def check_artifact(self, artifact: Path, manifest: dict | None) -> tuple[dict | None, list[dict[str, Any]]]:
        from aestheticnet.export.coreml.spec import check_spec, summarize_spec

        summary = summarize_spec(artifact)
        return summary, check_spec(summary, manifest)

    def options(self, ctx: ExportContext) -> CoreMLOptions:
        pre = ctx.plan.meta.get("preprocess", {})
        mean, std = pre.get("mean", IMAGENET_MEAN), pre.get("std", IMAGENET_STD)
        options = ctx.plan.options
        return CoreMLOptions(
            shapes=options.coreml_shapes,
            input_kind=options.coreml_input,
            mean=tuple(mean),
            std=tuple(std),
            spec=options.spec,
            recipe=options.recipe,
        )

    def manifest(self, ctx: ExportContext, precision: Precision) -> dict:
        coreml = self.options(ctx)
        image = coreml.input_kind == CoreMLInput.IMAGE
        enumerated = coreml.shapes == CoreMLShapes.ENUMERATED
        extra: dict[str, Any] = {}
        if image:
            extra.update(
                image_scale=1 / 255,
                image_bias=[-float(m) for m in ctx.manifests.mean],
                color_layout="RGB",
                std_folded_into_first_conv=True,
            )
        if enumerated:
            extra["enumerated"] = [[1, 3, h, w] for h, w in coreml.enumerated]
        spec = coreml.spec
        lo = max(spec.multiple, spec.min_side)
        dynamic = None
        if not enumerated:
            batch = [1, 1 if image else spec.max_batch]
            dynamic = {"batch": batch, "height": [lo, spec.max_side], "width": [lo, spec.max_side]}
        weights = coreml.recipe.coreml_weights() if precision == Precision.INT8 else precision.value
        info = {
            "exporter": "torch.export -> coremltools ML program",
            "compute_precision": "FLOAT32" if precision == Precision.FP32 else "FLOAT16",
            "weights": weights,
            "minimum_deployment_target": "iOS16",
            "shapes": coreml.shapes.value,
        }
        return ctx.manifests.build(
            Format.COREML,
            precision,
            info,
            dynamic=dynamic,
            input_kind=coreml.input_kind.value,
            input_shape=[1, 3, "height", "width"] if image else None,
            extra_input=extra,
        )

    def _jobs(self, ctx: ExportContext, precisions: list[Precision]) -> list[tuple[Precision, Path, dict]]:
        return [(p, ctx.plan.path(Format.COREML, p), self.manifest(ctx, p)) for p in precisions]

    def start(self, ctx: ExportContext, precisions: list[Precision]) -> Started | None:
        if self.format not in ctx.in_workers:
            return None
        from aestheticnet.export.jobs import Job

        jobs = self._jobs(ctx, precisions)
        # The worker saves in the scratch folder; finish renames each package into place.
        args = (
            str(ctx.plan.checkpoint),
            [(p.value, str(ctx.scratch / dst.name), manifest.to_json()) for p, dst, manifest in jobs],
            self.options(ctx).to_json(),
        )
        job = Job("aestheticnet.export.coreml.convert:convert_checkpoint_coreml", args, ctx.scratch, "coreml")
        ctx.jobs.append(job)
        return Started(job, time.perf_counter(), {"jobs": jobs})

    def finish(self, ctx: ExportContext, precisions: list[Precision], started: Started | None) -> None:
        if started is None:
            self._here(ctx, precisions)
        else:
            self._collect(ctx, started)

    def _here(self, ctx: ExportContext, precisions: list[Precision]) -> None:
        from aestheticnet.export.coreml.convert import convert_coreml

        coreml = self.options(ctx)
        for precision, dst, manifest in self._jobs(ctx, precisions):
            try:
                result = convert_coreml(ctx.prepared, dst, precision, coreml, traced=ctx.traced, metadata=manifest)
                manifest = manifest.with_export(seconds=result["seconds"])
                ctx.recorder.artifact(Format.COREML, precision, dst, result["seconds"], manifest)
            except Exception as exc:  # noqa: BLE001
                ctx.recorder.failure(f"coreml/{precision.value}", exc)

    def _collect(self, ctx: ExportContext, started: Started) -> None:
        from aestheticnet.artifacts.files import move_into_place

        jobs = started.state["jobs"]
        try:
            outcome = started.job.result()
            ctx.recorder.report.cpu_seconds["coreml_worker"] = outcome.pop("cpu_seconds", 0.0)
        except Exception as exc:  # noqa: BLE001
            outcome = {p.value: f"{type(exc).__name__}: {exc}" for p, _, _ in jobs}
        for precision, dst, manifest in jobs:
            result = outcome[precision.value]
            if isinstance(result, str):
                ctx.recorder.failure(f"coreml/{precision.value}", result)
            else:
                manifest = manifest.with_export(seconds=result["seconds"])
                move_into_place(ctx.scratch / dst.name, dst)
                ctx.recorder.artifact(Format.COREML, precision, dst, result["seconds"], manifest)
        ctx.recorder.report.format_seconds["coreml_wall"] = round(time.perf_counter() - started.since, 3)
