"""Resumable training state in one safetensors file, without pickle.

Optimizer, scheduler and RNG states are nested dicts and lists of numbers and tensors. ``flatten`` moves every
tensor into a flat ``name -> tensor`` map and leaves a JSON skeleton with ``{"__tensor__": name}`` in its
place; ``unflatten`` reverses it. The file holds the model weights (``model.*``), those tensors
(``state.*``) and the skeleton in the header, so one atomic write keeps model and optimizer consistent.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from aestheticnet.io import atomic_path

__all__ = ["TrainStateError", "flatten", "unflatten", "save_state", "load_state", "rng_state", "set_rng_state"]

_TENSOR = "__tensor__"
_TUPLE = "__tuple__"
_NDARRAY = "__ndarray__"
_HEADER_KEY = "aestheticnet.train_state"


class TrainStateError(ValueError):
    """A training-state file cannot be used for resuming; the message names the file."""


def flatten(obj: Any, tensors: dict[str, torch.Tensor], prefix: str) -> Any:
    if isinstance(obj, torch.Tensor):
        name = f"{prefix}"
        tensors[name] = obj.detach().to("cpu").contiguous()
        return {_TENSOR: name}
    if isinstance(obj, dict):
        if not all(isinstance(k, (str, int)) for k in obj):
            raise TypeError(f"cannot store dict keys of types {sorted({type(k).__name__ for k in obj})} at {prefix}")
        # JSON keys are strings: remember which were ints (optimizer state is keyed by parameter index).
        return {
            "__dict__": [[k, flatten(v, tensors, f"{prefix}.{k}")] for k, v in obj.items()],
        }
    if isinstance(obj, tuple):
        return {_TUPLE: [flatten(v, tensors, f"{prefix}.{i}") for i, v in enumerate(obj)]}
    if isinstance(obj, list):
        return [flatten(v, tensors, f"{prefix}.{i}") for i, v in enumerate(obj)]
    if isinstance(obj, np.ndarray):
        return {_NDARRAY: obj.tolist(), "dtype": str(obj.dtype)}
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (np.floating,)):
        return float(obj)
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    raise TypeError(f"cannot store a {type(obj).__name__} at {prefix} in a training state")


def unflatten(obj: Any, tensors: dict[str, torch.Tensor]) -> Any:
    if isinstance(obj, dict):
        if _TENSOR in obj:
            return tensors[obj[_TENSOR]]
        if _NDARRAY in obj:
            return np.asarray(obj[_NDARRAY], dtype=obj["dtype"])
        if _TUPLE in obj:
            return tuple(unflatten(v, tensors) for v in obj[_TUPLE])
        if "__dict__" in obj:
            return {k: unflatten(v, tensors) for k, v in obj["__dict__"]}
        return {k: unflatten(v, tensors) for k, v in obj.items()}
    if isinstance(obj, list):
        return [unflatten(v, tensors) for v in obj]
    return obj


def rng_state() -> dict[str, Any]:
    state = {
        "torch": torch.get_rng_state(),
        "numpy": np.random.get_state(legacy=False),
        "python": random.getstate(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(list(state["cuda"]))


def save_state(path: str | Path, model_state: dict[str, torch.Tensor], state: dict[str, Any]) -> Path:
    """Write model weights plus any nested ``state`` atomically."""
    tensors: dict[str, torch.Tensor] = {f"model.{k}": v.detach().to("cpu").contiguous() for k, v in model_state.items()}
    skeleton = flatten(state, tensors, "state")
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata={_HEADER_KEY: json.dumps(skeleton)})
    return Path(path)


def load_state(path: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    path = Path(path)
    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            header = (f.metadata() or {}).get(_HEADER_KEY)
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except (SafetensorError, OSError) as exc:
        raise TrainStateError(f"{path}: cannot read the training state ({exc}); the file may be truncated") from None
    if header is None:
        raise TrainStateError(f"{path}: not an aestheticnet training state (no '{_HEADER_KEY}' header)")
    model_state = {k[len("model.") :]: v for k, v in tensors.items() if k.startswith("model.")}
    return model_state, unflatten(json.loads(header), tensors)
