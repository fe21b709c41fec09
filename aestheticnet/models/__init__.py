"""Networks built from genotypes, their registry and their model files."""

from aestheticnet.models.aestheticnet import (
    AestheticNet,
    AestheticNetConfig,
    AestheticNetStarConfig,
    count_parameters,
)
from aestheticnet.models.checkpoint import CheckpointError, load, read_metadata, save
from aestheticnet.models.distribution import mean_score, score_std
from aestheticnet.models.registry import create_model, get_entry, list_models

__all__ = [
    "AestheticNet",
    "AestheticNetConfig",
    "AestheticNetStarConfig",
    "CheckpointError",
    "count_parameters",
    "create_model",
    "get_entry",
    "list_models",
    "load",
    "mean_score",
    "read_metadata",
    "save",
    "score_std",
]
