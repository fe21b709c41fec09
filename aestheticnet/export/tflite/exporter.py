"""The TFLite format: converted from the fp32 ONNX file by onnx2tf and TensorFlow's converter, in a worker process
while this one makes the other formats."""

from __future__ import annotations

import time

from aestheticnet.artifacts import SPECS, Format, Precision
from aestheticnet.export.exporter import ExportContext, Exporter, Started
from aestheticnet.runtime.backends import TFLiteBackend
from aestheticnet.runtime_names import RuntimeName

__all__ = ["TFLiteExporter"]


class TFLiteExporter(Exporter):
    spec = SPECS[Format.TFLITE]
    backend = TFLiteBackend
    from_onnx = True
    calibrated = frozenset({Precision.INT8})
    bench_backend = RuntimeName.LITERT.value

    def in_worker(self, plan, workers: int) -> bool:
        # Only worth a process when this one has other formats to make meanwhile.
        return workers >= 2 and len(plan.pairs) > len(plan.precisions(Format.TFLITE))

    def manifest(self, ctx: ExportContext, precision: Precision) -> dict:
        onnx_exporter = ctx.onnx_result.exporter if ctx.onnx_result else None
        info = {"exporter": "onnx2tf + TFLiteConverter (from the dynamo ONNX)", "onnx_exporter": onnx_exporter}
        return ctx.manifests.build(
            Format.TFLITE,
            precision,
            info,
            input_shape=["batch", "height", "width", 3],
            calibration=ctx.calibration_for(precision),
        )

    def start(self, ctx: ExportContext, precisions: list[Precision]) -> Started | None:
        if ctx.onnx_fp32 is None:
            return None
        from aestheticnet.export.calibration import save_npz
        from aestheticnet.export.jobs import Job
        from aestheticnet.export.tflite.normaliser import NormaliserSpec

        # Converted in the scratch folder; finish renames each file into place, then writes its manifest.
        outputs = {p.value: str(ctx.scratch / ctx.plan.path(Format.TFLITE, p).name) for p in precisions}
        manifests = {p.value: self.manifest(ctx, p) for p in precisions}
        embedded = {name: manifest.to_json() for name, manifest in manifests.items()}
        int8 = Precision.INT8 in precisions
        npz = save_npz(ctx.calibration, ctx.scratch / "calibration.npz") if int8 else None
        normaliser = NormaliserSpec.of_model(ctx.prepared)
        args = (str(ctx.onnx_fp32), outputs, str(npz) if npz else None, embedded, True, ctx.plan.options.recipe)
        args += (normaliser,)
        job = None
        if self.format in ctx.in_workers:
            job = Job("aestheticnet.export.tflite.convert:convert_tflite_job", args, ctx.scratch, "tflite")
            ctx.jobs.append(job)
        return Started(job, time.perf_counter(), {"args": args, "outputs": outputs, "manifests": manifests})

    def finish(self, ctx: ExportContext, precisions: list[Precision], started: Started | None) -> None:
        if started is None:
            ctx.recorder.failure("tflite", "skipped: the ONNX export it converts from failed")
            return
        from aestheticnet.artifacts.files import move_into_place
        from aestheticnet.export.tflite.convert import convert_tflite

        outputs, manifests = started.state["outputs"], started.state["manifests"]
        try:
            job = started.job
            results = job.result() if job is not None else convert_tflite(*started.state["args"])
            if job is not None:
                ctx.recorder.report.cpu_seconds["tflite_worker"] = results[precisions[0].value].get("cpu_seconds", 0.0)
            for p in precisions:
                result = results[p.value]
                manifest = manifests[p.value].with_export(rewrites=result["rewrites"], seconds=result["seconds"])
                final = ctx.plan.path(Format.TFLITE, p)
                move_into_place(outputs[p.value], final)
                ctx.recorder.artifact(Format.TFLITE, p, final, result["seconds"], manifest)
            ctx.recorder.report.format_seconds["tflite_wall"] = round(time.perf_counter() - started.since, 3)
        except Exception as exc:  # noqa: BLE001
            ctx.recorder.failure("tflite/" + ",".join(p.value for p in precisions), exc)
