"""The pipeline's training steps: one per variant, run one after the other or at the same time.

On a small CPU the variants train faster side by side, each in its own process on its share of the cores, than
one after the other on all of them: training a 5-cell network on 2 cores scales poorly from 1 thread to 2
(about 50 against 57 images/s), so two 1-thread runs of the demo's two networks took 204 s together against
308 s in turn. Each concurrent run lives in a spawned process (torch's thread count is per process) and prints
one line per epoch instead of a progress bar, so that the two do not overwrite each other.
"""

from __future__ import annotations

import functools
import json
import multiprocessing
import os
import time
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path
from typing import Any

from aestheticnet.lifetime import bind_to_parent
from aestheticnet.pipeline.steps import StepContext, StepOutcome, run_step
from aestheticnet.train.config import TrainConfig

__all__ = ["concurrent_runs", "train_steps"]


def concurrent_runs(variants: int, parallel: bool, cpus: int) -> int:
    """How many variants train at once: all of them when ``parallel`` and there is a core for each, else 1."""
    return min(variants, cpus) if parallel and variants > 1 and cpus > 1 else 1


def train_steps(
    cfg, ctx: StepContext, data: str, genotype: str, upstream: dict, cpus: int | None = None
) -> dict[str, StepOutcome]:
    """``{variant: outcome}`` for every variant of ``cfg.train``, the runs sharing ``cpus`` cores (default: all of
    this machine's); see the module docstring."""
    cpus = cpus if cpus is not None else (os.cpu_count() or 1)
    variants = cfg.train.variants
    runs = concurrent_runs(len(variants), cfg.train.parallel, cpus)
    if runs == 1:
        return {v: _train_step(cfg, ctx, v, data, genotype, upstream, None) for v in variants}
    threads = max(1, cpus // runs)
    with ThreadPoolExecutor(runs) as pool:
        futures = {v: pool.submit(_train_step, cfg, ctx, v, data, genotype, upstream, threads) for v in variants}
        return {v: f.result() for v, f in futures.items()}


def _train_step(
    cfg, ctx: StepContext, variant: str, data: str, genotype: str, upstream: dict, threads: int | None
) -> StepOutcome:
    out = ctx.out_dir / "train" / variant
    train_cfg: TrainConfig = cfg.train_config(variant, data, genotype)

    def work():
        from aestheticnet.train.trainer import CONFIG_FILE, STATE_FILE, resume_differences, train

        saved = out / CONFIG_FILE
        if saved.exists() and resume_differences(json.loads(saved.read_text()), train_cfg):
            # The settings changed: that run cannot be resumed. Keep it aside rather than delete anyone's work.
            aside = out.with_name(f"{variant}.replaced-{time.strftime('%Y%m%d-%H%M%S')}")
            out.rename(aside)
            ctx.log(f"[train_{variant}] settings changed; the previous run was moved to {aside}")
        resume = (out / STATE_FILE).exists()
        if threads is None:
            summary = train(train_cfg, out, resume=resume)
        else:
            run_cfg = train_cfg if train_cfg.threads else train_cfg.replace(threads=threads)
            spawn = multiprocessing.get_context("spawn")
            with ProcessPoolExecutor(1, spawn, initializer=bind_to_parent, initargs=(os.getpid(),)) as child:
                summary = child.submit(_train_in_child, run_cfg, str(out), resume, f"[train_{variant}]").result()
        return [out / "best.safetensors", out / "last.safetensors"], {
            "best": summary["best"],
            "epochs": summary["epochs_done"],
        }

    return run_step(ctx, f"train_{variant}", train_cfg.to_dict(), upstream, work)


def _train_in_child(cfg: TrainConfig, out: str, resume: bool, label: str) -> dict[str, Any]:
    from aestheticnet.train.trainer import train

    summary = train(
        cfg, Path(out), resume=resume, progress=False, on_epoch_end=functools.partial(_print_epoch, label, cfg.epochs)
    )
    return json.loads(json.dumps(summary, default=str))


def _print_epoch(label: str, epochs: int, record: dict[str, Any]) -> None:
    from aestheticnet.train.trainer import epoch_line

    print(f"{label} {epoch_line(record, epochs)}", flush=True)
