"""Search state in one safetensors file, without pickle: tensors in the body, everything else as JSON.

A state is a nested structure of dicts, lists, tuples, numbers, strings and tensors (supernet ``state_dict``,
optimizer and scheduler states, RNG states, stage and epoch). :func:`flatten` moves every tensor into a flat
``name -> tensor`` map and leaves a JSON skeleton with ``{"__tensor__": name}`` in its place; dict keys keep
their type (optimizer states are keyed by int). The skeleton goes in the safetensors header under
``aestheticnet.search_state``; the write is atomic, so a crash leaves the previous checkpoint whole.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from aestheticnet.io import atomic_path

__all__ = ["SearchStateError", "flatten", "unflatten", "save_search_state", "load_search_state", "rng_state",
           "set_rng_state", "HEADER_KEY", "FORMAT_VERSION"]  # fmt: skip

HEADER_KEY = "aestheticnet.search_state"
FORMAT_VERSION = 1
_TENSOR, _TUPLE, _DICT = "__tensor__", "__tuple__", "__dict__"


class SearchStateError(ValueError):
    """A search checkpoint cannot be used; the message names the file and the problem."""


def flatten(obj: Any, tensors: dict[str, torch.Tensor], prefix: str) -> Any:
    """JSON skeleton of ``obj``; its tensors go to ``tensors`` under names starting with ``prefix``."""
    if isinstance(obj, torch.Tensor):
        tensors[prefix] = obj.detach().to("cpu").contiguous()
        return {_TENSOR: prefix}
    if isinstance(obj, dict):
        if not all(isinstance(k, (str, int)) and not isinstance(k, bool) for k in obj):
            raise TypeError(f"{prefix}: only str and int dict keys can be stored")
        return {_DICT: [[k, flatten(v, tensors, f"{prefix}.{k}")] for k, v in obj.items()]}
    if isinstance(obj, tuple):
        return {_TUPLE: [flatten(v, tensors, f"{prefix}.{i}") for i, v in enumerate(obj)]}
    if isinstance(obj, list):
        return [flatten(v, tensors, f"{prefix}.{i}") for i, v in enumerate(obj)]
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    raise TypeError(f"{prefix}: cannot store a {type(obj).__name__} in a search state")


def unflatten(obj: Any, tensors: dict[str, torch.Tensor]) -> Any:
    if isinstance(obj, dict):
        if _TENSOR in obj:
            return tensors[obj[_TENSOR]]
        if _TUPLE in obj:
            return tuple(unflatten(v, tensors) for v in obj[_TUPLE])
        if _DICT in obj:
            return {k: unflatten(v, tensors) for k, v in obj[_DICT]}
        raise ValueError(f"unexpected object in a search state skeleton: keys {sorted(obj)}")
    if isinstance(obj, list):
        return [unflatten(v, tensors) for v in obj]
    return obj


def rng_state() -> dict[str, Any]:
    """Torch's CPU generator and, when CUDA is up, every CUDA generator (the search uses no other RNG)."""
    state: dict[str, Any] = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = list(torch.cuda.get_rng_state_all())
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_search_state(path: str | Path, state: dict[str, Any]) -> Path:
    """Atomically write ``state`` (see module docstring) to ``path``."""
    path = Path(path)
    tensors: dict[str, torch.Tensor] = {}
    skeleton = flatten(state, tensors, "s")
    header = json.dumps({"format_version": FORMAT_VERSION, "state": skeleton})
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata={HEADER_KEY: header})
    return path


def load_search_state(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise SearchStateError(f"{path}: no search checkpoint there")
    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            raw = (f.metadata() or {}).get(HEADER_KEY)
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except (SafetensorError, OSError, ValueError) as exc:
        raise SearchStateError(f"{path}: not a readable safetensors file ({exc})") from None
    if raw is None:
        raise SearchStateError(f"{path}: a safetensors file without a search state ('{HEADER_KEY}' missing)")
    try:
        header = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise SearchStateError(f"{path}: search state header is not valid JSON ({exc})") from None
    if header.get("format_version", 0) > FORMAT_VERSION:
        raise SearchStateError(
            f"{path}: search state version {header['format_version']} is newer than this package reads "
            f"({FORMAT_VERSION}); upgrade aestheticnet"
        )
    return unflatten(header["state"], tensors)
