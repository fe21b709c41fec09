"""A small registry of model variants: name -> config class, default preprocessing, description.

Each variant is a config class with its own defaults, so a checkpoint's metadata (variant + config dict)
rebuilds exactly the network that was saved.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aestheticnet.models.aestheticnet import AestheticNet, AestheticNetConfig, AestheticNetStarConfig

__all__ = ["ModelEntry", "register_model", "list_models", "get_entry", "create_model", "build_model"]

# ImageNet statistics: the cells are generic image features, and exported models must document them.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class ModelEntry:
    name: str
    config_cls: type[AestheticNetConfig]
    preprocess: dict[str, Any]
    description: str


_MODELS: dict[str, ModelEntry] = {}


def register_model(entry: ModelEntry) -> ModelEntry:
    if entry.name in _MODELS:
        raise ValueError(f"model variant {entry.name!r} is already registered")
    _MODELS[entry.name] = entry
    return entry


def list_models() -> list[str]:
    return sorted(_MODELS)


def get_entry(name: str) -> ModelEntry:
    try:
        return _MODELS[name]
    except KeyError:
        raise ValueError(f"unknown model variant {name!r}; registered variants: {', '.join(list_models())}") from None


def build_model(name: str, config: AestheticNetConfig) -> AestheticNet:
    entry = get_entry(name)
    if not isinstance(config, entry.config_cls):
        raise TypeError(f"variant {name!r} needs a {entry.config_cls.__name__}, got {type(config).__name__}")
    model = AestheticNet(config)
    model.variant = name
    return model


def create_model(name: str, **overrides: Any) -> AestheticNet:
    """Build a registered variant; keyword arguments override config fields (``genotype`` may be a name/path)."""
    entry = get_entry(name)
    config = entry.config_cls().replace(**overrides) if overrides else entry.config_cls()
    return build_model(name, config)


register_model(
    ModelEntry(
        name="aestheticnet",
        config_cls=AestheticNetConfig,
        preprocess={"policy": "fixed", "size": 224, "max_side": 224, "multiple": 32,
                    "mean": IMAGENET_MEAN, "std": IMAGENET_STD},
        description="searched cells, global average pooling, linear head; trained at a fixed 224x224",
    )
)  # fmt: skip
register_model(
    ModelEntry(
        name="aestheticnet_star",
        config_cls=AestheticNetStarConfig,
        preprocess={"policy": "aspect", "size": 224, "max_side": 640, "multiple": 32,
                    "mean": IMAGENET_MEAN, "std": IMAGENET_STD},
        description="AestheticNet + CBAM tail + dilated last-stage sep convs; any size that is a multiple of 32",
    )
)  # fmt: skip
