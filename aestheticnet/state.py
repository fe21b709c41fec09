"""State files: resumable search and training state in one safetensors file, without pickle.

A state is a nested structure of dicts, lists, tuples, numbers, strings, numpy arrays and tensors (network
``state_dict``, optimizer and scheduler states, RNG states, stage and epoch). :func:`flatten` moves every tensor
into a flat ``name -> tensor`` map and leaves a JSON skeleton with ``{"__tensor__": name}`` in its place; dict
keys keep their type (optimizer states are keyed by int). The header key ``aestheticnet.<kind>`` holds
``{"format_version": N, "state": skeleton}``; one atomic write keeps weights and optimizer consistent, so a crash
leaves the previous file whole.

The model files (``aestheticnet.models.checkpoint``) share the low-level helpers here: :func:`write_safetensors`,
:func:`read_json_header` and :func:`read_tensors`.
"""

from __future__ import annotations

import enum
import json
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from aestheticnet.io import atomic_path

__all__ = [
    "StateKind",
    "StateFileError",
    "FORMAT_VERSION",
    "save_state",
    "load_state",
    "flatten",
    "unflatten",
    "rng_state",
    "set_rng_state",
    "write_safetensors",
    "read_json_header",
    "read_tensors",
    "check_version",
]

# Version 2 states hold the torch, numpy and python RNG streams; version 1 (search states with the torch streams
# only) still loads.
FORMAT_VERSION = 2
_TENSOR, _TUPLE, _DICT, _NDARRAY = "__tensor__", "__tuple__", "__dict__", "__ndarray__"


class StateKind(enum.Enum):
    """What a state file resumes; its value names the header key (``aestheticnet.<value>``)."""

    SEARCH = "search_state"
    TRAIN = "train_state"

    @property
    def header_key(self) -> str:
        return f"aestheticnet.{self.value}"

    @property
    def label(self) -> str:
        return self.value.replace("_", " ")


class StateFileError(ValueError):
    """A state or model file cannot be used; the message names the file and the problem."""


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
    if isinstance(obj, np.ndarray):
        return {_NDARRAY: obj.tolist(), "dtype": str(obj.dtype)}
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.floating):
        return float(obj)
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    raise TypeError(f"{prefix}: cannot store a {type(obj).__name__} in a state file")


def unflatten(obj: Any, tensors: dict[str, torch.Tensor]) -> Any:
    if isinstance(obj, dict):
        if _TENSOR in obj:
            return tensors[obj[_TENSOR]]
        if _NDARRAY in obj:
            return np.asarray(obj[_NDARRAY], dtype=obj["dtype"])
        if _TUPLE in obj:
            return tuple(unflatten(v, tensors) for v in obj[_TUPLE])
        if _DICT in obj:
            return {k: unflatten(v, tensors) for k, v in obj[_DICT]}
        raise ValueError(f"unexpected object in a state skeleton: keys {sorted(obj)}")
    if isinstance(obj, list):
        return [unflatten(v, tensors) for v in obj]
    return obj


def rng_state() -> dict[str, Any]:
    """Torch's CPU generator, numpy's and python's global streams and, once CUDA is up, every CUDA generator."""
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": np.random.get_state(legacy=False),
        "python": random.getstate(),
    }
    # Asking before CUDA is initialised would initialise it; an unused generator has nothing to restore.
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = list(torch.cuda.get_rng_state_all())
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore :func:`rng_state`; version-1 search states hold the torch streams only."""
    torch.set_rng_state(state["torch"])
    if "numpy" in state:
        np.random.set_state(state["numpy"])
    if "python" in state:
        version, internal, gauss = state["python"]
        random.setstate((version, tuple(internal), gauss))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(list(state["cuda"]))


def write_safetensors(path: str | Path, tensors: dict[str, torch.Tensor], header_key: str, header: Any) -> Path:
    """Atomically write ``tensors`` with ``header`` as JSON under ``header_key`` in the safetensors metadata."""
    path = Path(path)
    # contiguous CPU copies: safetensors refuses views, and files must not depend on the training device.
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in tensors.items()}
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata={header_key: json.dumps(header)})
    return path


def _open(path: Path, error: type[ValueError], what: str):
    if not path.exists():
        raise error(f"{path}: no such file (expected {what})")
    if path.is_dir():
        raise error(f"{path}: is a directory, expected {what}")
    try:
        return safe_open(str(path), framework="pt", device="cpu")
    except (SafetensorError, OSError, ValueError) as exc:
        raise error(
            f"{path}: not a readable safetensors file ({exc}); the file may be truncated or of another format"
        ) from None


def read_json_header(path: str | Path, header_key: str, error: type[ValueError], what: str) -> Any:
    """The JSON value under ``header_key`` in the file's metadata; ``error`` names the file and the problem."""
    path = Path(path)
    with _open(path, error, what) as f:
        raw = (f.metadata() or {}).get(header_key)
    if raw is None:
        raise error(f"{path}: a safetensors file without {what} ('{header_key}' missing)")
    try:
        return json.loads(raw)
    except json.JSONDecodeError as exc:
        raise error(f"{path}: the {what} header is not valid JSON ({exc})") from None


def read_tensors(path: str | Path, error: type[ValueError], what: str) -> dict[str, torch.Tensor]:
    path = Path(path)
    try:
        with _open(path, error, what) as f:
            return {k: f.get_tensor(k) for k in f.keys()}
    except (SafetensorError, OSError) as exc:
        raise error(f"{path}: cannot read the tensors ({exc}); the file may be truncated") from None


def check_version(path: Path, found: Any, supported: int, what: str, error: type[ValueError]) -> None:
    """Refuse a file without a format version, or of a version newer than ``supported``."""
    if not isinstance(found, int) or found < 1:
        raise error(f"{path}: {what} without a valid format version ({found!r})")
    if found > supported:
        raise error(
            f"{path}: {what} version {found} is newer than this package reads ({supported}); upgrade aestheticnet"
        )


def save_state(path: str | Path, kind: StateKind, state: dict[str, Any]) -> Path:
    """Atomically write ``state`` (see module docstring) to ``path``."""
    tensors: dict[str, torch.Tensor] = {}
    skeleton = flatten(state, tensors, "s")
    return write_safetensors(path, tensors, kind.header_key, {"format_version": FORMAT_VERSION, "state": skeleton})


def load_state(path: str | Path, kind: StateKind) -> dict[str, Any]:
    """The state :func:`save_state` wrote; :class:`StateFileError` names the file when it cannot be used."""
    path = Path(path)
    header = read_json_header(path, kind.header_key, StateFileError, f"a {kind.label}")
    if not isinstance(header, dict) or "state" not in header:
        raise StateFileError(f"{path}: the {kind.label} header holds no state")
    check_version(path, header.get("format_version"), FORMAT_VERSION, f"{kind.label}", StateFileError)
    return unflatten(header["state"], read_tensors(path, StateFileError, f"a {kind.label}"))
