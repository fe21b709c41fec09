"""What the benchmark knows about a model file besides its latency: format, precision, size, params and MACs.

Exported artifacts carry a sidecar manifest, ``<artifact>.json`` (``model.onnx.json``; ``model.json`` is also
read). Params and MACs are taken from it wherever they sit (top level or nested, e.g. ``{"profile": {"params":
..., "macs": ...}}``). MACs depend on the input size, so for each benchmarked shape:

* ``.safetensors`` files are profiled exactly (``profile_model``) at that shape;
* a manifest with ``variant`` and ``config`` rebuilds the network and profiles it exactly at that shape;
* otherwise the manifest's MACs are used at their own input size and scaled by area at other sizes (exact for
  this fully convolutional network up to the tiny head; the source says "scaled");
* with no manifest, params and MACs are null and ``facts_note`` says why.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from collections.abc import Iterable

__all__ = ["FORMATS", "file_format", "find_manifest", "guess_precision", "model_facts", "read_manifest"]

FORMATS = {".onnx": "onnx", ".tflite": "tflite", ".safetensors": "safetensors", ".mlpackage": "coreml",
           ".mlmodel": "coreml", ".pte": "executorch"}  # fmt: skip
BACKEND_OF_FORMAT = {"onnx": "onnxruntime", "tflite": "litert", "safetensors": "pytorch"}
_PRECISION_KEYS = ("precision", "dtype", "quantization", "compute_precision")


def file_format(path: str | Path) -> str:
    return FORMATS.get(Path(path).suffix.lower(), Path(path).suffix.lower().lstrip(".") or "unknown")


def find_manifest(path: str | Path) -> Path | None:
    path = Path(path)
    for candidate in (path.with_name(path.name + ".json"), path.with_suffix(".json")):
        if candidate != path and candidate.is_file():
            return candidate
    return None


def read_manifest(path: str | Path) -> tuple[dict | None, str | None]:
    """(manifest, None) or (None, why it could not be read)."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        return None, f"{Path(path).name}: unreadable manifest ({exc})"
    if not isinstance(data, dict):
        return None, f"{Path(path).name}: manifest is not a JSON object"
    return data, None


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


def guess_precision(path: str | Path, manifest: dict | None = None) -> str:
    """'fp32', 'fp16', 'int8', 'int16x8' ... from the manifest, else from the file name, else 'fp32'."""
    if manifest:
        for d, _ in _walk(manifest):
            for key in _PRECISION_KEYS:
                v = d.get(key)
                if isinstance(v, str) and v:
                    return _normalise_precision(v)
    name = Path(path).name.lower()
    if "int8-dynamic" in name or "dynamic_range" in name:
        return "int8-dynamic"
    if "int16" in name:
        return "int16x8"
    if "int8" in name or "quant" in name or "qint" in name or "w8a8" in name:
        return "int8"
    if "fp16" in name or "float16" in name or "half" in name:
        return "fp16"
    return "fp32"


def _normalise_precision(v: str) -> str:
    if v in ("fp32", "fp16", "int8", "int8-dynamic", "int16x8"):  # the exporter's names (aestheticnet.export)
        return v
    s = v.lower().replace("-", "").replace("_", "")
    if "dynamic" in s and "8" in s:
        return "int8-dynamic"
    if s in ("float32", "fp32", "float", "tensor(float)", "none"):
        return "fp32"
    if s in ("float16", "fp16", "half"):
        return "fp16"
    if "int16" in s:
        return "int16x8"
    if "int8" in s or "quant" in s or s in ("dynamic", "dynamicrange", "w8", "w8a8"):
        return "int8"
    return v


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
    facts: dict[str, Any] = {"path": str(path), "name": path.name, "format": fmt,
                             "backend": BACKEND_OF_FORMAT.get(fmt), "file_size_bytes": _size_on_disk(path),
                             "manifest": None, "variant": None, "params": None, "params_source": None,
                             "macs": {f"{h}x{w}": None for h, w in shapes}, "macs_source": None,
                             "facts_note": None}  # fmt: skip
    manifest = None
    mpath = find_manifest(path) if fmt != "safetensors" else None
    if mpath is not None:
        manifest, why = read_manifest(mpath)
        facts["manifest"] = str(mpath)
        if why:
            facts["facts_note"] = why
    facts["precision"] = guess_precision(path, manifest)

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
            facts["facts_note"] = f"{' and '.join(missing)} not in the manifest {mpath.name}"
        return facts

    if not facts["facts_note"]:
        facts["facts_note"] = (f"no manifest ({path.name}.json or {path.stem}.json) next to the model and not a "
                               ".safetensors file: params and MACs unknown")  # fmt: skip
    return facts


def _size_on_disk(path: Path) -> int | None:
    if path.is_file():
        return path.stat().st_size
    if path.is_dir():  # .mlpackage
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return None
