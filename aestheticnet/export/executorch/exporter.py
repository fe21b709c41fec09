"""The ExecuTorch format: a ``.pte`` program lowered to the XNNPACK delegate, made in this process (its own
``torch.export``, shared by its precisions) while the workers convert."""

from __future__ import annotations

import time

from aestheticnet.artifacts import SPECS, Format, Precision
from aestheticnet.export.exporter import ExportContext, Exporter, Started
from aestheticnet.runtime.executorch import ExecuTorchBackend
from aestheticnet.runtime_names import RuntimeName

__all__ = ["ExecuTorchExporter"]


class ExecuTorchExporter(Exporter):
    spec = SPECS[Format.EXECUTORCH]
    backend = ExecuTorchBackend
    calibrated = frozenset({Precision.INT8})
    bench_backend = RuntimeName.EXECUTORCH.value

    def manifest(self, ctx: ExportContext, precision: Precision) -> dict:
        from aestheticnet.export.executorch.convert import conversion_text, executorch_spec

        info = {
            "exporter": "torch.export -> ExecuTorch (XNNPACK delegate)",
            "conversion": conversion_text(precision, ctx.plan.options.recipe),
            "bounds_note": "the runtime plans input memory for the upper bounds",
        }
        dynamic = executorch_spec(ctx.plan.options.spec).bounds()
        return ctx.manifests.build(
            Format.EXECUTORCH, precision, info, dynamic=dynamic, calibration=ctx.calibration_for(precision)
        )

    def finish(self, ctx: ExportContext, precisions: list[Precision], started: Started | None) -> None:
        from aestheticnet.export.executorch.convert import convert_executorch, executorch_spec, export_program

        spec = executorch_spec(ctx.plan.options.spec)
        t0 = time.perf_counter()
        try:
            program = export_program(ctx.prepared, spec)
        except Exception as exc:  # noqa: BLE001
            for precision in precisions:
                ctx.recorder.failure(f"executorch/{precision.value}", exc)
            return
        traced = {"torch_export": round(time.perf_counter() - t0, 3)}
        for precision in precisions:
            dst = ctx.plan.path(Format.EXECUTORCH, precision)
            manifest = self.manifest(ctx, precision)
            try:
                seconds = convert_executorch(
                    ctx.prepared,
                    dst,
                    precision=precision,
                    spec=spec,
                    images=ctx.calibration,
                    recipe=ctx.plan.options.recipe,
                    manifest=manifest,
                    program=program,
                )
                seconds = traced | seconds  # the shared trace is counted once, with the first precision
                traced = {}
                manifest = manifest.with_export(seconds=seconds)
                ctx.recorder.artifact(Format.EXECUTORCH, precision, dst, seconds, manifest)
            except Exception as exc:  # noqa: BLE001
                ctx.recorder.failure(f"executorch/{precision.value}", exc)
