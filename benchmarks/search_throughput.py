"""Supernet training throughput and peak memory per P-DARTS stage.

    python benchmarks/search_throughput.py [--preset pdarts_paper] [--resolution 64] [--batch 32]
        [--init-channels 16] [--order first] [--steps 5] [--warmup 2] [--device auto] [--threads N] [--json out.json]

For every stage of the preset, a fresh process (so each stage's peak memory is its own) builds the stage's
supernet over random active ops (the stage's ``ops_kept`` per edge, none included when drawn) with the search's
own ``build_supernet`` and optimisers, and times ``--steps`` steps after ``--warmup`` untimed ones, on random
images and distributions, of the search's own :class:`~aestheticnet.nas.BilevelStepper`:

* a warm-up step: one weight update (SGD) on one batch;
* a search step: one architecture update (Adam; first order, or DARTS' unrolled step with ``--order second``) on
  one batch, then one weight update on another.

Images/s counts the weight batch only, so it is the rate at which an epoch goes through the weight split.
Peak memory: on CUDA ``torch.cuda.max_memory_allocated``; on the CPU the process's peak resident set size
(``ru_maxrss``), also shown above the process's size right after ``import torch`` (the library baseline).
Device-agnostic: ``--device auto`` takes CUDA when it is there. Prints a Markdown table; ``--json`` writes the
result.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import platform
import random
import resource
import sys
import time
from pathlib import Path


def _rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux


def search_config(args: dict):
    """A search config of the preset's stages at this size; the preset's other settings stay out (a latency weight
    needs a latency table, which this benchmark does not take)."""
    from aestheticnet.nas import SearchConfig, preset_stages

    return SearchConfig(
        stages=preset_stages(args["preset"]),
        resolution=args["resolution"],
        batch_size=args["batch"],
        init_channels=args["init_channels"],
        order=args["order"],
    )


def stage_stepper(config, stage: int, device):
    """The stage's supernet over random active ops, and the search's stepper on it."""
    from aestheticnet.distributed import DistContext
    from aestheticnet.nas import PRIMITIVES, BilevelStepper, build_supernet, cell_edges, make_optimizers

    spec, rng = config.stages[stage], random.Random(stage)

    def random_active():
        edges = cell_edges(config.steps)
        return tuple(tuple(sorted(rng.sample(PRIMITIVES, spec.ops_kept), key=PRIMITIVES.index)) for _ in edges)

    def where() -> str:
        return f"in stage {stage + 1} of the throughput benchmark"

    model = build_supernet(config, stage, random_active(), random_active(), num_buckets=10)
    model.to(device).train()
    model.set_skip_dropout(spec.skip_dropout)
    opt_w, opt_a, _ = make_optimizers(config, model, spec.epochs)
    return BilevelStepper(config, model, opt_w, opt_a, DistContext(device=device), where)


def time_steps(stepper, args: dict, device) -> dict:
    """Seconds per step and images/s of the warm-up and the search step, on random batches."""
    import torch

    b, r = args["batch"], args["resolution"]
    x, xa = (torch.randn(b, 3, r, r, device=device) for _ in range(2))
    y, ya = (torch.softmax(torch.randn(b, 10, device=device), dim=1) for _ in range(2))
    lr = stepper.opt_w.param_groups[0]["lr"]
    steps = {
        "warmup": lambda: stepper.weight_step(x, y),
        "search": lambda: (stepper.arch_step(xa, ya, x, y, lr), stepper.weight_step(x, y)),
    }
    row = {}
    for mode, step in steps.items():
        for _ in range(args["warmup"]):
            step()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        t0 = time.perf_counter()
        for _ in range(args["steps"]):
            step()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        seconds = (time.perf_counter() - t0) / args["steps"]
        row[f"{mode}_step_s"] = seconds
        row[f"{mode}_img_per_s"] = b / seconds
    return row


def _stage_worker(args: dict, stage: int, queue) -> None:
    import torch

    base_rss = _rss_mib()
    if args["threads"]:
        torch.set_num_threads(args["threads"])
    device = torch.device(args["device"])
    config = search_config(args)
    stepper = stage_stepper(config, stage, device)
    spec = config.stages[stage]
    row = {"stage": stage + 1, "cells": spec.cells, "ops_per_edge": spec.ops_kept}
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    row.update(time_steps(stepper, args, device))
    if device.type == "cuda":
        row["peak_mem_mib"] = torch.cuda.max_memory_allocated(device) / 2**20
    else:
        row["peak_mem_mib"] = _rss_mib()
        row["base_rss_mib"] = base_rss
    row["params_m"] = sum(p.numel() for p in stepper.weights) / 1e6
    queue.put(row)


def parse_args() -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="pdarts_paper")
    ap.add_argument("--resolution", type=int, default=64)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--init-channels", type=int, default=16)
    ap.add_argument("--order", choices=("first", "second"), default="first", help="the architecture step's order")
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    ap.add_argument("--stages", default="", help="comma-separated stage numbers to run (default: all)")
    ap.add_argument("--json", type=Path, default=None)
    args = vars(ap.parse_args())
    if args["steps"] < 1 or args["warmup"] < 0:
        ap.error("--steps needs at least 1, --warmup 0 or more")
    return args


def markdown(result: dict) -> str:
    c = result["config"]
    lines = [
        (
            f"{c['preset']} supernet, {c['resolution']} px, batch {c['batch']}, C={c['init_channels']}, {c['order']} "
            f"order, device {c['device']} ({result['device_name']}), threads {result['threads']}, torch "
            f"{result['torch']}; peak memory of each stage's own process (after `import torch`: the library's)."
        ),
        "",
        "| stage | cells | ops per edge | params M | warm-up img/s | search img/s | search step s | peak MiB |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in result["rows"]:
        base = f" (after import torch: {r['base_rss_mib']:.0f})" if "base_rss_mib" in r else ""
        lines.append(
            f"| {r['stage']} | {r['cells']} | {r['ops_per_edge']} | {r['params_m']:.3f} | {r['warmup_img_per_s']:.1f} "
            f"| {r['search_img_per_s']:.1f} | {r['search_step_s']:.3f} | {r['peak_mem_mib']:.0f}{base} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    args = parse_args()
    import torch

    from aestheticnet.bench import machine_info
    from aestheticnet.io import atomic_write_json

    if args["device"] == "auto":
        args["device"] = "cuda" if torch.cuda.is_available() else "cpu"
    n_stages = len(search_config(args).stages)
    wanted = [int(s) - 1 for s in args["stages"].split(",") if s] or list(range(n_stages))
    ctx = mp.get_context("spawn")  # a fresh process per stage: peak memory is that stage's alone
    rows = []
    for stage in wanted:
        queue = ctx.Queue()
        proc = ctx.Process(target=_stage_worker, args=(args, stage, queue))
        proc.start()
        rows.append(queue.get())
        proc.join()
    device_name = torch.cuda.get_device_name(0) if args["device"].startswith("cuda") else platform.processor() or "cpu"
    threads = args["threads"] or torch.get_num_threads()
    config = {k: str(v) if isinstance(v, Path) else v for k, v in args.items()}
    result = {"config": config, "device_name": device_name, "threads": threads, "torch": torch.__version__}
    result.update(rows=rows, machine=machine_info())
    print(markdown(result))
    if args["json"]:
        atomic_write_json(args["json"], result)
        print(f"wrote {args['json']}", file=sys.stderr)


if __name__ == "__main__":
    main()
