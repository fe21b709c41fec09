"""The steps of one export, in the order :func:`~aestheticnet.export.api.export_checkpoint` runs them.

Each step records its artifacts (sidecar manifest, report entry) or its failure; a failed step leaves no file and
the steps that do not depend on it still run. Which process runs what is :func:`~aestheticnet.export.schedule.place`'s
decision.
"""

from __future__ import annotations

import contextlib
import time
from pathlib import Path
from typing import Any

from aestheticnet.artifacts import Format, Precision
from aestheticnet.artifacts.embedded import flat_entries
from aestheticnet.export.plan import ExportPlan, Manifests
from aestheticnet.export.report import Recorder
from aestheticnet.export.schedule import Job, Placement
from aestheticnet.imagenet import IMAGENET_MEAN, IMAGENET_STD

__all__ = ["ExportRun"]

SCRATCH = "export"  # the scratch folder's name for lifetime.temp_name / remove_stale


class ExportRun:
    def __init__(self, plan: ExportPlan, placement: Placement, recorder: Recorder):
        self.plan, self.placement, self.rec, self.say = plan, placement, recorder, recorder.say
        self.options = plan.options
        self.calibration: list = []
        self.calibration_info: dict | None = None
        self.traced = None
        self.onnx_fp32: Path | None = None
        self.onnx_result = None
        self.jobs: list[Job] = []

    # ---- shared inputs ------------------------------------------------------------------------------------
    def load(self) -> None:
        """The model, its hash, the calibration images and the exact export copy of the network."""
        from aestheticnet.export.prepare import prepare_for_export
        from aestheticnet.io import sha256_file
        from aestheticnet.models import load

        t0 = time.perf_counter()
        model = load(self.plan.checkpoint)
        sha = sha256_file(self.plan.checkpoint)
        self.rec.shared("load", t0)
        pre = dict(self.plan.meta.get("preprocess", {}))
        self.names: list[str] = []
        if self.plan.needs_calibration:
            from aestheticnet.export.calibration import load_images

            t0 = time.perf_counter()
            self.calibration, self.names, self.calibration_info = load_images(
                self.options.data, pre, self.options.calibration_samples
            )
            self.rec.shared("calibration_images", t0)
        t0 = time.perf_counter()
        self.prepared, rewrites = prepare_for_export(model)
        self.rec.shared("prepare", t0)
        self.manifests = Manifests(self.plan, sha, rewrites)
        mean, std = pre.get("mean", IMAGENET_MEAN), pre.get("std", IMAGENET_STD)
        self.coreml_options = {
            "shapes": self.options.coreml_shapes,
            "input_kind": self.options.coreml_input,
            "mean": mean,
            "std": std,
            "spec": self.options.spec,
            "recipe": self.options.recipe,
        }
        self.coreml_jobs = [
            (p.value, str(self.plan.path(Format.COREML, p)), self.manifests.coreml(p))
            for p in self.plan.precisions(Format.COREML)
        ]

    def run(self) -> None:
        from aestheticnet.artifacts.files import scratch_dir
        from aestheticnet.lifetime import remove_stale, temp_name

        self.load()
        with contextlib.ExitStack() as stack:
            stack.callback(self._cancel_jobs)  # kills workers left running by an error here
            # In the output folder, so that what a worker made is renamed into place by this process; what a
            # killed export left there is removed first.
            self.plan.out.mkdir(parents=True, exist_ok=True)
            remove_stale(self.plan.out, SCRATCH)
            self.scratch = stack.enter_context(scratch_dir(self.plan.out, temp_name(SCRATCH) + "-"))
            coreml_job = self.start_coreml_worker()
            self.trace()
            self.onnx_fp32_step()
            self.drop_outliers()
            tflite = self.start_tflite()
            if coreml_job is None:
                self.coreml_here()
            for fmt, precision in self.plan.pairs:
                if fmt == Format.ONNX and precision != Precision.FP32 and self.onnx_fp32 is not None:
                    self.onnx_variant(precision)
            self.executorch_here()
            self.finish_tflite(tflite)
            if coreml_job is not None:
                self.finish_coreml(*coreml_job)

    def _cancel_jobs(self) -> None:
        for job in self.jobs:
            job.cancel()  # no-op for finished jobs

    # ---- torch.export and ONNX ----------------------------------------------------------------------------
    def trace(self) -> None:
        """One torch.export for everything done in this process; decomposed only when CoreML needs it here too."""
        if not self.placement.trace_here:
            return
        from aestheticnet.export.prepare import trace

        t0 = time.perf_counter()
        decompose = self.placement.decompose_here
        self.traced = trace(self.prepared, self.options.spec, decompose=decompose)
        self.rec.report.shared_seconds.update({f"trace_{k}": v for k, v in self.traced.seconds.items()})
        self.say(f"torch.export{' + decomposition' if decompose else ''} in {time.perf_counter() - t0:.1f}s")

    def onnx_fp32_step(self) -> None:
        if not self.plan.needs_onnx:
            return
        from aestheticnet.export.onnx.build import build_onnx

        keep = (Format.ONNX, Precision.FP32) in self.plan.pairs
        path = self.plan.path(Format.ONNX, Precision.FP32) if keep else self.scratch / "fp32.onnx"
        t0 = time.perf_counter()
        try:
            result = build_onnx(
                self.prepared,
                path,
                opset=self.options.opset,
                spec=self.options.spec,
                exporter=self.options.exporter,
                traced=self.traced,
            )
            # The manifest names the exporter that ran, so it is embedded after the export.
            manifest = self.manifests.build(Format.ONNX, Precision.FP32, result.exporter_info())
            _embed_onnx(path, manifest)
            self.onnx_result = result
            if keep:
                self.rec.artifact(Format.ONNX, Precision.FP32, path, dict(result.seconds), manifest)
            self.onnx_fp32 = path
        except Exception as exc:  # noqa: BLE001
            self.rec.failure("onnx/fp32", exc)
        if not keep:
            self.rec.shared("onnx_for_tflite", t0)
        self.rec.report.cpu_seconds["main_until_onnx_fp32"] = round(time.process_time() - self.rec.cpu_start, 3)

    def drop_outliers(self) -> None:
        """One calibration set for ONNX and TFLite int8, without images whose activations are out of line."""
        if not self.calibration or self.onnx_fp32 is None:
            return
        from aestheticnet.export.int8.outliers import drop_calibration_outliers

        t0 = time.perf_counter()
        self.calibration, self.calibration_info = drop_calibration_outliers(
            self.onnx_fp32, self.calibration, self.names, self.calibration_info, self.options.recipe
        )
        self.rec.shared("calibration_outliers", t0)
        for o in self.calibration_info["outliers"]:
            self.say(f"calibration: left out image {o['image']} ({o['ratio']:g}x the median range at {o['tensor']})")

    def onnx_variant(self, precision: Precision) -> None:
        from aestheticnet.export.onnx.fp16 import to_fp16
        from aestheticnet.export.onnx.int8 import quantize_int8

        dst = self.plan.path(Format.ONNX, precision)
        t0 = time.perf_counter()
        info = {**(self.onnx_result.exporter_info() if self.onnx_result else {}), "derived_from": "onnx/fp32"}
        try:
            if precision == Precision.FP16:
                info["conversion"] = "onnxruntime.transformers.float16 (keep_io_types=True)"
                manifest = self.manifests.build(Format.ONNX, precision, info)
                to_fp16(self.onnx_fp32, dst, flat_entries(manifest))
            else:
                info["conversion"] = self.options.recipe.onnx_conversion()
                manifest = self.manifests.build(Format.ONNX, precision, info, calibration=self.calibration_info)
                quantize_int8(self.onnx_fp32, dst, self.calibration, flat_entries(manifest), self.options.recipe)
            self.rec.artifact(
                Format.ONNX, precision, dst, {precision.value: round(time.perf_counter() - t0, 3)}, manifest
            )
        except Exception as exc:  # noqa: BLE001
            self.rec.failure(f"onnx/{precision.value}", exc)

    # ---- TFLite -------------------------------------------------------------------------------------------
    def start_tflite(self) -> dict[str, Any] | None:
        """TFLite in a worker process (or later here) once the ONNX fp32 file exists."""
        precisions = self.plan.precisions(Format.TFLITE)
        if not precisions or self.onnx_fp32 is None:
            return None
        from aestheticnet.export.calibration import save_npz

        exporter = self.onnx_result.exporter if self.onnx_result else None
        # Converted in the scratch folder; finish_tflite renames each file into place, then writes its manifest.
        outputs = {p.value: str(self.scratch / self.plan.path(Format.TFLITE, p).name) for p in precisions}
        manifests = {p.value: self.manifests.tflite(p, exporter, self.calibration_info) for p in precisions}
        npz = save_npz(self.calibration, self.scratch / "calibration.npz") if Precision.INT8 in precisions else None
        args = (str(self.onnx_fp32), outputs, str(npz) if npz else None, manifests, True, self.options.recipe)
        job = None
        if self.placement.tflite_worker:
            job = Job("aestheticnet.export.tflite.convert:convert_tflite", args, self.scratch, "tflite")
            self.jobs.append(job)
        return {"args": args, "job": job, "start": time.perf_counter(), "precisions": precisions}

    def finish_tflite(self, started: dict[str, Any] | None) -> None:
        if started is None:
            if self.plan.precisions(Format.TFLITE):
                self.rec.failure("tflite", "skipped: the ONNX export it converts from failed")
            return
        from aestheticnet.artifacts.files import move_into_place
        from aestheticnet.export.tflite.convert import convert_tflite

        precisions, (_, outputs, _, manifests, _, _) = started["precisions"], started["args"]
        try:
            job = started["job"]
            results = job.result() if job is not None else convert_tflite(*started["args"])
            if job is not None:
                self.rec.report.cpu_seconds["tflite_worker"] = results[precisions[0].value].get("cpu_seconds", 0.0)
            for p in precisions:
                manifest, result = manifests[p.value], results[p.value]
                manifest["export"]["rewrites"] = result["rewrites"]
                manifest["export"]["seconds"] = result["seconds"]
                final = self.plan.path(Format.TFLITE, p)
                move_into_place(outputs[p.value], final)
                self.rec.artifact(Format.TFLITE, p, final, result["seconds"], manifest)
            self.rec.report.format_seconds["tflite_wall"] = round(time.perf_counter() - started["start"], 3)
        except Exception as exc:  # noqa: BLE001
            self.rec.failure("tflite/" + ",".join(p.value for p in precisions), exc)

    # ---- ExecuTorch ---------------------------------------------------------------------------------------
    def executorch_here(self) -> None:
        """ExecuTorch in this process, while the TFLite and CoreML workers convert."""
        from aestheticnet.export.executorch.convert import convert_executorch, export_program

        precisions = self.plan.precisions(Format.EXECUTORCH)
        if not precisions:
            return
        t0 = time.perf_counter()
        try:
            program = export_program(self.prepared, self.manifests.et_spec)
        except Exception as exc:  # noqa: BLE001
            for precision in precisions:
                self.rec.failure(f"executorch/{precision.value}", exc)
            return
        traced = {"torch_export": round(time.perf_counter() - t0, 3)}
        for precision in precisions:
            dst = self.plan.path(Format.EXECUTORCH, precision)
            calibration = self.calibration_info if precision == Precision.INT8 else None
            manifest = self.manifests.executorch(precision, calibration)
            try:
                seconds = traced | convert_executorch(  # the shared trace is counted once, with the first precision
                    self.prepared,
                    dst,
                    precision=precision,
                    spec=self.manifests.et_spec,
                    images=self.calibration,
                    recipe=self.options.recipe,
                    manifest=manifest,
                    program=program,
                )
                traced = {}
                manifest["export"]["seconds"] = seconds
                self.rec.artifact(Format.EXECUTORCH, precision, dst, seconds, manifest)
            except Exception as exc:  # noqa: BLE001
                self.rec.failure(f"executorch/{precision.value}", exc)

    # ---- CoreML -------------------------------------------------------------------------------------------
    def start_coreml_worker(self) -> tuple[Job, float] | None:
        """CoreML traces and converts in its own process while this one exports ONNX and feeds TFLite."""
        if not self.placement.coreml_worker:
            return None
        start = time.perf_counter()
        # The worker saves in the scratch folder; finish_coreml renames each package into place.
        jobs = [(p, str(self.scratch / Path(dst).name), manifest) for p, dst, manifest in self.coreml_jobs]
        args = (str(self.plan.checkpoint), jobs, self.coreml_options)
        job = Job("aestheticnet.export.coreml.convert:convert_checkpoint_coreml", args, self.scratch, "coreml")
        self.jobs.append(job)
        return job, start

    def coreml_here(self) -> None:
        from aestheticnet.export.coreml.convert import convert_coreml

        for precision, dst, manifest in self.coreml_jobs:
            try:
                result = convert_coreml(
                    self.prepared,
                    Path(dst),
                    precision=precision,
                    traced=self.traced,
                    metadata=manifest,
                    **self.coreml_options,
                )
                manifest["export"]["seconds"] = result["seconds"]
                self.rec.artifact(Format.COREML, Precision(precision), Path(dst), result["seconds"], manifest)
            except Exception as exc:  # noqa: BLE001
                self.rec.failure(f"coreml/{precision}", exc)

    def finish_coreml(self, job: Job, start: float) -> None:
        from aestheticnet.artifacts.files import move_into_place

        try:
            outcome = job.result()
            self.rec.report.cpu_seconds["coreml_worker"] = outcome.pop("cpu_seconds", 0.0)
        except Exception as exc:  # noqa: BLE001
            outcome = {p: f"{type(exc).__name__}: {exc}" for p, _, _ in self.coreml_jobs}
        for precision, dst, manifest in self.coreml_jobs:
            result = outcome[precision]
            if isinstance(result, str):
                self.rec.failure(f"coreml/{precision}", result)
            else:
                manifest["export"]["seconds"] = result["seconds"]
                move_into_place(self.scratch / Path(dst).name, dst)
                self.rec.artifact(Format.COREML, Precision(precision), Path(dst), result["seconds"], manifest)
        self.rec.report.format_seconds["coreml_wall"] = round(time.perf_counter() - start, 3)


def _embed_onnx(path: Path, manifest: dict) -> None:
    import onnx

    from aestheticnet.artifacts.embedded import embed_onnx_metadata
    from aestheticnet.io import atomic_path

    model = onnx.load(str(path))
    embed_onnx_metadata(model, flat_entries(manifest))
    with atomic_path(path) as tmp:
        onnx.save(model, str(tmp))
