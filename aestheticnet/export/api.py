"""``export_checkpoint``: one checkpoint -> ONNX, TFLite and CoreML artifacts with manifests and timings.

Most of the time goes into ``torch.export`` (and its decomposition) and the converters' front-ends, all single
threaded Python, so the work is spread over processes (``jobs``, default 2 on a 2-core machine):

* main process: load, prepare an exact export copy (:mod:`~aestheticnet.export.prepare`), ``torch.export`` once,
  ONNX fp32 (translated from the raw program: no decomposition needed), then the ONNX fp16/int8 variants;
* TFLite worker: starts as soon as the ONNX fp32 file exists (onnx2tf needs it; written to a scratch folder when
  ONNX itself was not asked for);
* CoreML worker: starts first, traces and decomposes on its own and converts every CoreML precision.

With ``jobs=1`` everything runs here and one decomposed trace serves both ONNX and CoreML. Every artifact gets
its sidecar manifest; ``<stem>.export_report.json`` records per-format and per-step seconds, the load average and
any failures. A failed format leaves no file behind and does not stop the others; the call raises
:class:`ExportFailed` at the end listing what failed.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from aestheticnet.export.dynamic import DynamicSpec
from aestheticnet.export.specs import (
    SPECS,
    ExportError,
    artifact_name,
    parse_formats,
    parse_precisions,
    supports,
)

__all__ = ["ArtifactResult", "ExportFailed", "ExportReport", "export_checkpoint"]


class ExportFailed(ExportError):
    """Some artifacts could not be produced; ``failures`` maps ``format/precision`` to the reason."""

    def __init__(self, failures: dict[str, str], report: ExportReport):
        self.failures, self.report = failures, report
        lines = "\n".join(f"  {k}: {v}" for k, v in failures.items())
        super().__init__(f"{len(failures)} export(s) failed:\n{lines}")


@dataclass
class ArtifactResult:
    format: str
    precision: str
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
            a["total_seconds"] = obj.total
        return d


def _metadata_entries(manifest: dict) -> dict[str, str]:
    import json

    from aestheticnet.export.manifest import EMBED_KEY

    return {
        EMBED_KEY: json.dumps(manifest),
        "variant": str(manifest["model"]["variant"]),
        "input_name": "image",
        "input_layout": manifest["input"]["layout"],
        "input_multiple": str(manifest["input"]["multiple"]),
        "mean": json.dumps(manifest["input"]["mean"]),
        "std": json.dumps(manifest["input"]["std"]),
        "score_buckets": json.dumps(manifest["model"]["score_buckets"]),
        "source_sha256": manifest["source"]["sha256"],
        "precision": manifest["artifact"]["precision"],
    }


def export_checkpoint(
    checkpoint: str | os.PathLike,
    formats="onnx",
    precisions="fp32",
    out_dir: str | os.PathLike = ".",
    *,
    data: str | os.PathLike | None = None,
    calibration_samples: int = 100,
    opset: int = 18,
    spec: DynamicSpec | None = None,
    coreml_shapes: str = "range",
    coreml_input: str = "tensor",
    exporter: str = "auto",
    jobs: int | None = None,
    name: str | None = None,
    log: Callable[[str], None] | None = print,
) -> ExportReport:
    """Export ``checkpoint`` to every requested format x precision under ``out_dir``; see the module docstring."""
    from aestheticnet.export.manifest import build_manifest, write_sidecar
    from aestheticnet.io import atomic_write_json, sha256_file
    from aestheticnet.models import load, read_metadata

    say = log or (lambda _m: None)
    fmts, precs = parse_formats(formats), parse_precisions(precisions)
    if calibration_samples < 1:
        raise ExportError(f"--calibration-samples must be >= 1, got {calibration_samples}")
    plan = [(f, p) for f in fmts for p in precs if supports(f, p)]
    skipped = [f"{f}/{p}" for f in fmts for p in precs if not supports(f, p)]
    if not plan:
        raise ExportError(
            f"none of the formats {fmts} offers the precisions {precs}; "
            + "; ".join(f"{s.name}: {', '.join(s.precisions)}" for s in SPECS.values())
        )
    checkpoint = Path(checkpoint)
    out = Path(out_dir)
    t_start, cpu_start = time.perf_counter(), time.process_time()
    report = ExportReport(str(checkpoint), str(out), skipped=skipped)
    for s in skipped:
        say(f"skip {s}: not offered by that format")

    t0 = time.perf_counter()
    meta = read_metadata(checkpoint)
    model = load(checkpoint)
    sha = sha256_file(checkpoint)
    stem = name or checkpoint.name.removesuffix(".safetensors")
    pre = dict(meta.get("preprocess", {}))
    spec = spec or DynamicSpec(multiple=int(pre.get("multiple", 32)))
    report.shared_seconds["load"] = round(time.perf_counter() - t0, 3)

    needs_calibration = any(p == "int8" and f in ("onnx", "tflite") for f, p in plan)
    calibration, calib_names, calib_info = [], [], None
    if needs_calibration:
        if data is None:
            raise ExportError(
                "int8 for ONNX/TFLite is calibrated on real images: pass --data DIR (a dataset or a folder of images)"
            )
        from aestheticnet.export.calibration import load_images

        t0 = time.perf_counter()
        calibration, calib_names, calib_info = load_images(data, pre, calibration_samples)
        report.shared_seconds["calibration_images"] = round(time.perf_counter() - t0, 3)

    from aestheticnet.export.files import publish, scratch_dir
    from aestheticnet.export.prepare import prepare_for_export, trace

    t0 = time.perf_counter()
    prepared, rewrites = prepare_for_export(model)
    report.shared_seconds["prepare"] = round(time.perf_counter() - t0, 3)
    bounds = {"batch": [1, spec.max_batch], "height": [max(spec.multiple, spec.min_side), spec.max_side],
              "width": [max(spec.multiple, spec.min_side), spec.max_side]}  # fmt: skip

    def manifest_for(fmt: str, precision: str, exporter_info: dict, **kw) -> dict:
        return build_manifest(
            checkpoint_meta=meta, checkpoint_sha256=sha, checkpoint_name=checkpoint.name, fmt=fmt,
            precision=precision, dynamic=kw.pop("dynamic", bounds),
            exporter={**exporter_info, "model_rewrites": rewrites}, **kw,
        )  # fmt: skip

    def record(fmt, precision, path, seconds, manifest):
        side = write_sidecar(path, manifest)
        publish(path, side)
        result = ArtifactResult(fmt, precision, str(path), str(side), seconds)
        report.artifacts.append(result)
        report.format_seconds[fmt] = round(report.format_seconds.get(fmt, 0.0) + result.total, 3)
        say(f"{fmt:<6} {precision:<12} {result.total:7.1f}s  {path}")

    def fail(key: str, exc: BaseException | str) -> None:
        text = exc if isinstance(exc, str) else f"{type(exc).__name__}: {exc}"
        report.failures[key] = text
        say(f"FAILED {key}: {text.splitlines()[0][:300]}")

    workers = jobs if jobs is not None else min(2, os.cpu_count() or 1)
    needs_onnx = any(f in ("onnx", "tflite") for f, _ in plan)
    coreml_plan = [p for f, p in plan if f == "coreml"]
    coreml_jobs = [
        (p, str(out / artifact_name(stem, "coreml", p)), _coreml_manifest(p, coreml_shapes, coreml_input, spec, manifest_for))
        for p in coreml_plan
    ]  # fmt: skip
    mean, std = pre.get("mean", (0.485, 0.456, 0.406)), pre.get("std", (0.229, 0.224, 0.225))
    coreml_options = {"shapes": coreml_shapes, "input_kind": coreml_input, "mean": mean, "std": std, "spec": spec}
    from aestheticnet.export.worker import Job

    jobs_running: list[Job] = []
    stack = contextlib.ExitStack()
    try:
        scratch = stack.enter_context(scratch_dir())
        coreml_future = None
        if coreml_plan and needs_onnx and workers >= 2:
            # CoreML traces and converts in its own process while this one exports ONNX and feeds TFLite.
            coreml_start = time.perf_counter()
            coreml_future = Job("aestheticnet.export.coreml_export:convert_checkpoint_coreml",
                                (str(checkpoint), coreml_jobs, coreml_options), scratch, "coreml")  # fmt: skip
            jobs_running.append(coreml_future)
        # One torch.export for everything done in this process; decomposed only when CoreML needs it here too.
        needs_trace = needs_onnx or (coreml_plan and coreml_input == "tensor")
        traced = None
        if needs_trace and exporter != "torchscript":
            t0 = time.perf_counter()
            decompose = bool(coreml_plan) and coreml_future is None and coreml_input == "tensor"
            traced = trace(prepared, spec, decompose=decompose)
            report.shared_seconds.update({f"trace_{k}": v for k, v in traced.seconds.items()})
            say(f"torch.export{' + decomposition' if decompose else ''} in {time.perf_counter() - t0:.1f}s")

        onnx_fp32, onnx_result = None, None
        if needs_onnx:
            from aestheticnet.export.onnx_export import build_onnx

            keep = ("onnx", "fp32") in plan
            onnx_fp32 = out / artifact_name(stem, "onnx", "fp32") if keep else scratch / "fp32.onnx"
            t0 = time.perf_counter()
            try:
                # The manifest names the exporter that ran, so it is embedded after the export.
                onnx_result = build_onnx(prepared, onnx_fp32, opset=opset, spec=spec, exporter=exporter,
                                         traced=traced)  # fmt: skip
                manifest = manifest_for("onnx", "fp32", onnx_result.exporter_info())
                _embed_onnx(onnx_fp32, manifest)
                if keep:
                    record("onnx", "fp32", onnx_fp32, dict(onnx_result.seconds), manifest)
            except Exception as exc:  # noqa: BLE001
                fail("onnx/fp32", exc)
                onnx_fp32 = None
            if not keep:
                report.shared_seconds["onnx_for_tflite"] = round(time.perf_counter() - t0, 3)
            report.cpu_seconds["main_until_onnx_fp32"] = round(time.process_time() - cpu_start, 3)

        if calibration and onnx_fp32 is not None:
            # One calibration set for ONNX and TFLite int8, without images whose activations are out of line.
            from aestheticnet.export.calibration_outliers import drop_calibration_outliers

            t0 = time.perf_counter()
            calibration, calib_info = drop_calibration_outliers(onnx_fp32, calibration, calib_names, calib_info)
            report.shared_seconds["calibration_outliers"] = round(time.perf_counter() - t0, 3)
            for o in calib_info["outliers"]:
                say(f"calibration: left out image {o['image']} ({o['ratio']:g}x the median range at {o['tensor']})")

        # TFLite in a worker process while the ONNX variants (and CoreML, without a CoreML worker) run here.
        tfl_plan = [p for f, p in plan if f == "tflite"]
        tfl_future, tfl_args = None, None
        if tfl_plan and onnx_fp32 is not None:
            from aestheticnet.export.calibration import save_npz
            from aestheticnet.export.tflite_export import convert_tflite

            outputs = {p: str(out / artifact_name(stem, "tflite", p)) for p in tfl_plan}
            base_info = {"exporter": "onnx2tf + TFLiteConverter (from the dynamo ONNX)",
                         "onnx_exporter": onnx_result.exporter if onnx_result else None}  # fmt: skip
            shape = ["batch", "height", "width", 3]
            manifests = {
                p: manifest_for("tflite", p, base_info, input_shape=shape,
                                calibration=calib_info if p == "int8" else None)
                for p in tfl_plan
            }  # fmt: skip
            calib_path = save_npz(calibration, scratch / "calibration.npz") if "int8" in tfl_plan else None
            tfl_args = (str(onnx_fp32), outputs, str(calib_path) if calib_path else None, manifests)
            tfl_start = time.perf_counter()
            if workers >= 2 and len(plan) > len(tfl_plan):
                tfl_future = Job("aestheticnet.export.tflite_export:convert_tflite", tfl_args, scratch, "tflite")
                jobs_running.append(tfl_future)
        if coreml_future is None:
            for precision, dst, manifest in coreml_jobs:
                try:
                    result = convert_coreml_in_process(prepared, Path(dst), precision, manifest, traced,
                                                       coreml_options)  # fmt: skip
                    record("coreml", precision, Path(dst), result["seconds"], manifest)
                except Exception as exc:  # noqa: BLE001
                    fail(f"coreml/{precision}", exc)
        for fmt, precision in plan:
            if fmt == "onnx" and precision != "fp32" and onnx_fp32 is not None:
                _onnx_variant(onnx_fp32, out, stem, precision, calibration, calib_info, onnx_result,
                              manifest_for, record, fail)  # fmt: skip
        if tfl_args is not None:
            try:
                results = tfl_future.result() if tfl_future is not None else convert_tflite(*tfl_args)
                if tfl_future is not None:
                    report.cpu_seconds["tflite_worker"] = results[tfl_plan[0]].get("cpu_seconds", 0.0)
                for p in tfl_plan:
                    m = tfl_args[3][p]
                    m["export"]["rewrites"] = results[p]["rewrites"]
                    m["export"]["seconds"] = results[p]["seconds"]
                    record("tflite", p, Path(tfl_args[1][p]), results[p]["seconds"], m)
                report.format_seconds["tflite_wall"] = round(time.perf_counter() - tfl_start, 3)
            except Exception as exc:  # noqa: BLE001
                fail("tflite/" + ",".join(tfl_plan), exc)
        elif tfl_plan:
            fail("tflite", "skipped: the ONNX export it converts from failed")
        if coreml_future is not None:
            try:
                outcome = coreml_future.result()
                report.cpu_seconds["coreml_worker"] = outcome.pop("cpu_seconds", 0.0)
            except Exception as exc:  # noqa: BLE001
                outcome = {p: f"{type(exc).__name__}: {exc}" for p in coreml_plan}
            for precision, dst, manifest in coreml_jobs:
                result = outcome[precision]
                if isinstance(result, str):
                    fail(f"coreml/{precision}", result)
                else:
                    manifest["export"]["seconds"] = result["seconds"]
                    record("coreml", precision, Path(dst), result["seconds"], manifest)
            report.format_seconds["coreml_wall"] = round(time.perf_counter() - coreml_start, 3)
    finally:
        for job in jobs_running:
            job.cancel()  # no-op for finished jobs; kills workers left running by an error here
        stack.close()

    report.wall_seconds = round(time.perf_counter() - t_start, 3)
    report.cpu_seconds["main"] = round(time.process_time() - cpu_start, 3)
    report.load_average = [round(v, 2) for v in os.getloadavg()] if hasattr(os, "getloadavg") else []
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out / f"{stem}.export_report.json", report.to_dict())
    publish(out / f"{stem}.export_report.json")
    say(
        f"done in {report.wall_seconds:.1f}s (load average {report.load_average}); per format: "
        + ", ".join(f"{k} {v:.1f}s" for k, v in report.format_seconds.items())
        + "; CPU seconds: "
        + ", ".join(f"{k} {v:.1f}" for k, v in report.cpu_seconds.items())
    )
    if report.failures:
        raise ExportFailed(report.failures, report)
    return report


def _embed_onnx(path: Path, manifest: dict) -> None:
    import onnx

    from aestheticnet.export.onnx_export import embed_metadata
    from aestheticnet.io import atomic_path

    model = onnx.load(str(path))
    embed_metadata(model, _metadata_entries(manifest))
    with atomic_path(path) as tmp:
        onnx.save(model, str(tmp))


def _onnx_variant(src, out, stem, precision, calibration, calib_info, onnx_result, manifest_for, record, fail):
    from aestheticnet.export.equalize import EQUALIZE_CAP
    from aestheticnet.export.onnx_export import quantize_int8, to_fp16

    dst = out / artifact_name(stem, "onnx", precision)
    t0 = time.perf_counter()
    info = {**(onnx_result.exporter_info() if onnx_result else {}), "derived_from": "onnx/fp32"}
    try:
        if precision == "fp16":
            info["conversion"] = "onnxruntime.transformers.float16 (keep_io_types=True)"
            manifest = manifest_for("onnx", precision, info)
            to_fp16(src, dst, _metadata_entries(manifest))
        else:
            info["conversion"] = (
                "onnxruntime.quantization.quantize_static QDQ, per-channel int8 weights with reduce_range "
                "(7-bit: no int16 saturation on x86 without VNNI), int8 activations, MinMax calibration (outlier "
                "images left out) after activation range equalisation (Conv->[Relu]->Conv channel pairs, gain <= "
                f"{EQUALIZE_CAP:g}); input normalisation and tail (CBAM, pooling, classifier, softmax) in float, "
                "classifier bias corrected"
            )
            manifest = manifest_for("onnx", precision, info, calibration=calib_info)
            quantize_int8(src, dst, calibration, _metadata_entries(manifest))
        record("onnx", precision, dst, {precision: round(time.perf_counter() - t0, 3)}, manifest)
    except Exception as exc:  # noqa: BLE001
        fail(f"onnx/{precision}", exc)


def _coreml_manifest(precision, shapes, input_kind, spec, manifest_for) -> dict:
    from aestheticnet.export.coreml_export import DEFAULT_ENUMERATED

    extra: dict[str, Any] = {}
    manifest_input = manifest_for("coreml", precision, {})["input"]
    if input_kind == "image":
        extra.update(image_scale=1 / 255, image_bias=[-float(m) for m in manifest_input["mean"]], color_layout="RGB",
                     std_folded_into_first_conv=True)  # fmt: skip
    if shapes == "enumerated":
        extra["enumerated"] = [[1, 3, h, w] for h, w in DEFAULT_ENUMERATED]
    lo = max(spec.multiple, spec.min_side)
    dynamic = None if shapes == "enumerated" else {
        "batch": [1, 1 if input_kind == "image" else spec.max_batch],
        "height": [lo, spec.max_side], "width": [lo, spec.max_side],
    }  # fmt: skip
    info = {"exporter": "torch.export -> coremltools ML program", "compute_precision":
            "FLOAT32" if precision == "fp32" else "FLOAT16",
            "weights": "int8 linear symmetric per-channel" if precision == "int8" else precision,
            "minimum_deployment_target": "iOS16", "shapes": shapes}  # fmt: skip
    manifest = manifest_for("coreml", precision, info, dynamic=dynamic, input_kind=input_kind, extra_input=extra)
    if input_kind == "image":
        manifest["input"]["shape"] = [1, 3, "height", "width"]
    return manifest


def convert_coreml_in_process(prepared, dst: Path, precision: str, manifest: dict, traced, options: dict) -> dict:
    from aestheticnet.export.coreml_export import convert_coreml

    result = convert_coreml(prepared, dst, precision=precision, traced=traced, metadata=manifest, **options)
    manifest["export"]["seconds"] = result["seconds"]
    return result
