"""What the benchmark knows about a model file besides its latency: format, precision, size, params and MACs.

Exported artifacts carry a manifest (sidecar ``<artifact>.json`` or embedded), read by
:func:`aestheticnet.artifacts.read_manifest`. The precision is the one the manifest records; a ``.safetensors``
checkpoint is float32; any other file without a manifest has precision ``"unknown"`` and ``facts_note`` says why.
Params and MACs are taken from the manifest wherever they sit (top level or nested, e.g. ``{"profile": {"params":
..., "macs": ...}}``). MACs depend on the input size, so for each benchmarked shape:

* ``.safetensors`` files are profiled exactly (``profile_model``) at that shape;
* a manifest with ``variant`` and ``config`` rebuilds the network and profiles it exactly at that shape;
* otherwise the manifest's MACs are used at their own input size and scaled by area at other sizes (exact for
  this fully convolutional network up to the tiny head; the source says "scaled");
* with no manifest, params and MACs are null and ``facts_note`` says why.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from aestheticnet.artifacts import (
    Format,
    ManifestError,
    UnknownFormatError,
    format_of_path,
    manifest_precision,
    read_manifest,
    sidecar_path,
)

__all__ = ["MODEL_FORMATS", "UNKNOWN_PRECISION", "artifact_manifest", "file_format", "model_facts", "precision_of"]

# The files ``info`` and ``bench`` know as models: checkpoints and every exported format.
MODEL_FORMATS = ("safetensors", *(f.value for f in Format))
BACKEND_OF_FORMAT = {"onnx": "onnxruntime", "tflite": "litert", "executorch": "executorch", "safetensors": "pytorch"}
UNKNOWN_PRECISION = "unknown"


def file_format(path: str | Path) -> str:
    """An artifact's format name, ``safetensors`` for a checkpoint, else the file's suffix (or ``unknown``)."""
    suffix = Path(path).suffix.lower()
    if suffix == ".safetensors":
        return "safetensors"
    try:
        return format_of_path(path).value
    except UnknownFormatError:
        return suffix.lstrip(".") or "unknown"


def artifact_manifest(path: str | Path) -> tuple[dict | None, str | None]:
    """(manifest, None), or (None, why there is none) for a file without a readable manifest."""
    path = Path(path)
    try:
        manifest = read_manifest(path, required=False)
    except ManifestError as exc:
        return None, str(exc)
    if manifest is None:
        return None, f"no manifest ({sidecar_path(path).name}) next to {path.name} and none embedded in it"
    return manifest, None


def precision_of(path: str | Path, manifest: dict | None) -> str:
    """The precision the manifest records; ``fp32`` for a checkpoint; ``"unknown"`` without a manifest."""
    if file_format(path) == "safetensors":
        return "fp32"  # checkpoints hold float32 weights
    if manifest is None:
        return UNKNOWN_PRECISION
    try:
        return manifest_precision(manifest, path).value
    except ManifestError:
        return UNKNOWN_PRECISION


def _walk(obj: Any, depth: int = 0) -> Iterable[tuple[dict, int]]:
    """Every dict inside ``obj`` with its depth, shallowest first."""
    level = [obj]
    while level and depth < 8:
        nxt = []
        for item in level:
            if isinstance(item, dict):
                yield item, depth
                nxt += list(item.values())
            elif isinstance(item, list):
                nxt += item
        level, depth = nxt, depth + 1


def _find_number(manifest: dict, key: str) -> tuple[int | None, dict | None]:
    for d, _ in _walk(manifest):
        value = d.get(key)
        if isinstance(value, (int, float)) and not isinstance(value, bool) and value >= 0:
            return int(value), d
    return None, None


def _size_of(d: dict | None) -> tuple[int, int] | None:
    if not d:
        return None
    for key in ("macs_input_size", "input_size", "size", "profile_size", "hw"):
        v = d.get(key)
        if isinstance(v, list) and len(v) == 2 and all(isinstance(x, int) for x in v):
            return v[0], v[1]
        if isinstance(v, int) and not isinstance(v, bool):
            return v, v
        if isinstance(v, str) and "x" in v:
            try:
                h, w = v.lower().split("x")
                return int(h), int(w)
            except ValueError:
                continue
    return None


def _model_dict(manifest: dict) -> dict | None:
    """The (possibly nested) part of a manifest that names the variant and its config, e.g. ``manifest["model"]``."""
    for d, _ in _walk(manifest):
        if isinstance(d.get("variant"), str) and isinstance(d.get("config"), dict):
            return d
    return None


def _model_from_manifest(manifest: dict):
    """The network a manifest describes (variant + config, genotype beside the config or in it), or None."""
    d = _model_dict(manifest)
    if d is None:
        return None
    config = dict(d["config"])
    if "genotype" not in config and isinstance(d.get("genotype"), dict):
        config["genotype"] = d["genotype"]
    try:
        from aestheticnet.models.registry import build_model, get_entry

        entry = get_entry(d["variant"])
        return build_model(d["variant"], entry.config_cls.from_dict(config, source="manifest config"))
    except Exception:
        return None


def model_facts(path: str | Path, shapes: Iterable[tuple[int, int]], batch: int = 1) -> dict[str, Any]:
    """Format, precision, file size, manifest, params and MACs (per shape, with their source) of a model file."""
    path = Path(path)
    shapes = [tuple(s) for s in shapes]
    fmt = file_format(path)
    facts: dict[str, Any] = {
        "path": str(path),
        "name": path.name,
        "format": fmt,
        "backend": BACKEND_OF_FORMAT.get(fmt),
        "file_size_bytes": _size_on_disk(path),
        "manifest": None,
        "variant": None,
        "params": None,
        "params_source": None,
        "macs": {f"{h}x{w}": None for h, w in shapes},
        "macs_source": None,
        "facts_note": None,
    }
    manifest, why = artifact_manifest(path) if fmt != "safetensors" else (None, None)
    if manifest is not None and sidecar_path(path).is_file():
        facts["manifest"] = str(sidecar_path(path))
    elif manifest is not None:
        facts["manifest"] = f"{path.name} (embedded)"
    facts["precision"] = precision_of(path, manifest)

    model = None
    if fmt == "safetensors" and path.is_file():
        try:
            from aestheticnet.models import load

            model = load(path)
            facts["params_source"] = facts["macs_source"] = "computed from the model file (profile_model)"
            facts["variant"] = model.variant
        except Exception as exc:  # the runner reports the load error itself
            facts["facts_note"] = f"cannot profile {path.name}: {exc}"
    elif manifest is not None:
        d = _model_dict(manifest)
        facts["variant"] = d["variant"] if d else None
        model = _model_from_manifest(manifest)
        if model is not None:
            facts["params_source"] = facts["macs_source"] = "computed from the manifest's variant and config"

    if model is not None:
        from aestheticnet.bench.profile import profile_model

        for h, w in shapes:
            try:
                report = profile_model(model, (h, w), batch=1)
            except ValueError:  # not a multiple of 32: the runner reports the shape error
                continue
            facts["params"] = report["params"]
            facts["macs"][f"{h}x{w}"] = report["macs"] * batch
        if facts["params"] is None:
            from aestheticnet.models.aestheticnet import count_parameters

            facts["params"] = count_parameters(model)
        if manifest is not None:  # the manifest's own numbers win for params (e.g. after pruning)
            params, _ = _find_number(manifest, "params")
            if params is not None:
                facts["params"], facts["params_source"] = params, "manifest"
        return facts

    if manifest is not None:
        params, _ = _find_number(manifest, "params")
        macs, where = _find_number(manifest, "macs")
        if params is not None:
            facts["params"], facts["params_source"] = params, "manifest"
        if macs is not None:
            size = _size_of(where) or _size_of(manifest)
            if size is None:
                facts["macs_source"] = "manifest (its input size is not stated; same value for every shape)"
                for key in facts["macs"]:
                    facts["macs"][key] = macs * batch
            else:
                mh, mw = size
                facts["macs_source"] = f"manifest at {mh}x{mw}, scaled by input area at other shapes"
                for h, w in shapes:
                    facts["macs"][f"{h}x{w}"] = int(round(macs * (h * w) / (mh * mw))) * batch
        missing = [k for k, v in (("params", params), ("MACs", macs)) if v is None]
        if missing and not facts["facts_note"]:
            facts["facts_note"] = f"{' and '.join(missing)} not in the manifest of {path.name}"
        return facts

    if not facts["facts_note"]:
        facts["facts_note"] = f"{why or path.name + ': no model file'}: precision, params and MACs unknown"
    return facts


def _size_on_disk(path: Path) -> int | None:
    if path.is_file():
        return path.stat().st_size
    if path.is_dir():  # .mlpackage
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return None
