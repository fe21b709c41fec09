"""`aestheticnet pipeline`: data -> search -> train -> evaluate -> export -> verify -> bench -> report.

With a baseline among the trained variants, a tradeoff step after bench times every variant and plots its accuracy
against its latency (tradeoff.py).

Every step is cached (see steps.py); an interrupted pipeline resumes: finished steps are skipped, and the
search and training steps continue from their own last checkpoints.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Callable

from aestheticnet.io import atomic_write_json
from aestheticnet.pipeline.config import PipelineConfig
from aestheticnet.pipeline.steps import StepContext, StepOutcome, run_step
from aestheticnet.pipeline.training import train_steps

__all__ = ["SHIPPED", "run_pipeline"]

# What the pipeline evaluates, exports and ships: the last epoch. Choosing the epoch with the best validation SROCC
# picks noise when validation is a few photos (one demo run went 0.52 -> 0.15 -> 0.38 over three epochs).
SHIPPED = "last.safetensors"


def _data_step(cfg: PipelineConfig, ctx: StepContext) -> tuple[StepOutcome, str]:
    def work():
        if cfg.data.path:
            root = Path(cfg.data.path)
            marker = next((root / n for n in ("AVA.txt", "mos_with_names.txt") if (root / n).exists()), None)
            return ([marker] if marker else []), {"path": str(root), "synthetic": False}
        from aestheticnet.data.synthetic import build_synthetic, default_synthetic_dir

        target = default_synthetic_dir(cfg.data.synthetic_seed)
        info = build_synthetic(target, seed=cfg.data.synthetic_seed, n_crops_per_photo=cfg.data.synthetic_crops)
        return [Path(info.path) / "AVA.txt"], {
            "path": str(info.path),
            "synthetic": True,
            "images": info.n_images,
            "mean_vote_std": info.mean_vote_std,
        }

    outcome = run_step(ctx, "data", cfg.to_dict()["data"], {}, work)
    return outcome, outcome.result["path"]


def _search_step(cfg: PipelineConfig, ctx: StepContext, data: str, upstream: dict) -> tuple[StepOutcome, str]:
    out = ctx.out_dir / "search"

    def work():
        if not cfg.search.enabled:
            from aestheticnet.nas.genotypes import resolve_genotype

            g = resolve_genotype(cfg.search.genotype or "PDARTS")
            out.mkdir(parents=True, exist_ok=True)
            g.save(out / "genotype.json")
            return [out / "genotype.json"], {"searched": False, "genotype": g.to_dict()}
        from aestheticnet.train.search import STATE_FILE, run_search

        search_cfg = cfg.search_config()
        # The synthetic data's AVA.txt carries the source photo as challenge id: search on a split by photo.
        group = {"group_by": "challenge"} if not cfg.data.path else {}
        result = run_search(
            search_cfg, data, out, resume=(out / STATE_FILE).exists(), progress=True, dataset_kwargs=group
        )
        files = [out / "genotype.json"] + [p for p in (out / "cells.png",) if p.exists()]
        return files, {
            "searched": True,
            "genotype": result.genotype.to_dict() if result.genotype else None,
            "epochs": search_cfg.total_epochs,
        }

    section = {"search": cfg.to_dict()["search"], "config": cfg.search_config().to_dict()}
    outcome = run_step(ctx, "search", section, upstream, work)
    return outcome, str(out / "genotype.json")


def _evaluate_step(cfg, ctx, variant: str, data: str, upstream: dict) -> StepOutcome:
    out = ctx.out_dir / "evaluate" / variant
    checkpoint = ctx.out_dir / "train" / variant / SHIPPED

    def work():
        from aestheticnet.pipeline.ladders import ladder_check
        from aestheticnet.train.evaluate import evaluate_checkpoint

        report = evaluate_checkpoint(checkpoint, data, out)
        files = [Path(report["files"][k]) for k in ("metrics", "distributions_png", "scatter_png")]
        ladders = ladder_check(checkpoint, data, out / "ladders")
        if ladders is not None:
            files.append(out / "ladders" / "ladders.json")
        result = {
            "metrics": report["metrics"],
            "items": report["items"],
            "split": report["split"],
            "files": report["files"],
            "ladders": ladders,
        }
        return files, result

    return run_step(ctx, f"evaluate_{variant}", {"variant": variant}, upstream, work)


def run_pipeline(
    cfg: PipelineConfig,
    out_dir: str | Path,
    log: Callable[[str], None] = print,
    stop_after: str | None = None,
    cpus: int | None = None,
) -> dict[str, Any]:
    """Run every step into ``out_dir``; returns the summary also written to ``pipeline.json``. ``cpus``: the
    cores the training steps share (default: all of this machine's)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out / "pipeline_config.json", cfg.to_dict())
    ctx = StepContext(out, log)
    t0 = time.perf_counter()
    steps: dict[str, StepOutcome] = {}

    steps["data"], data = _data_step(cfg, ctx)
    steps["search"], genotype = _search_step(cfg, ctx, data, steps["data"].outputs)
    trained = train_steps(cfg, ctx, data, genotype, steps["search"].outputs, cpus)
    for variant in cfg.train.variants:
        steps[f"train_{variant}"] = trained[variant]
        steps[f"evaluate_{variant}"] = _evaluate_step(cfg, ctx, variant, data, trained[variant].outputs)
    if stop_after != "evaluate":
        from aestheticnet.pipeline.deploy import bench_step, export_step, verify_step

        checkpoint = out / "train" / cfg.export.variant / SHIPPED
        upstream = steps[f"train_{cfg.export.variant}"].outputs
        steps["export"] = export_step(cfg, ctx, checkpoint, data, upstream)
        steps["verify"] = verify_step(cfg, ctx, checkpoint, data, steps["export"])
        steps["bench"] = bench_step(cfg, ctx, steps["export"])
        from aestheticnet.pipeline.tradeoff import tradeoff_step, wants_tradeoff

        if wants_tradeoff(cfg):
            evaluated = {v: steps[f"evaluate_{v}"] for v in cfg.train.variants}
            steps["tradeoff"] = tradeoff_step(cfg, ctx, SHIPPED, evaluated, steps["export"])

    summary = {
        "out": str(out),
        "wall_seconds": time.perf_counter() - t0,
        "steps": {
            k: {"skipped": s.skipped, "seconds": s.seconds, "result": s.result, "outputs": list(s.outputs)}
            for k, s in steps.items()
        },
    }
    from aestheticnet.pipeline.report import write_report

    summary["report"] = write_report(cfg, out, summary)
    atomic_write_json(out / "pipeline.json", summary)
    log(f"pipeline finished in {summary['wall_seconds']:.0f} s; report: {summary['report']['markdown']}")
    return json.loads(json.dumps(summary, default=str))
