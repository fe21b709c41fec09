"""One training and what a benchmark reports of it: the last epoch's metrics on the whole validation split and its
ladder rho on the validation photos, kept in ``result.json`` so that a finished training is not run again."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from aestheticnet.io import atomic_write_json
from aestheticnet.pipeline.ladders import ladder_check
from aestheticnet.train import STATE_FILE, TrainConfig, evaluate_checkpoint, train
from aestheticnet.train.trainer import resume_differences

__all__ = ["RESULT_FILE", "train_and_score"]

RESULT_FILE = "result.json"


def train_and_score(cfg: TrainConfig, out: str | Path, progress: bool = True) -> dict[str, Any]:
    """Train ``cfg`` in ``out`` (resuming an interrupted run there), then score ``last.safetensors``: nothing is
    selected on validation. Returns ``{"config", "train_seconds", "items", "metrics", "ladders"}``; when ``out``
    already holds that result it is returned without training, if it was trained with the same settings."""
    out = Path(out)
    done = out / RESULT_FILE
    if done.exists():
        saved = json.loads(done.read_text())
        differ = resume_differences(saved["config"], cfg)
        if differ:
            raise ValueError(f"{done} was trained with other {', '.join(differ)}: remove {out} or use another folder")
        return saved
    t0 = time.perf_counter()
    train(cfg, out, resume=(out / STATE_FILE).exists(), progress=progress)
    seconds = time.perf_counter() - t0
    last = out / "last.safetensors"
    evaluation = evaluate_checkpoint(last, cfg.data, out / "eval")
    result = {
        "config": cfg.to_dict(),
        "train_seconds": round(seconds),
        "items": evaluation["items"],
        "metrics": evaluation["metrics"],
        "ladders": ladder_check(last, cfg.data, out / "ladders", threads=cfg.threads),
    }
    atomic_write_json(done, result)
    return result
