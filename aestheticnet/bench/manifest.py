"""What the benchmark knows about a model file besides its latency: format, precision, size, the memory its
export planned (ExecuTorch), params and MACs.

Exported artifacts carry a manifest (sidecar ``<artifact>.json`` or embedded), read by
:func:`aestheticnet.artifacts.read_manifest`. The precision is the one the manifest records; a ``.safetensors``
checkpoint is float32; any other file without a manifest has precision ``"unknown"`` and ``facts_note`` says why.
MACs depend on the input size, so params and MACs are profiled exactly (``profile_model``) at each benchmarked
shape, on the checkpoint itself or on the network its manifest's ``model`` section (variant, config, genotype)
rebuilds; with neither, they are null and ``facts_note`` says why.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from aestheticnet.artifacts import (
    Format,
    Manifest,
    ManifestError,
    UnknownFormatError,
    format_of_path,
    manifest_precision,
    read_manifest,
    sidecar_path,
)
from aestheticnet.runtime_names import RuntimeName

__all__ = [
    "CHECKPOINT",
    "PACKAGE_BACKEND",
    "UNKNOWN_PRECISION",
    "artifact_manifest",
    "file_format",
    "model_facts",
    "model_formats",
    "precision_of",
]

CHECKPOINT = "safetensors"
# The runner's backend for a format that only this package runs (through runtime.load).
PACKAGE_BACKEND = "aestheticnet"
UNKNOWN_PRECISION = "unknown"


def model_formats() -> tuple[str, ...]:
    """The files ``info`` and ``bench`` know as models: checkpoints and every registered format."""
    return (CHECKPOINT, *(f.value for f in Format))


def file_format(path: str | Path) -> str:
    """An artifact's format name, ``safetensors`` for a checkpoint, else the file's suffix (or ``unknown``)."""
    suffix = Path(path).suffix.lower()
    if suffix == ".safetensors":
        return CHECKPOINT
    try:
        return format_of_path(path).value
    except UnknownFormatError:
        return suffix.lstrip(".") or "unknown"


def artifact_manifest(path: str | Path) -> tuple[Manifest | None, str | None]:
    """(manifest, None), or (None, why there is none) for a file without a readable manifest."""
    path = Path(path)
    try:
        manifest = read_manifest(path, required=False)
    except ManifestError as exc:
        return None, str(exc)
    if manifest is None:
        return None, f"no manifest ({sidecar_path(path).name}) next to {path.name} and none embedded in it"
    return manifest, None


def precision_of(path: str | Path, manifest: Manifest | None) -> str:
    """The precision the manifest records; ``fp32`` for a checkpoint; ``"unknown"`` without a manifest."""
    if file_format(path) == CHECKPOINT:
        return "fp32"  # checkpoints hold float32 weights
    if manifest is None:
        return UNKNOWN_PRECISION
    try:
        return manifest_precision(manifest, path).value
    except ManifestError:
        return UNKNOWN_PRECISION


def _model_from_manifest(manifest: Manifest):
    """The network a manifest's ``model`` section describes (variant, config, genotype), or None."""
    model = manifest.model
    if model.variant is None:
        return None
    config = dict(model.config)
    if "genotype" not in config and isinstance(model.genotype, dict):
        config["genotype"] = model.genotype
    try:
        from aestheticnet.models.registry import build_model, get_entry

        entry = get_entry(model.variant)
        return build_model(model.variant, entry.config_cls.from_dict(config, source="manifest config"))
    except Exception:
        return None


def _backend_of(fmt: str) -> str | None:
    """The device runner's backend for a format: PyTorch for a checkpoint, else what its exporter declares."""
    from aestheticnet.export.registry import EXPORTERS

    if fmt == CHECKPOINT:
        return RuntimeName.PYTORCH.value
    if fmt not in EXPORTERS:
        return None
    return EXPORTERS.get(fmt).bench_backend or PACKAGE_BACKEND


def _empty_facts(path: Path, fmt: str, shapes: list[tuple[int, int]]) -> dict[str, Any]:
    return {
        "path": str(path),
        "name": path.name,
        "format": fmt,
        "backend": _backend_of(fmt),
        "file_size_bytes": _size_on_disk(path),
        "planned_memory_bytes": None,
        "manifest": None,
        "variant": None,
        "params": None,
        "params_source": None,
        "macs": {f"{h}x{w}": None for h, w in shapes},
        "macs_source": None,
        "facts_note": None,
    }


def _network(path: Path, fmt: str, manifest: Manifest | None, facts: dict[str, Any]):
    """The network to profile: the checkpoint itself, or the one the manifest describes; None when neither."""
    if fmt == CHECKPOINT and path.is_file():
        try:
            from aestheticnet.models import load

            model = load(path)
        except Exception as exc:  # the runner reports the load error itself
            facts["facts_note"] = f"cannot profile {path.name}: {exc}"
            return None
        facts["params_source"] = facts["macs_source"] = "computed from the model file (profile_model)"
        facts["variant"] = model.variant
        return model
    if manifest is None:
        return None
    facts["variant"] = manifest.model.variant
    model = _model_from_manifest(manifest)
    if model is not None:
        facts["params_source"] = facts["macs_source"] = "computed from the manifest's variant and config"
    return model


def model_facts(path: str | Path, shapes: Iterable[tuple[int, int]], batch: int = 1) -> dict[str, Any]:
    """Format, precision, file size, manifest, planned memory (the manifest's ``export.planned_memory_bytes``:
    ExecuTorch's, None for other formats), params and MACs (per shape, with their source) of a model file.

    Params and MACs are profiled exactly at each shape on the network itself: the checkpoint, or the one its
    manifest's ``model`` section (variant, config, genotype) rebuilds; otherwise they are null and ``facts_note``
    says why."""
    path = Path(path)
    shapes = [tuple(s) for s in shapes]
    fmt = file_format(path)
    facts = _empty_facts(path, fmt, shapes)
    manifest, why = artifact_manifest(path) if fmt != CHECKPOINT else (None, None)
    if manifest is not None:
        facts["manifest"] = str(sidecar_path(path)) if sidecar_path(path).is_file() else f"{path.name} (embedded)"
        # What the runtime allocates when the method loads, for the exported upper bounds (ExecuTorch; the sidecar
        # has it, the embedded copy is written before the program is laid out).
        facts["planned_memory_bytes"] = manifest.export.get("planned_memory_bytes")
    facts["precision"] = precision_of(path, manifest)
    model = _network(path, fmt, manifest, facts)
    if model is None:
        if not facts["facts_note"]:
            reason = why or ("its manifest does not describe a network this package builds" if manifest else None)
            facts["facts_note"] = f"{reason or path.name + ': no model file'}: params and MACs unknown"
        return facts
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
    return facts


def _size_on_disk(path: Path) -> int | None:
    if path.is_file():
        return path.stat().st_size
    if path.is_dir():  # .mlpackage
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return None
