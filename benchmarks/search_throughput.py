"""Supernet training throughput and peak memory per P-DARTS stage.

    python benchmarks/search_throughput.py [--preset pdarts_paper] [--resolution 64] [--batch 32]
        [--init-channels 16] [--steps 5] [--warmup 2] [--device auto] [--threads N] [--json out.json]

For every stage of the preset, a fresh process (so each stage's peak memory is its own) builds the stage's
supernet over random active ops (the stage's ``ops_kept`` per edge, none included when drawn) and times
``--steps`` steps after ``--warmup`` untimed ones, on random images and distributions, for

* a warm-up step: one weight update (SGD) on one batch;
* a search step: one first-order architecture update (Adam) on one batch, then one weight update on another.

Images/s counts the weight batch only, so it is the rate at which an epoch goes through the weight split.
Peak memory: on CUDA ``torch.cuda.max_memory_allocated``; on the CPU the process's peak resident set size
(``ru_maxrss``), also shown above the process's size right after ``import torch`` (the library baseline).
Device-agnostic: ``--device auto`` takes CUDA when it is there. Prints a table; ``--json`` writes the rows.
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


def _stage_worker(args: dict, stage_index: int, queue) -> None:
    import torch

    base_rss = _rss_mib()
    if args["threads"]:
        torch.set_num_threads(args["threads"])
    from aestheticnet.losses import make_loss
    from aestheticnet.nas.operations import PRIMITIVES
    from aestheticnet.nas.active_ops import cell_edges
    from aestheticnet.nas.search_space import SearchNetwork
    from aestheticnet.nas.strategy import preset_stages

    device = torch.device(args["device"])
    spec = preset_stages(args["preset"])[stage_index]
    rng = random.Random(stage_index)

    def random_active():
        return tuple(tuple(sorted(rng.sample(PRIMITIVES, spec.ops_kept), key=PRIMITIVES.index)) for _ in cell_edges(4))

    torch.manual_seed(0)
    model = SearchNetwork(random_active(), random_active(), layers=spec.cells, init_channels=args["init_channels"])
    model.to(device).train()
    model.set_skip_dropout(spec.skip_dropout)
    opt_w = torch.optim.SGD(model.weight_parameters(), 0.025, momentum=0.9, weight_decay=3e-4)
    opt_a = torch.optim.Adam(model.arch_parameters(), lr=6e-4, betas=(0.5, 0.999), weight_decay=1e-3)
    criterion = make_loss("sw_emd")
    b, r = args["batch"], args["resolution"]
    x = torch.randn(b, 3, r, r, device=device)
    y = torch.softmax(torch.randn(b, 10, device=device), dim=1)

    def weight_step():
        opt_w.zero_grad(set_to_none=True)
        criterion(model(x), y).backward(inputs=model.weight_parameters())
        torch.nn.utils.clip_grad_norm_(model.weight_parameters(), 5.0)
        opt_w.step()

    def arch_step():
        opt_a.zero_grad(set_to_none=True)
        grads = torch.autograd.grad(criterion(model(x), y), model.arch_parameters())
        for a, g in zip(model.arch_parameters(), grads):
            a.grad = g
        opt_a.step()

    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    row = {"stage": stage_index + 1, "cells": spec.cells, "ops_per_edge": spec.ops_kept}
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    for mode, step in (("warmup", weight_step), ("search", lambda: (arch_step(), weight_step()))):
        for _ in range(args["warmup"]):
            step()
        sync()
        t0 = time.perf_counter()
        for _ in range(args["steps"]):
            step()
        sync()
        seconds = (time.perf_counter() - t0) / args["steps"]
        row[f"{mode}_step_s"] = seconds
        row[f"{mode}_img_per_s"] = b / seconds
    if device.type == "cuda":
        row["peak_mem_mib"] = torch.cuda.max_memory_allocated(device) / 2**20
    else:
        row["peak_mem_mib"] = _rss_mib()
        row["base_rss_mib"] = base_rss
    row["params_m"] = sum(p.numel() for p in model.weight_parameters()) / 1e6
    queue.put(row)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="pdarts_paper")
    ap.add_argument("--resolution", type=int, default=64)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--init-channels", type=int, default=16)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    ap.add_argument("--stages", default="", help="comma-separated stage numbers to run (default: all)")
    ap.add_argument("--json", type=Path, default=None)
    args = vars(ap.parse_args())

    import torch

    from aestheticnet.nas.strategy import preset_stages

    if args["device"] == "auto":
        args["device"] = "cuda" if torch.cuda.is_available() else "cpu"
    n_stages = len(preset_stages(args["preset"]))
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
    print(
        f"# {args['preset']} supernet, {args['resolution']}px, batch {args['batch']}, C={args['init_channels']}, "
        f"device {args['device']} ({device_name}), threads {threads}, torch {torch.__version__}"
    )
    print(
        f"{'stage':>5} {'cells':>5} {'ops':>4} {'params M':>8} {'warm-up img/s':>13} {'search img/s':>12} "
        f"{'search step s':>13} {'peak MiB':>9}"
    )
    for r in rows:
        print(
            f"{r['stage']:>5} {r['cells']:>5} {r['ops_per_edge']:>4} {r['params_m']:>8.3f} "
            f"{r['warmup_img_per_s']:>13.1f} {r['search_img_per_s']:>12.1f} {r['search_step_s']:>13.3f} "
            f"{r['peak_mem_mib']:>9.0f}"
            + (f"  (after import torch: {r['base_rss_mib']:.0f})" if "base_rss_mib" in r else "")
        )
    if args["json"]:
        from aestheticnet.io import atomic_write_json

        config = {k: str(v) if isinstance(v, Path) else v for k, v in args.items()}
        atomic_write_json(
            args["json"],
            {
                "config": config,
                "device_name": device_name,
                "threads": threads,
                "torch": torch.__version__,
                "rows": rows,
            },
        )
        print(f"wrote {args['json']}", file=sys.stderr)


if __name__ == "__main__":
    main()
