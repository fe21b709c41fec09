"""The search job: runs a :class:`SearchConfig`'s stages on the proxy data and writes the results.

Per stage (``aestheticnet.nas.strategy``): a fresh :class:`SearchNetwork` over the active ops, SGD on the weights
with a cosine schedule, Adam on the architecture weights after the warm-up epochs; each step is one
:class:`BilevelStepper` update of the architecture (architecture epochs only) and one of the weights.

Files in ``out_dir`` (written by rank 0 only, each atomically):

* ``search_config.json``: the config; ``search_state.safetensors``: the checkpoint, rewritten after every epoch
  and at every stage boundary (supernet, optimisers, scheduler, RNG, stage, epoch, active ops; no pickle);
* ``search_summary.json``: per-epoch losses, learning rate, skip dropout, time, images/s;
* ``arch_weights_stage<k>.json`` and ``arch_weights.json``: softmax weights per edge per active op at the end of
  each stage, the ops kept for the next stage;
* ``genotype.json`` (``Genotype.load`` / ``train --genotype``) and ``cells.png`` at the end.

With a latency table (``SearchConfig.latency_table``) every epoch record also holds ``expected_ms``, the
expected latency of the final network under the architecture weights, and every stage record a ``latency``
object: that expected latency, the genotype the weights give at that point and its predicted ``genotype_ms``.

A non-finite loss, architecture weight or network weight raises :class:`SearchDivergedError` before anything is
written for that epoch, so the last checkpoint is the last good one. Under ``torchrun`` every process joins a
gloo (CPU) or nccl (CUDA) group, takes its share of the batches, and gradients are averaged across processes
by explicit all-reduces (``DistContext.average_grads``).
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from aestheticnet.distributed import DistContext, init_distributed
from aestheticnet.io import atomic_write_json
from aestheticnet.nas.active_ops import full_space
from aestheticnet.nas.bilevel import BilevelStepper, SearchDivergedError, build_supernet, make_optimizers
from aestheticnet.nas.derivation import DerivationError, prune_stage
from aestheticnet.nas.genotypes import Genotype
from aestheticnet.nas.latency import EdgeCosts
from aestheticnet.nas.latency_penalty import ExpectedLatency, check_costs
from aestheticnet.nas.latency_source import load_edge_costs
from aestheticnet.nas.plot import plot_genotype
from aestheticnet.nas.search_space import SearchNetwork
from aestheticnet.nas.strategy import SearchConfig
from aestheticnet.state import StateKind, load_state, rng_state, save_state, set_rng_state
from aestheticnet.train.search_data import ProxyData, open_proxy_data

__all__ = ["SearchDivergedError", "SearchResult", "run_search", "STATE_FILE"]

log = logging.getLogger("aestheticnet.nas")

STATE_FILE = "search_state.safetensors"
_RESUME_FREE = ("workers", "preset")  # may change between an interrupted run and its resume


@dataclass
class SearchResult:
    out_dir: Path
    finished: bool
    genotype: Genotype | None
    stage: int  # next stage to run (0-based); len(stages) when finished
    epoch: int  # next epoch within that stage
    history: list[dict[str, Any]] = field(default_factory=list)
    # With a latency table: the last finished stage's expected_ms, genotype_ms and genotype (see the module doc).
    latency: dict[str, Any] | None = None


def run_search(
    config: SearchConfig,
    data: str | os.PathLike | Dataset,
    out_dir: str | os.PathLike,
    *,
    resume: bool = False,
    max_epochs: int | None = None,
    progress: bool = True,
    device: str | torch.device | None = None,
    dataset_kwargs: dict[str, Any] | None = None,
) -> SearchResult:
    """Run (or continue, with ``resume``) a search; returns after ``max_epochs`` epochs of this call if given.

    ``data`` is a dataset folder or annotation file (``open_dataset``) or a Dataset of
    ``(image, distribution, id)`` items already at ``config.resolution``.
    """
    ctx = init_distributed(device)
    try:
        return _search(config, data, Path(out_dir), ctx, resume, max_epochs, progress, dataset_kwargs)
    finally:
        ctx.shutdown()


def _search(config, data, out: Path, ctx: DistContext, resume, max_epochs, progress, dataset_kwargs) -> SearchResult:
    saved = _saved_state(config, out, resume)
    costs = None
    if config.latency_table is not None:  # read before any data, so a bad table fails first
        costs = load_edge_costs(config.latency_table)
        check_costs(costs, config.steps, f"latency table {config.latency_table}")
    if ctx.is_main:
        atomic_write_json(out / "search_config.json", config.to_dict())

    proxy = open_proxy_data(data, config, rank=ctx.rank, world_size=ctx.world_size, **(dataset_kwargs or {}))
    pos = _start_position(config, saved, ctx)
    log.info("search data: %s", proxy.describe())
    run = _Run(config, ctx, out, proxy, pos, progress, costs)
    finished = run.loop(saved, max_epochs)
    genotype = Genotype.from_dict(pos["genotype"]) if pos["genotype"] is not None else None
    if finished and ctx.is_main:
        genotype.save(out / "genotype.json")
        plot_genotype(genotype, out / "cells.png", title=f"searched cells ({config.preset}, seed {config.seed})")
        log.info("genotype written to %s", out / "genotype.json")
    latency = pos["stages"][-1].get("latency") if pos["stages"] else None
    return SearchResult(out, finished, genotype, pos["stage"], pos["epoch"], pos["history"], latency)


def _saved_state(config: SearchConfig, out: Path, resume: bool) -> dict[str, Any] | None:
    """The checkpoint to resume from (None when starting); refuses a resume without one, or with another config,
    and a fresh start over an existing search."""
    state_path = out / STATE_FILE
    if not resume:
        if state_path.exists():
            raise ValueError(
                f"{out} already holds a search ({STATE_FILE}); pass --resume to continue it or use another --out"
            )
        return None
    if not state_path.is_file():
        raise FileNotFoundError(f"search --resume: no checkpoint {state_path}; run without --resume to start")
    saved = load_state(state_path, StateKind.SEARCH)
    diffs = [k for k in SearchConfig.from_dict(saved["config"]).differences(config) if k not in _RESUME_FREE]
    if diffs:
        raise ValueError(f"search --resume: the config differs from the checkpoint's in {diffs}; {state_path}")
    return saved


def _start_position(config: SearchConfig, saved: dict[str, Any] | None, ctx: DistContext) -> dict[str, Any]:
    """Where the search starts: stage, epoch, active ops, history and genotype (the checkpoint's when resuming)."""
    if saved is None:
        return {
            "stage": 0,
            "epoch": 0,
            "active_normal": full_space(config.steps),
            "active_reduce": full_space(config.steps),
            "history": [],
            "stages": [],
            "genotype": None,
        }
    pos = {k: saved[k] for k in ("stage", "epoch", "active_normal", "active_reduce", "history", "stages")}
    pos["genotype"] = saved.get("genotype")
    if saved.get("world_size", 1) != ctx.world_size:
        log.warning(
            "resuming with %d processes, the checkpoint was written by %d",
            ctx.world_size,
            saved.get("world_size", 1),
        )
    return pos


@dataclass
class _Tally:
    """What one epoch's steps did: the losses, the images seen, and the step running now (for error messages)."""

    losses: list[float] = field(default_factory=list)
    arch_losses: list[float] = field(default_factory=list)
    images: int = 0
    step: int = 0
    started: float = field(default_factory=time.perf_counter)

    def summary(self, world_size: int) -> dict[str, Any]:
        """The epoch record's step counts, mean losses and throughput (all processes' images) up to now."""
        seconds = time.perf_counter() - self.started
        return {
            "steps": len(self.losses),
            "loss": sum(self.losses) / max(1, len(self.losses)),
            "arch_loss": sum(self.arch_losses) / len(self.arch_losses) if self.arch_losses else None,
            "seconds": seconds,
            "images_per_s": self.images * world_size / seconds if seconds > 0 else None,
        }


class _ArchBatches:
    """The architecture batches of one epoch; the architecture split is smaller than the weight split, so when it
    runs out it is gone round again, reshuffled."""

    def __init__(self, loader: DataLoader, epoch: int) -> None:
        self.loader, self.epoch, self.cycle = loader, epoch, 0
        self.batches = iter(loader)

    def next(self) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
        try:
            return next(self.batches)
        except StopIteration:
            self.cycle += 1
            self.loader.batch_sampler.set_epoch(self.epoch + 1000 * self.cycle)
            self.batches = iter(self.loader)
            return next(self.batches)


class _Run:
    def __init__(
        self,
        config: SearchConfig,
        ctx: DistContext,
        out: Path,
        proxy: ProxyData,
        pos: dict,
        progress: bool,
        costs: EdgeCosts | None,
    ):
        self.config, self.ctx, self.out, self.proxy, self.pos, self.progress = config, ctx, out, proxy, pos, progress
        self.costs = costs
        self.latency: ExpectedLatency | None = None  # the current stage's, with a table

    def where(self, stage: int, epoch: int, step: int | None = None) -> str:
        n = self.config.stages[stage]
        at = f"at stage {stage + 1}/{len(self.config.stages)}, epoch {epoch + 1}/{n.epochs}"
        at += f", step {step + 1}" if step is not None else ""
        kept = self.out / STATE_FILE
        keep = f"the last good checkpoint {kept} is kept" if kept.exists() else "no checkpoint was written yet"
        return f"{at}; search stopped, {keep}. Lower the learning rates (weight_lr, arch_lr) or check the data"

    def loop(self, saved: dict | None, max_epochs: int | None) -> bool:
        cfg, pos, done = self.config, self.pos, 0
        while pos["stage"] < len(cfg.stages):
            stage, spec = pos["stage"], cfg.stages[pos["stage"]]
            model = build_supernet(cfg, stage, pos["active_normal"], pos["active_reduce"], self.proxy.num_buckets)
            model.to(self.ctx.device)
            if self.costs is not None:
                self.latency = ExpectedLatency(self.costs, model.active_normal, model.active_reduce, self.ctx.device)
            opt_w, opt_a, sched = make_optimizers(cfg, model, spec.epochs)
            if saved is not None and "model" in saved and saved["stage"] == stage:
                model.load_state_dict(saved["model"])
                opt_w.load_state_dict(saved["optim_weights"])
                opt_a.load_state_dict(saved["optim_arch"])
                sched.load_state_dict(saved["scheduler"])
                set_rng_state(saved["rng"])
            saved = None
            while pos["epoch"] < spec.epochs:
                if max_epochs is not None and done >= max_epochs:
                    return False
                self._epoch(model, opt_w, opt_a, sched, stage, pos["epoch"])
                pos["epoch"] += 1
                done += 1
                self._save(model, opt_w, opt_a, sched)
            self._end_stage(model, stage)
            pos["stage"], pos["epoch"] = stage + 1, 0
            self._save(None, None, None, None)
        return True

    def _epoch(self, model: SearchNetwork, opt_w, opt_a, sched, stage: int, epoch: int) -> None:
        cfg, spec, ctx = self.config, self.config.stages[stage], self.ctx
        model.train()
        skip_dropout = spec.skip_dropout_at(epoch, cfg.skip_dropout_decay, cfg.skip_dropout_scale)
        model.set_skip_dropout(skip_dropout)
        train_arch = spec.trains_arch(epoch)
        lr = opt_w.param_groups[0]["lr"]
        tally = _Tally()
        stepper = BilevelStepper(
            cfg, model, opt_w, opt_a, ctx, lambda: self.where(stage, epoch, tally.step), self.latency
        )
        self._steps(stepper, tally, stage, epoch, train_arch, lr)
        sched.step()
        if not ctx.all_finite([p.detach() for p in model.parameters()]):
            raise SearchDivergedError(f"non-finite network or architecture weights {self.where(stage, epoch)}")
        record = {
            "stage": stage + 1,
            "epoch": epoch + 1,
            "cells": spec.cells,
            "arch": train_arch,
            "lr": lr,
            "skip_dropout": skip_dropout,
            **tally.summary(ctx.world_size),
        }
        if self.latency is not None:
            record["expected_ms"] = self._expected_ms(model)
        self.pos["history"].append(record)
        log.info(
            "%s: loss %.4f%s%s, %.1f s",
            self._label(stage, epoch),
            record["loss"],
            f", arch loss {record['arch_loss']:.4f}" if record["arch_loss"] is not None else "",
            f", expected {record['expected_ms']:.2f} ms" if "expected_ms" in record else "",
            record["seconds"],
        )

    def _steps(
        self, stepper: BilevelStepper, tally: _Tally, stage: int, epoch: int, train_arch: bool, lr: float
    ) -> None:
        """One pass over the weight batches: an architecture step before each weight step when ``train_arch``."""
        device = self.ctx.device
        global_epoch = sum(s.epochs for s in self.config.stages[:stage]) + epoch
        weight_loader, arch_loader = self.proxy.loaders(stage, epoch, global_epoch)
        arch_batches = _ArchBatches(arch_loader, epoch) if train_arch else None
        bar = tqdm(
            weight_loader,
            desc=self._label(stage, epoch) + (" (arch)" if train_arch else " (warm-up)"),
            leave=False,
            disable=not (self.progress and self.ctx.is_main),
            dynamic_ncols=True,
        )
        for step, (x, y, _) in enumerate(bar):
            tally.step = step
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            if arch_batches is not None:
                xa, ya, _ = arch_batches.next()
                xa, ya = xa.to(device, non_blocking=True), ya.to(device, non_blocking=True)
                tally.arch_losses.append(stepper.arch_step(xa, ya, x, y, lr))
            tally.losses.append(stepper.weight_step(x, y))
            tally.images += x.shape[0]
            bar.set_postfix(loss=f"{tally.losses[-1]:.4f}")
        bar.close()

    def _label(self, stage: int, epoch: int) -> str:
        return f"stage {stage + 1}/{len(self.config.stages)} epoch {epoch + 1}/{self.config.stages[stage].epochs}"

    def _expected_ms(self, model: SearchNetwork) -> float:
        with torch.no_grad():
            return float(self.latency(model.alphas_normal, model.alphas_reduce))

    def _latency_record(self, model: SearchNetwork, stage: int, genotype: Genotype | None) -> dict[str, Any]:
        """Expected latency and the predicted latency of the genotype the weights give now. Before the last stage
        that genotype is derived here for the report only; the search goes on with the pruned ops."""
        if genotype is None:
            try:
                genotype = model.export(self.config.max_skip_connect)
            except DerivationError as exc:  # a node whose edges hold only `none`: no genotype yet
                log.info("stage %d: no genotype to predict the latency of (%s)", stage + 1, exc)
        record = {
            "expected_ms": self._expected_ms(model),
            "genotype_ms": self.costs.genotype_ms(genotype) if genotype is not None else None,
            "genotype": genotype.to_dict() if genotype is not None else None,
        }
        predicted = f"{record['genotype_ms']:.2f} ms" if genotype is not None else "none"
        log.info(
            "stage %d/%d latency: expected %.2f ms, genotype %s (%s)",
            stage + 1,
            len(self.config.stages),
            record["expected_ms"],
            predicted,
            self.config.latency_table,
        )
        return record

    def _end_stage(self, model: SearchNetwork, stage: int) -> None:
        cfg, pos = self.config, self.pos
        probs = model.export_probs()
        p_normal, p_reduce = model.probabilities()
        record: dict[str, Any] = {"stage": stage + 1, "cells": cfg.stages[stage].cells, **probs}
        if stage + 1 < len(cfg.stages):
            keep = cfg.stages[stage + 1].ops_kept
            pos["active_normal"], pos["active_reduce"] = prune_stage(
                pos["active_normal"], p_normal, pos["active_reduce"], p_reduce, keep, cfg.steps, cfg.max_skip_connect
            )
            record["kept_normal"] = [list(ops) for ops in pos["active_normal"]]
            record["kept_reduce"] = [list(ops) for ops in pos["active_reduce"]]
            genotype = None
        else:
            genotype = model.export(cfg.max_skip_connect)
            pos["genotype"] = genotype.to_dict()
            record["genotype"] = genotype.to_dict()
        if self.latency is not None:
            record["latency"] = self._latency_record(model, stage, genotype)
        pos["stages"].append(record)
        if self.ctx.is_main:
            atomic_write_json(self.out / f"arch_weights_stage{stage + 1}.json", record)
            atomic_write_json(self.out / "arch_weights.json", {"stages": pos["stages"]})

    def _save(self, model, opt_w, opt_a, sched) -> None:
        if not self.ctx.is_main:
            return
        pos = self.pos
        state: dict[str, Any] = {
            "config": self.config.to_dict(),
            "world_size": self.ctx.world_size,
            "stage": pos["stage"],
            "epoch": pos["epoch"],
            "active_normal": [list(o) for o in pos["active_normal"]],
            "active_reduce": [list(o) for o in pos["active_reduce"]],
            "history": pos["history"],
            "stages": pos["stages"],
            "genotype": pos["genotype"],
            "rng": rng_state(),
        }
        if model is not None:
            state.update(
                model=model.state_dict(),
                optim_weights=opt_w.state_dict(),
                optim_arch=opt_a.state_dict(),
                scheduler=sched.state_dict(),
            )
        save_state(self.out / STATE_FILE, StateKind.SEARCH, state)
        atomic_write_json(self.out / "search_summary.json", {"epochs": pos["history"], "data": self.proxy.describe()})
