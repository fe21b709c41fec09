"""Model files: safetensors weights with the JSON metadata needed to rebuild and run the model in its header.

No pickle anywhere: a checkpoint can come from anyone, and loading it must not run code. The header holds one
key, ``aestheticnet``, whose value is a JSON object:

    format, format_version, variant, config (incl. genotype), genotype, preprocess (policy, size, max_side,
    multiple, mean, std), num_buckets, score_buckets, package_version, plus any ``extra`` the caller adds.

``genotype`` is null for a variant without searched cells (NIMA-MobileNetV2).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import torch

from aestheticnet import __version__
from aestheticnet.models.contract import ScoringModel
from aestheticnet.models.registry import build_model, get_entry
from aestheticnet.state import StateFileError, check_version, read_json_header, read_tensors, write_safetensors

__all__ = [
    "METADATA_KEY",
    "CheckpointError",
    "load",
    "metadata_problem",
    "non_finite_tensors",
    "read_metadata",
    "save",
]

METADATA_KEY = "aestheticnet"
FORMAT = "aestheticnet.model"
FORMAT_VERSION = 1
_WHAT = "aestheticnet metadata"


class CheckpointError(StateFileError):
    """A model file cannot be used; the message names the file and the problem."""


def build_metadata(model: ScoringModel, preprocess: dict[str, Any] | None = None, extra: dict | None = None) -> dict:
    """The header of ``model``'s file; ``preprocess`` defaults to the model's own ``preprocessing``."""
    pre = dict(model.preprocessing if preprocess is None else preprocess)
    pre = {k: list(v) if isinstance(v, tuple) else v for k, v in pre.items()}
    pre.setdefault("multiple", model.config.input_multiple)
    n = model.config.num_buckets
    genotype = model.genotype
    meta = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "variant": model.variant,
        "config": model.config.to_dict(),
        "genotype": genotype.to_dict() if genotype is not None else None,
        "preprocess": pre,
        "num_buckets": n,
        "score_buckets": list(range(1, n + 1)),
        "package_version": __version__,
    }
    if extra:
        meta["extra"] = extra
    return meta


def save(
    model: ScoringModel,
    path: str | Path,
    preprocess: dict[str, Any] | None = None,
    extra: dict[str, Any] | None = None,
) -> Path:
    """Write weights and metadata atomically; returns the path."""
    path = Path(path)
    meta = build_metadata(model, preprocess, extra)
    return write_safetensors(path, model.state_dict(), METADATA_KEY, meta)


def read_metadata(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    meta = read_json_header(path, METADATA_KEY, CheckpointError, _WHAT)
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise CheckpointError(f"{path}: metadata does not describe an {FORMAT} file")
    check_version(path, meta.get("format_version"), FORMAT_VERSION, "model file format", CheckpointError)
    problem = metadata_problem(meta)
    if problem:
        raise CheckpointError(f"{path}: {problem}; the file was edited or written by something else: re-save it")
    return meta


def metadata_problem(meta: dict[str, Any]) -> str | None:
    """What makes ``meta`` unusable: buckets that contradict each other, a preprocessing that divides by zero."""
    config = meta.get("config") if isinstance(meta.get("config"), dict) else {}
    counts = {"num_buckets": meta.get("num_buckets"), "config.num_buckets": config.get("num_buckets")}
    if isinstance(meta.get("score_buckets"), list):
        counts["len(score_buckets)"] = len(meta["score_buckets"])
    given = {k: v for k, v in counts.items() if v is not None}
    if len(set(map(str, given.values()))) > 1:
        return "its metadata contradicts itself: " + ", ".join(f"{k} = {v}" for k, v in given.items())
    pre = meta.get("preprocess") if isinstance(meta.get("preprocess"), dict) else {}
    for key in ("mean", "std"):
        values = pre.get(key)
        if values is None:
            continue
        if not isinstance(values, list) or len(values) != 3 or not all(_is_number(v) for v in values):
            return f"preprocess.{key} is {values!r}; expected 3 finite numbers"
        if key == "std" and min(values) <= 0:
            return f"preprocess.std is {values}: every channel's std must be positive (the input is divided by it)"
    return None


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def non_finite_tensors(state: dict[str, torch.Tensor]) -> list[str]:
    """Names of the floating-point tensors of ``state`` holding a NaN or an infinity."""
    return [k for k, t in state.items() if t.is_floating_point() and not bool(torch.isfinite(t).all())]


def load(path: str | Path, strict: bool = True) -> ScoringModel:
    """Rebuild the model from the metadata and load its weights; returned in eval mode on the CPU."""
    path = Path(path)
    meta = read_metadata(path)
    try:
        entry = get_entry(meta["variant"])
        config = entry.config_cls.from_dict(meta["config"], source=f"{path} config")
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"{path}: cannot rebuild the model from its metadata: {exc}") from None
    model = build_model(meta["variant"], config, dict(meta.get("preprocess", {})), meta)
    state = read_tensors(path, CheckpointError, _WHAT)
    broken = non_finite_tensors(state)
    if broken:
        more = f" and {len(broken) - 3} more" if len(broken) > 3 else ""
        raise CheckpointError(
            f"{path}: weights hold NaN or infinite values ({', '.join(broken[:3])}{more}): the training diverged or "
            "the file was damaged; use an earlier checkpoint or train again"
        )
    try:
        result = model.load_state_dict(state, strict=False)
    except RuntimeError as exc:  # shape mismatches: torch lists them all
        first = str(exc).strip().splitlines()[1:4]
        raise CheckpointError(
            f"{path}: weights do not match the {meta['variant']} config: {' '.join(s.strip() for s in first)}"
        ) from None
    missing = [k for k in result.missing_keys if not k.startswith("auxiliary_head.")]
    if strict and (missing or result.unexpected_keys):
        raise CheckpointError(
            f"{path}: weights do not match the {meta['variant']} config: "
            f"missing {missing[:5]}{'...' if len(missing) > 5 else ''}, "
            f"unexpected {result.unexpected_keys[:5]}{'...' if len(result.unexpected_keys) > 5 else ''}"
        )
    return model.eval()


def state_dict_bytes(model: torch.nn.Module) -> int:
    return sum(t.numel() * t.element_size() for t in model.state_dict().values())
