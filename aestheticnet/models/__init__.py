"""Networks built from genotypes, the NIMA-MobileNetV2 baseline, the contract they keep (``ScoringModel``), their
registry and their model files."""

from aestheticnet.models.aestheticnet import (
    AestheticNet,
    AestheticNetConfig,
    AestheticNetStarConfig,
    count_parameters,
)
from aestheticnet.models.checkpoint import CheckpointError, load, read_metadata, save
from aestheticnet.models.contract import ModelConfig, Part, ScoringModel
from aestheticnet.models.mobilenet_v2 import MobileNetV2, MobileNetV2Config
from aestheticnet.models.registry import ModelEntry, create_model, get_entry, list_models, register_model

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
    "MobileNetV2",
    "MobileNetV2Config",
    "ModelEntry",
    "ModelConfig",
    "Part",
    "read_metadata",
    "register_model",
    "save",
    "ScoringModel",
]
