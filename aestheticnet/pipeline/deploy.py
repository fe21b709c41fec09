"""Pipeline steps after training: export the phone model, verify every artifact, benchmark on this machine."""

from __future__ import annotations

from pathlib import Path

from aestheticnet.io import atomic_write_json
from aestheticnet.pipeline.config import PipelineConfig
from aestheticnet.pipeline.steps import StepContext, StepOutcome, run_step

__all__ = ["export_step", "verify_step", "bench_step"]


def _size(path: Path) -> int:
    if path.is_dir():
        return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
    return path.stat().st_size


def export_step(cfg: PipelineConfig, ctx: StepContext, checkpoint: Path, data: str, upstream: dict) -> StepOutcome:
    out = ctx.out_dir / "export"

    def work():
        from aestheticnet.export import ExportOptions, export_checkpoint

        options = ExportOptions(
            data=data,
            calibration_samples=cfg.export.calibration_samples,
            max_batch=cfg.export.max_batch or None,
            max_side=cfg.export.max_side or None,
        )
        report = export_checkpoint(checkpoint, cfg.export.formats, cfg.export.precisions, out, options, log=ctx.log)
        atomic_write_json(out / "export_report.json", report.to_dict())
        artifacts = [
            {
                "format": a.format.value,
                "precision": a.precision.value,
                "path": a.path,
                "manifest": a.manifest,
                "seconds": a.total,
                "size_bytes": _size(Path(a.path)),
            }
            for a in report.artifacts
        ]
        files = [Path(a["path"]) for a in artifacts] + [Path(a["manifest"]) for a in artifacts]
        return files, {
            "artifacts": artifacts,
            "format_seconds": report.format_seconds,
            "wall_seconds": report.wall_seconds,
            "failures": report.failures,
        }

    return run_step(ctx, "export", cfg.to_dict()["export"], upstream, work)


def verify_step(cfg: PipelineConfig, ctx: StepContext, checkpoint: Path, data: str, export: StepOutcome) -> StepOutcome:
    out = ctx.out_dir / "verify"

    def work():
        from aestheticnet.export.verify import OutsideBounds, VerifyOptions, format_table, verify_artifact

        reports, files = [], []
        for art in export.result["artifacts"]:
            path = Path(art["path"])
            # The config's shapes serve every format: those outside one artifact's bounds are skipped, and reported.
            options = VerifyOptions(
                shapes=_verify_shapes(cfg, path),
                data=data,
                samples=cfg.verify.samples,
                outside_bounds=OutsideBounds.SKIP,
            )
            report = verify_artifact(path, checkpoint, options)
            ctx.log(format_table(report))
            target = out / f"{path.name}.verify.json"
            atomic_write_json(target, report.to_dict())
            files.append(target)
            worst = max(
                (s.get("max_abs") or 0.0 for s in report.shapes if isinstance(s.get("max_abs"), float)), default=None
            )
            mean_diff = max(
                (s.get("mean_score_diff") or 0.0 for s in report.shapes if isinstance(s.get("mean_score_diff"), float)),
                default=None,
            )
            reports.append(
                {
                    "artifact": path.name,
                    "status": "PASS" if report.passed else "FAIL",
                    "max_abs": worst,
                    "mean_score_diff": mean_diff,
                    "srocc": (report.real or {}).get("srocc"),
                    "evaluated_by": report.evaluated_by,
                    "note": "; ".join(report.notes + [str(m) for m in report.mismatches])[:300],
                }
            )
        return files, {"reports": reports, "passed": all(r["status"] == "PASS" for r in reports)}

    return run_step(ctx, "verify", cfg.to_dict()["verify"], export.outputs, work)


def _verify_shapes(cfg: PipelineConfig, artifact: Path) -> list:
    """The config's shapes, each HxW at ``verify.batch`` or at the largest batch the artifact takes when that is
    smaller (an ExecuTorch program is exported for one photo at a time by default)."""
    from aestheticnet.artifacts import read_manifest
    from aestheticnet.sizes import Shape

    manifest = read_manifest(artifact, required=False)
    largest = manifest.input.upper_bound("batch") if manifest is not None else None
    batch = min(cfg.verify.batch, largest or cfg.verify.batch)
    return [s if s.batch > 1 else Shape(s.height, s.width, batch=batch) for s in cfg.verify.shapes]


def bench_step(cfg: PipelineConfig, ctx: StepContext, export: StepOutcome) -> StepOutcome:
    out = ctx.out_dir / "bench"

    def work():
        from aestheticnet.bench.harness import BenchSettings, run_benchmark
        from aestheticnet.bench.report import write_json, write_markdown, write_plots

        from aestheticnet.export.registry import exporter_for

        # Formats bench does not time (CoreML: off macOS the MIL evaluator's time says nothing of a device) are left
        # out.
        models = [
            Path(a["path"])
            for a in export.result["artifacts"]
            if a["format"] in cfg.bench.formats
            and a["precision"] in cfg.bench.precisions
            and exporter_for(a["format"]).bench_refusal is None
        ]
        settings = BenchSettings(
            threads=tuple(cfg.bench.threads),
            shapes=tuple(cfg.bench.shapes),
            warmup=cfg.bench.warmup,
            runs=cfg.bench.runs,
        )
        report = run_benchmark(models, settings, progress=ctx.log)
        files = [write_json(report, out / "bench.json"), write_markdown(report, out / "bench.md")]
        plots = write_plots(report, out)
        rows = [
            {
                "model": Path(r["model"]).name,
                "backend": r["backend"],
                "threads": r["threads"],
                "shape": r["shape"],
                "p50_ms": r["p50_ms"],
                "p90_ms": r["p90_ms"],
                "throughput": r["throughput_ips"],
                "peak_rss_mb": (r["peak_rss_delta_bytes"] or 0) / 2**20 if r["peak_rss_delta_bytes"] else None,
                "planned_mb": r["planned_memory_bytes"] / 2**20 if r["planned_memory_bytes"] else None,
            }
            for r in report["results"]
        ]
        return files + list(plots), {
            "rows": rows,
            "plots": [str(p) for p in plots],
            "errors": report["errors"],
            "device_info": report.get("device_info"),
        }

    return run_step(ctx, "bench", cfg.to_dict()["bench"], export.outputs, work)
