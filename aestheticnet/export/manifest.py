"""The manifest every exported artifact carries: a sidecar ``<artifact>.json`` and, where the format has a place
for it, the same JSON embedded (ONNX ``metadata_props``, CoreML user-defined metadata).

It says everything a runtime needs to feed the model and read its output without the checkpoint: variant,
genotype, input name, layout (NCHW/NHWC), dtype, mean/std and the preprocessing policy, the input multiple
(32), the dynamic dimensions and their bounds, the score buckets; and where the artifact came from: the
checkpoint's sha256, tool versions, the exporter (dynamo, or the TorchScript fallback and why), the rewrites
applied, the precision, calibration data and per-step timings.
"""

from __future__ import annotations

import datetime as _dt
import json
import platform
from importlib import metadata as _importlib_metadata
from pathlib import Path
from typing import Any

from aestheticnet import __version__
from aestheticnet.export.specs import SPECS

__all__ = [
    "EMBED_KEY",
    "MANIFEST_FORMAT",
    "MANIFEST_VERSION",
    "ManifestError",
    "build_manifest",
    "read_manifest",
    "sidecar_path",
    "tool_versions",
    "write_sidecar",
]

MANIFEST_FORMAT = "aestheticnet.export"
MANIFEST_VERSION = 1
EMBED_KEY = "aestheticnet.manifest"  # key of the embedded JSON in ONNX metadata_props / CoreML metadata

_TOOLS = (
    "torch", "onnx", "onnxruntime", "onnxscript", "onnxsim", "onnx2tf", "tensorflow", "tf_keras",
    "ai-edge-litert", "coremltools", "numpy",
)  # fmt: skip


class ManifestError(ValueError):
    """An artifact's manifest is missing or unreadable; the message names the file."""


def tool_versions(names: tuple[str, ...] = _TOOLS) -> dict[str, str | None]:
    out: dict[str, str | None] = {"aestheticnet": __version__, "python": platform.python_version()}
    for name in names:
        try:
            out[name] = _importlib_metadata.version(name)
        except _importlib_metadata.PackageNotFoundError:
            out[name] = None
    return out


def build_manifest(
    *,
    checkpoint_meta: dict[str, Any],
    checkpoint_sha256: str,
    checkpoint_name: str,
    fmt: str,
    precision: str,
    dynamic: dict[str, list[int]],
    exporter: dict[str, Any],
    input_kind: str = "tensor",
    input_shape: list | None = None,
    output_shape: list | None = None,
    extra_input: dict[str, Any] | None = None,
    calibration: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The manifest dict (without the artifact's own hash and size, added by :func:`write_sidecar`)."""
    spec = SPECS[fmt]
    pre = dict(checkpoint_meta.get("preprocess", {}))
    n = int(checkpoint_meta.get("num_buckets", len(checkpoint_meta.get("score_buckets", [])) or 10))
    layout = spec.layout
    if input_shape is None:
        input_shape = ["batch", 3, "height", "width"] if layout == "NCHW" else ["batch", "height", "width", 3]
    config = dict(checkpoint_meta.get("config", {}))
    config.pop("genotype", None)
    manifest = {
        "format": MANIFEST_FORMAT,
        "manifest_version": MANIFEST_VERSION,
        "artifact": {"format": fmt, "precision": precision, "runtime": spec.runtime},
        "model": {
            "variant": checkpoint_meta.get("variant"),
            "genotype_name": config.get("genotype_name"),
            "genotype": checkpoint_meta.get("genotype"),
            "config": config,
            "num_buckets": n,
            "score_buckets": checkpoint_meta.get("score_buckets", list(range(1, n + 1))),
        },
        "input": {
            "name": "image",
            "kind": input_kind,
            "layout": layout,
            "dtype": "float32" if input_kind == "tensor" else "RGB image (pixel buffer, 8 bits per channel)",
            "shape": input_shape,
            "mean": pre.get("mean"),
            "std": pre.get("std"),
            "value_range": "normalised: (pixel / 255 - mean) / std" if input_kind == "tensor" else "RGB pixels 0..255",
            "multiple": int(pre.get("multiple", 32)),
            "dynamic": dynamic,
            **(extra_input or {}),
        },
        "output": {
            "name": "distribution",
            "shape": output_shape or ["batch", n],
            "dtype": "float32",
            "meaning": f"probabilities over score buckets 1..{n} (softmax); mean score = sum_k k * p_k",
        },
        "preprocess": pre,
        "source": {
            "checkpoint": checkpoint_name,
            "sha256": checkpoint_sha256,
            "package_version": checkpoint_meta.get("package_version"),
        },
        "export": {
            **exporter,
            "precision": precision,
            "tools": tool_versions(),
            "exported_at": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        },
    }
    if calibration is not None:
        manifest["export"]["calibration"] = calibration
    return manifest


def sidecar_path(artifact: str | Path) -> Path:
    artifact = Path(artifact)
    return artifact.with_name(artifact.name + ".json")


def write_sidecar(artifact: str | Path, manifest: dict[str, Any]) -> Path:
    from aestheticnet.export.files import tree_bytes
    from aestheticnet.io import atomic_write_json, sha256_file

    artifact = Path(artifact)
    full = json.loads(json.dumps(manifest))
    full["artifact"]["file"] = artifact.name
    full["artifact"]["bytes"] = tree_bytes(artifact)
    if artifact.is_file():
        full["artifact"]["sha256"] = sha256_file(artifact)
    path = sidecar_path(artifact)
    atomic_write_json(path, full)
    return path


def _embedded(artifact: Path) -> dict[str, Any] | None:
    """The JSON embedded in an ONNX file or an ``.mlpackage`` (no heavy imports for other formats)."""
    try:
        if artifact.suffix == ".onnx" and artifact.is_file():
            import onnx

            model = onnx.load(str(artifact), load_external_data=False)
            props = {p.key: p.value for p in model.metadata_props}
            raw = props.get(EMBED_KEY)
            return json.loads(raw) if raw else None
        if artifact.suffix == ".mlpackage" and artifact.is_dir():
            from aestheticnet.export.coreml_spec import read_spec

            meta = dict(read_spec(artifact).description.metadata.userDefined)
            raw = meta.get(EMBED_KEY)
            return json.loads(raw) if raw else None
    except Exception:  # noqa: BLE001
        return None
    return None


def read_manifest(artifact: str | Path, required: bool = True) -> dict[str, Any] | None:
    """The sidecar manifest of ``artifact``, else its embedded copy; ``None`` or an error when neither exists."""
    artifact = Path(artifact)
    side = sidecar_path(artifact)
    if side.is_file():
        try:
            data = json.loads(side.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise ManifestError(f"{side}: unreadable manifest ({exc})") from None
        if not isinstance(data, dict) or data.get("format") != MANIFEST_FORMAT:
            raise ManifestError(f"{side}: not an {MANIFEST_FORMAT} manifest")
        return data
    data = _embedded(artifact)
    if data is not None:
        return data
    if required:
        raise ManifestError(
            f"{artifact}: no manifest found (expected {side.name} next to it, or metadata embedded in the model); "
            "re-export with `aestheticnet export`"
        )
    return None
