"""Training and searching on data: ``train`` (a :class:`TrainConfig` run with its files and resume), ``run_search``
(a search config's stages on the proxy data), evaluation of a checkpoint, and the splits both read."""

from __future__ import annotations

from aestheticnet.train.config import TrainConfig, load_config
from aestheticnet.train.data import SplitOptions, open_split, predict, preprocess_for, split_ids
from aestheticnet.train.ema import WeightAverage
from aestheticnet.train.evaluate import evaluate_checkpoint
from aestheticnet.train.search import STATE_FILE as SEARCH_STATE_FILE
from aestheticnet.train.search import SearchResult, run_search
from aestheticnet.train.trainer import CONFIG_FILE, METRICS_FILE, STATE_FILE, train

__all__ = [
    "CONFIG_FILE",
    "METRICS_FILE",
    "SEARCH_STATE_FILE",
    "STATE_FILE",
    "SearchResult",
    "SplitOptions",
    "TrainConfig",
    "WeightAverage",
    "evaluate_checkpoint",
    "load_config",
    "open_split",
    "predict",
    "preprocess_for",
    "run_search",
    "split_ids",
    "train",
]
