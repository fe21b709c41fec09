"""A small registry of model variants: name -> config class, network class, default preprocessing, description.

Each variant is a config class with its own defaults, so a checkpoint's metadata (variant + config dict)
rebuilds exactly the network that was saved. Besides the searched networks it holds NIMA-MobileNetV2, the
hand-designed baseline, so that the baseline is saved, exported, verified and benchmarked by the same routes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from aestheticnet.imagenet import IMAGENET_MEAN, IMAGENET_STD
from aestheticnet.models.aestheticnet import AestheticNet, AestheticNetConfig, AestheticNetStarConfig
from aestheticnet.models.contract import ScoringModel
from aestheticnet.models.mobilenet_v2 import MobileNetV2, MobileNetV2Config
from aestheticnet.registry import Registry

__all__ = ["ModelEntry", "MODELS", "register_model", "list_models", "get_entry", "create_model", "build_model"]


@dataclass(frozen=True)
class ModelEntry:
    name: str
    config_cls: type  # a frozen dataclass with replace, to_dict, from_dict, num_buckets and input_multiple
    preprocess: dict[str, Any]
    description: str
    # (config, variant, preprocessing, metadata) -> the network; config is a config_cls value
    network: Callable[..., ScoringModel] = AestheticNet
    # A hand-designed network the searched ones are compared with: the pipeline plots every trained variant's
    # accuracy against its latency when one of its variants is a baseline.
    baseline: bool = False


MODELS: Registry[ModelEntry] = Registry("model variant", ValueError)


def register_model(entry: ModelEntry) -> ModelEntry:
    return MODELS.register(entry.name, entry)


def list_models() -> list[str]:
    return MODELS.names()


def get_entry(name: str) -> ModelEntry:
    return MODELS.get(name)


def build_model(
    name: str,
    config: Any,
    preprocessing: Mapping[str, Any] | None = None,
    metadata: dict[str, Any] | None = None,
) -> ScoringModel:
    """Variant ``name`` of ``config``; ``preprocessing`` defaults to the variant's, ``metadata`` is a model file's
    header when the network is loaded from one."""
    entry = get_entry(name)
    if not isinstance(config, entry.config_cls):
        raise TypeError(f"variant {name!r} needs a {entry.config_cls.__name__}, got {type(config).__name__}")
    return entry.network(config, name, entry.preprocess if preprocessing is None else preprocessing, metadata)


def create_model(name: str, **overrides: Any) -> ScoringModel:
    """Build a registered variant; keyword arguments override config fields (``genotype`` may be a name/path)."""
    entry = get_entry(name)
    config = entry.config_cls().replace(**overrides) if overrides else entry.config_cls()
    return build_model(name, config)


def _imagenet_preprocess(policy: str, max_side: int) -> dict[str, Any]:
    """Input size 224 (as the networks were published), multiples of 32, ImageNet statistics."""
    return {
        "policy": policy,
        "size": 224,
        "max_side": max_side,
        "multiple": 32,
        "mean": IMAGENET_MEAN,
        "std": IMAGENET_STD,
    }


register_model(
    ModelEntry(
        "aestheticnet",
        AestheticNetConfig,
        _imagenet_preprocess("fixed", 224),
        "searched cells, global average pooling, linear head; trained at a fixed 224x224",
    )
)
register_model(
    ModelEntry(
        "aestheticnet_star",
        AestheticNetStarConfig,
        _imagenet_preprocess("aspect", 640),
        "AestheticNet + CBAM tail + dilated last-stage sep convs; any size that is a multiple of 32",
    )
)
register_model(
    ModelEntry(
        "nima_mobilenet_v2",
        MobileNetV2Config,
        _imagenet_preprocess("fixed", 224),
        "baseline: MobileNetV2 (width 1.0; `width` sets the multiplier) with NIMA's head (dropout 0.75, 10 "
        "buckets, softmax); trained at a fixed 224x224",
        MobileNetV2,
        baseline=True,
    )
)
