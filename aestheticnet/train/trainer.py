"""The training loop: SGD with momentum and a cosine schedule, EMD / SW-EMD loss, resumable bit for bit.

Files in the run folder (only rank 0 writes):
  train_config.json        the TrainConfig
  train_state.safetensors  model + optimizer + scheduler + RNG + epoch, written atomically every epoch
  last.safetensors         model file of the last epoch (aestheticnet.models.load reads it)
  best.safetensors         model file of the best epoch by validation SROCC
  metrics.jsonl            one JSON line per epoch

Resuming restores everything the next epoch depends on (weights, momentum buffers, schedule, the torch /
numpy / python RNG streams, epoch, best score); data order and augmentation are functions of (seed, epoch,
index), so a resumed run ends with the same weights as an uninterrupted one on the CPU.
"""

from __future__ import annotations

import dataclasses
import json
import time
import warnings
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from aestheticnet.io import atomic_write_json
from aestheticnet.losses import make_loss, pairwise_rank_loss
from aestheticnet.metrics import evaluate_distributions
from aestheticnet.models.checkpoint import save as save_model
from aestheticnet.models.contract import ScoringModel
from aestheticnet.models.registry import create_model, get_entry
from aestheticnet.train.config import RESUME_FREE, TrainConfig
from aestheticnet.data.base import AestheticDataset
from aestheticnet.data.preprocess import Preprocess
from aestheticnet.data.sampler import BatchGrouping, EpochDraw, score_balance_weights
from aestheticnet.train.ema import WeightAverage
from aestheticnet.train.data import make_loader, open_split, predict, preprocess_for, split_options
from aestheticnet.distributed import DistContext, init_distributed
from aestheticnet.state import StateKind, load_state, rng_state, save_state, set_rng_state

__all__ = ["train", "STATE_FILE", "CONFIG_FILE", "METRICS_FILE"]

STATE_FILE = "train_state.safetensors"
CONFIG_FILE = "train_config.json"
METRICS_FILE = "metrics.jsonl"


class _TrainStep(nn.Module):
    """DDP wraps ``forward`` only; this forward returns the main and auxiliary distributions."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor):
        return self.model.forward_train(x)


def resume_differences(saved: dict[str, Any], cfg: TrainConfig) -> list[str]:
    """The settings of ``cfg`` that differ from a run folder's saved ``train_config.json`` and forbid resuming it
    (thread counts, loader workers and the data path may differ)."""
    current, defaults = _as_json(cfg.to_dict()), _as_json(TrainConfig().to_dict())
    # A key the saved run does not know yet was at its default there.
    return sorted(k for k in current if k not in RESUME_FREE and saved.get(k, defaults[k]) != current[k])


def _as_json(values: dict[str, Any]) -> dict[str, Any]:
    return json.loads(json.dumps(values))


def epoch_line(record: dict[str, Any], epochs: int) -> str:
    """One epoch's summary as training prints it."""
    v = record["val"]
    return (
        f"epoch {record['epoch'] + 1}/{epochs} loss {record['train_loss']:.4f} "
        f"({record['train_images_per_s']:.1f} img/s)  val srocc {v['srocc']:.3f} plcc {v['plcc']:.3f} "
        f"acc {v['accuracy']:.3f} emd_r2 {v['emd_r2']:.4f}"
    )


def _check_resumable(saved: dict[str, Any], cfg: TrainConfig, out: Path) -> None:
    current = cfg.to_dict()
    diff = resume_differences(saved, cfg)
    if diff:
        changes = ", ".join(f"{k}: {saved.get(k)!r} -> {current[k]!r}" for k in diff)
        raise ValueError(
            f"{out / CONFIG_FILE}: cannot resume with a different configuration ({changes}); "
            "use the saved values or a new --out folder"
        )


