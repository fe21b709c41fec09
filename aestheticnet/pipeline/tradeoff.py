"""The pipeline's accuracy-latency step: is a searched network better than the baseline at equal latency?

When ``[train] variants`` holds a baseline (``nima_mobilenet_v2``), every trained variant's shipped checkpoint is
exported fp32 in the first timed format, and all of them are timed on this machine at the first bench thread count
and shape, in interleaved rounds of fresh processes (each point is the median of the rounds' p50). Each point's
accuracy is its evaluate step's SROCC; the plot and the sentence come from ``aestheticnet.bench.tradeoff``.
"""

from __future__ import annotations

from pathlib import Path

from aestheticnet.artifacts import Format, Precision
from aestheticnet.models.registry import get_entry
from aestheticnet.pipeline.config import PipelineConfig
from aestheticnet.pipeline.steps import StepContext, StepOutcome, run_step

__all__ = ["ROUNDS", "tradeoff_step", "wants_tradeoff"]

ROUNDS = 3


def wants_tradeoff(cfg: PipelineConfig) -> bool:
    return any(get_entry(v).baseline for v in cfg.train.variants) and len(cfg.train.variants) > 1


def _timed_format(cfg: PipelineConfig) -> Format:
    from aestheticnet.export.registry import exporter_for

    timed = [f for f in cfg.bench.formats if exporter_for(f).bench_refusal is None]
    return timed[0] if timed else Format.ONNX


def _export_all(
    cfg: PipelineConfig, ctx: StepContext, shipped: str, fmt: Format, exported: list[dict]
) -> dict[str, Path]:
    """The fp32 ``fmt`` file of every variant: the export step's for the variant it exported, made here for the
    others."""
    from aestheticnet.export import export_checkpoint

    fp32 = [Path(a["path"]) for a in exported if (a["format"], a["precision"]) == (fmt.value, Precision.FP32.value)]
    files = {cfg.export.variant: fp32[0]} if fp32 else {}
    for variant in cfg.train.variants:
        if variant not in files:
            checkpoint = ctx.out_dir / "train" / variant / shipped
            out = ctx.out_dir / "tradeoff" / "models"
            report = export_checkpoint(checkpoint, [fmt], [Precision.FP32], out, name=variant, log=None)
            files[variant] = Path(report.artifacts[0].path)
    return files


def _median_latency(cfg: PipelineConfig, files: dict[str, Path], log) -> dict[str, float]:
    from aestheticnet.bench import BenchSettings, interleaved_rounds, run_benchmark, summarize_rounds

    settings = BenchSettings(
        threads=(cfg.bench.threads[0],), shapes=(cfg.bench.shapes[0],), warmup=cfg.bench.warmup, runs=cfg.bench.runs
    )
    measured = interleaved_rounds(
        list(files.values()),
        lambda path: run_benchmark([path], settings)["results"][0],
        ROUNDS,
        progress=lambda label, path, _: log(f"tradeoff {label}: {path.name}"),
    )
    latency = {}
    for variant, path in files.items():
        times = [r["p50_ms"] for r in measured[path] if r.get("ok")]
        if not times:
            raise RuntimeError(f"tradeoff: {path} did not run: {measured[path][0].get('error')}")
        latency[variant] = summarize_rounds(times)["median"]
    return latency


def tradeoff_step(
    cfg: PipelineConfig, ctx: StepContext, shipped: str, evaluated: dict[str, StepOutcome], export: StepOutcome
) -> StepOutcome:
    """``evaluated``: the evaluate step of every variant, whose SROCC is the point's accuracy; ``export``: the
    export step, whose file of the exported variant is reused."""
    out = ctx.out_dir / "tradeoff"

    def work():
        from aestheticnet.bench import TradeoffPoint, plot_tradeoff, tradeoff_sentence

        fmt = _timed_format(cfg)
        files = _export_all(cfg, ctx, shipped, fmt, export.result["artifacts"])
        latency = _median_latency(cfg, files, ctx.log)
        points = [
            TradeoffPoint(v, latency[v], evaluated[v].result["metrics"]["srocc"], baseline=get_entry(v).baseline)
            for v in cfg.train.variants
        ]
        shape, threads = cfg.bench.shapes[0], cfg.bench.threads[0]
        where = f"{fmt.value} fp32, {threads} thread{'s' if threads > 1 else ''}, {shape.height}x{shape.width}"
        plot = plot_tradeoff(points, out / "accuracy_latency.png", f"latency on this machine, {where} (ms)")
        result = {
            "points": [
                {"name": p.name, "latency_ms": p.latency_ms, "srocc": p.accuracy, "baseline": p.baseline}
                for p in points
            ],
            "sentence": tradeoff_sentence(points),
            "timed": where,
            "rounds": ROUNDS,
            "plot": str(plot),
        }
        return [plot], result

    upstream = {k: v for outcome in (*evaluated.values(), export) for k, v in outcome.outputs.items()}
    config = {"bench": cfg.to_dict()["bench"], "variants": list(cfg.train.variants), "rounds": ROUNDS}
    return run_step(ctx, "tradeoff", config, upstream, work)
