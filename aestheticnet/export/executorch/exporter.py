"""The ExecuTorch format: a ``.pte`` program lowered to the XNNPACK delegate, made in this process (its own
``torch.export``, shared by its precisions) while the workers convert."""

from __future__ import annotations

import time

from aestheticnet.artifacts import SPECS, Format, Precision
from aestheticnet.export.exporter import ExportContext, Exporter, Started
from aestheticnet.export.options import ExportOptions
from aestheticnet.runtime.executorch import ExecuTorchBackend
from aestheticnet.runtime_names import RuntimeName

__all__ = ["ExecuTorchExporter"]


class ExecuTorchExporter(Exporter):
    spec = SPECS[Format.EXECUTORCH]
    backend = ExecuTorchBackend
    calibrated = frozenset({Precision.INT8})
    bench_backend = RuntimeName.EXECUTORCH.value

    def manifest(self, ctx: ExportContext, precision: Precision) -> dict:
        from aestheticnet.export.executorch.convert import conversion_text

        info = {
            "exporter": "torch.export -> ExecuTorch (XNNPACK delegate)",
            "conversion": conversion_text(precision, ctx.plan.options.recipe),
            "bounds_note": _bounds_note(ctx.plan.options),
        }
        return ctx.manifests.build(
            Format.EXECUTORCH,
            precision,
            info,
            dynamic=ctx.plan.planned_spec.bounds(),
            calibration=ctx.calibration_for(precision),
        )

    def finish(self, ctx: ExportContext, precisions: list[Precision], started: Started | None) -> None:
        from aestheticnet.export.executorch.convert import convert_executorch, export_program

        spec = ctx.plan.planned_spec
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
                made = convert_executorch(
                    ctx.prepared,
                    dst,
                    precision=precision,
                    spec=spec,
                    images=ctx.calibration,
                    recipe=ctx.plan.options.recipe,
                    manifest=manifest,
                    program=program,
                )
                seconds = traced | made.seconds  # the shared trace is counted once, with the first precision
                traced = {}
                manifest = manifest.with_export(seconds=seconds, planned_memory_bytes=made.planned_memory_bytes)
                ctx.recorder.artifact(Format.EXECUTORCH, precision, dst, seconds, manifest)
            except Exception as exc:  # noqa: BLE001
                ctx.recorder.failure(f"executorch/{precision.value}", exc)


def _bounds_note(options: ExportOptions) -> str:
    """Where the input bounds (``input.dynamic``) came from: the runtime plans memory for their upper ends."""
    if options.max_batch is None and options.max_side is None:
        source = "batch 1 and the longest side the checkpoint's preprocessing produces"
    else:
        asked = {"max_batch": options.max_batch, "max_side": options.max_side}
        given = ", ".join(f"{k} {v}" for k, v in asked.items() if v is not None)
        source = f"the export's {given} (else batch 1 and the preprocessing's longest side)"
    return f"the runtime plans memory for the upper bounds: {source}"