def _rewrite_metrics(path: Path, keep_before_epoch: int) -> None:
    """Drop lines of epochs that will be run again (written after the last saved state)."""
    if not path.exists():
        return
    lines = [ln for ln in path.read_text().splitlines() if ln.strip()]
    kept = [ln for ln in lines if json.loads(ln).get("epoch", 0) < keep_before_epoch]
    path.write_text("".join(ln + "\n" for ln in kept))


def train(
    cfg: TrainConfig,
    out_dir: str | Path,
    *,
    resume: bool = False,
    stop_after_epoch: int | None = None,
    progress: bool = True,
    on_epoch_end: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Train (or resume) into ``out_dir``; returns a summary with the last and best validation metrics.

    ``stop_after_epoch`` ends the run after that many epochs in total, as an interruption would (tests,
    pipelines with a time budget); ``resume`` continues it.
    """
    out = Path(out_dir)
    ctx = init_distributed()
    try:
        run = _TrainingRun(cfg, out, ctx, resume, progress, on_epoch_end)
        last_epoch = cfg.epochs if stop_after_epoch is None else min(cfg.epochs, stop_after_epoch)
        record = run.run(last_epoch)
        return {
            "out": str(out),
            "epochs_done": last_epoch,
            "last": record,
            "best": run.best,
            "train_items": len(run.train_ds),
            "val_items": len(run.val_ds),
        }
    finally:
        ctx.shutdown()


def _check_run_folder(cfg: TrainConfig, out: Path, resume: bool) -> Path:
    state_path = out / STATE_FILE
    if resume and not state_path.exists():
        raise ValueError(f"--resume: {state_path} does not exist; start without --resume")
    if not resume and state_path.exists():
        raise ValueError(f"{out} already holds a run ({STATE_FILE}); pass --resume to continue it or pick a new --out")
    if resume and (out / CONFIG_FILE).exists():
        _check_resumable(json.loads((out / CONFIG_FILE).read_text()), cfg, out)
    return state_path


# AestheticNet's architecture fields: a variant whose config has none of them (the baseline) is built without them,
# so that one training config and the pipeline's searched genotype serve every variant.
_ARCHITECTURE = ("genotype", "init_channels", "layers", "drop_path", "auxiliary")


def _build_model(cfg: TrainConfig, num_buckets: int) -> ScoringModel:
    """The network of ``cfg.variant``. Options set in ``cfg`` that the variant does not have are refused by name."""
    settings = {
        "genotype": cfg.genotype,
        "init_channels": cfg.init_channels,
        "layers": cfg.layers,
        "drop_path": cfg.drop_path,
        "auxiliary": cfg.auxiliary_weight > 0,
    }
    optional = {"cbam": cfg.cbam, "dilation": cfg.dilation, "input_norm": cfg.input_norm, "width": cfg.width}
    settings.update({k: v for k, v in optional.items() if v is not None})
    own = {f.name for f in dataclasses.fields(get_entry(cfg.variant).config_cls)}
    if not own & set(_ARCHITECTURE):
        settings = {k: v for k, v in settings.items() if k not in _ARCHITECTURE}
    unknown = sorted(set(settings) - own)
    if unknown:
        raise ValueError(
            f"training config: variant {cfg.variant!r} has no {', '.join(unknown)}; leave "
            f"{'it' if len(unknown) == 1 else 'them'} unset for this variant"
        )
    return create_model(cfg.variant, num_buckets=num_buckets, **settings)


class _TrainingRun:
    """One call of :func:`train`: data, network, optimiser and the files of the run folder."""

    def __init__(self, cfg: TrainConfig, out: Path, ctx: DistContext, resume: bool, progress: bool, on_epoch_end):
        self.cfg, self.out, self.ctx, self.progress, self.on_epoch_end = cfg, out, ctx, progress, on_epoch_end
        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        self.state_path = _check_run_folder(cfg, out, resume)
        # Every random draw below (weights, augmentation, order) follows from these seeds, in this order.
        torch.manual_seed(cfg.seed)
        np.random.seed(cfg.seed)
        self.preprocess: Preprocess = preprocess_for(
            cfg.variant, cfg.image_size, cfg.max_side, cfg.policy, cfg.train_crop
        )
        splitting = split_options(cfg.to_dict())
        self.train_ds: AestheticDataset = open_split(
            cfg.data, "train", self.preprocess, splitting, train=True, max_items=cfg.max_train_items
        )
        self.val_ds: AestheticDataset = open_split(
            cfg.data, "val", self.preprocess, splitting, train=False, max_items=cfg.max_val_items
        )
        self.model = _build_model(cfg, self.train_ds.num_buckets).to(ctx.device)
        self.average = WeightAverage(self.model, cfg.ema_decay) if cfg.ema_decay > 0 else None
        self.step_module: nn.Module = _TrainStep(self.model)
        if ctx.distributed:
            self.step_module = nn.parallel.DistributedDataParallel(
                self.step_module, device_ids=[ctx.device.index] if ctx.device.type == "cuda" else None
            )
        self.optimizer = torch.optim.SGD(
            self.model.parameters(), lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay
        )
        self.scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(
            self.optimizer, T_max=cfg.epochs, eta_min=cfg.lr_min
        )
        self.criterion = make_loss(cfg.loss, r=cfg.loss_r, lam=cfg.loss_lam)
        # Source photo of every training image, as an integer per id, for the ranking loss's pairs.
        photo_index: dict[str, int] = {}
        self.group_of = {r.id: photo_index.setdefault(r.group, len(photo_index)) for r in self.train_ds.records}
        if cfg.rank_weight > 0 and len(photo_index) == len(self.train_ds.records) and ctx.is_main:
            # Not an error: the pipeline's defaults ask for it, and on AVA split by image it simply has no pairs.
            warnings.warn(
                f"rank_weight={cfg.rank_weight} ranks images of one source photo against each other, but every "
                f"training image of {cfg.data} is its own group (group_by={cfg.group_by!r}), so it adds nothing; "
                "group them by photo (group_by='challenge' for the synthetic datasets) or set rank_weight=0",
                stacklevel=2,
            )
        self.start_epoch, self.best = 0, {"srocc": -float("inf"), "epoch": -1}
        if resume:
            self._restore()
        if ctx.is_main:
            out.mkdir(parents=True, exist_ok=True)
            atomic_write_json(out / CONFIG_FILE, cfg.to_dict())
            _rewrite_metrics(out / METRICS_FILE, self.start_epoch)

    def _restore(self) -> None:
        state = load_state(self.state_path, StateKind.TRAIN)
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        if self.average is not None:  # the saved config matched (_check_resumable), so the average was saved
            self.average.load_state_dict(state["average"])
        set_rng_state(state["rng"])
        self.start_epoch, self.best = int(state["epoch"]) + 1, dict(state["best"])

    def _grouping(self) -> BatchGrouping | None:
        """Batches of ``photos_per_batch`` source photos, for the ranking loss's pairs within a photo."""
        if not self.cfg.photos_per_batch:
            return None
        groups = tuple(self.group_of[record.id] for record in self.train_ds.records)
        return BatchGrouping(groups, self.cfg.photos_per_batch)

    def _balance_weights(self) -> np.ndarray | None:
        """Drawing weights that even out the training scores, or None to draw every image once per epoch."""
        if not self.cfg.balance_scores:
            return None
        return score_balance_weights(self.train_ds.mean_scores(), self.cfg.balance_scores)

    def run(self, last_epoch: int) -> dict[str, Any]:
        cfg, ctx = self.cfg, self.ctx
        loader, sampler = make_loader(
            self.train_ds,
            cfg.batch_size,
            shuffle=True,
            seed=cfg.seed,
            num_workers=cfg.num_workers,
            num_replicas=ctx.world_size,
            rank=ctx.rank,
            draw=EpochDraw(self._grouping(), self._balance_weights()),
        )
        record: dict[str, Any] = {}
        for epoch in range(self.start_epoch, last_epoch):
            self.model.train()
            self.model.set_training_progress(epoch, cfg.epochs)
            sampler.set_epoch(epoch)
            self.train_ds.set_epoch(epoch)
            record = self._train_epoch(loader, epoch)
            if ctx.is_main:
                self._validate_and_save(record, epoch)
            ctx.barrier()
        return record

    def _train_epoch(self, loader, epoch: int) -> dict[str, Any]:
        cfg, ctx = self.cfg, self.ctx
        lr = self.optimizer.param_groups[0]["lr"]
        seen, loss_sum, t0 = 0, 0.0, time.perf_counter()
        bar = tqdm(
            loader,
            desc=f"epoch {epoch + 1}/{cfg.epochs}",
            disable=not (self.progress and ctx.is_main),
            leave=False,
            unit="batch",
        )
        for x, y, ids in bar:
            x, y = x.to(ctx.device), y.to(ctx.device)
            dist_pred, aux = self.step_module(x)
            loss = self.criterion(dist_pred, y)
            if cfg.rank_weight > 0:
                groups = torch.tensor([self.group_of[i] for i in ids], device=ctx.device)
                loss = loss + cfg.rank_weight * pairwise_rank_loss(dist_pred, y, groups)
            if aux is not None:
                loss = loss + cfg.auxiliary_weight * self.criterion(aux, y)
            if not torch.isfinite(loss):
                raise FloatingPointError(
                    f"epoch {epoch + 1}: the loss became {loss.item()}; lower --lr or raise --grad-clip "
                    f"(the last good state is in {self.state_path})"
                )
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if cfg.grad_clip > 0:
                nn.utils.clip_grad_norm_(self.model.parameters(), cfg.grad_clip)
            self.optimizer.step()
            if self.average is not None:
                self.average.update(self.model)
            seen += x.shape[0]
            loss_sum += loss.item() * x.shape[0]
            bar.set_postfix(loss=f"{loss_sum / seen:.4f}", img_s=f"{seen / (time.perf_counter() - t0):.1f}")
        train_seconds = time.perf_counter() - t0
        self.scheduler.step()
        return {
            "epoch": epoch,
            "lr": lr,
            "train_loss": loss_sum / max(seen, 1),
            "train_images_per_s": seen * ctx.world_size / train_seconds,
            "train_seconds": train_seconds,
        }

    def _validate_and_save(self, record: dict[str, Any], epoch: int) -> None:
        cfg, out = self.cfg, self.out
        # What is validated is what is saved: the weight average when there is one.
        model = self.average.module if self.average is not None else self.model
        t1 = time.perf_counter()
        pred, target, _ = predict(model, self.val_ds, batch_size=cfg.batch_size, num_workers=cfg.num_workers)
        record["val"] = evaluate_distributions(pred, target)
        record["val_seconds"] = time.perf_counter() - t1
        improved = record["val"]["srocc"] > self.best["srocc"]
        if improved:
            self.best = {"srocc": record["val"]["srocc"], "epoch": epoch}
        extra = {"epoch": epoch, "val": record["val"], "train_config": cfg.to_dict()}
        with open(out / METRICS_FILE, "a") as f:
            f.write(json.dumps(record) + "\n")
        save_model(model, out / "last.safetensors", preprocess=self.preprocess.to_dict(), extra=extra)
        if improved:
            save_model(model, out / "best.safetensors", preprocess=self.preprocess.to_dict(), extra=extra)
        # Written last: a crash before this line re-runs the epoch on resume, never skips it.
        state = {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "rng": rng_state(),
            "epoch": epoch,
            "best": self.best,
        }
        if self.average is not None:
            state["average"] = self.average.state_dict()
        save_state(self.state_path, StateKind.TRAIN, state)
        if self.progress:
            tqdm.write(epoch_line(record, cfg.epochs))
        if self.on_epoch_end is not None:
            self.on_epoch_end(record)
