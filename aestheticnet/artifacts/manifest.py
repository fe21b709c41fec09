"""The manifest every exported artifact carries: a sidecar ``<artifact>.json`` and, where the format has a place
for it, the same JSON embedded (ONNX ``metadata_props``, TFLite metadata, CoreML user-defined metadata). This
module is the one reader of both: export, runtime, verify and bench all call :func:`read_manifest`.

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
from aestheticnet.artifacts.embedded import EMBED_KEY, read_embedded
from aestheticnet.artifacts.files import tree_bytes
from aestheticnet.artifacts.formats import INPUT_NAME, OUTPUT_NAME, SPECS, Format, Precision
from aestheticnet.artifacts.manifest_types import (
    MANIFEST_FORMAT,
    MANIFEST_VERSION,
    ArtifactInfo,
    InputInfo,
    Manifest,
    ManifestError,
    ModelInfo,
    OutputInfo,
    SourceInfo,
)
from aestheticnet.io import atomic_write_json, sha256_file

__all__ = [
    "EMBED_KEY",
    "MANIFEST_FORMAT",
    "MANIFEST_VERSION",
    "Manifest",
    "ManifestError",
    "SourceInfo",
    "build_manifest",
    "check_digest",
    "check_shapes",
    "manifest_precision",
    "outside_bounds",
    "read_manifest",
    "sidecar_path",
    "tool_versions",
    "write_sidecar",
]


_TOOLS = (
    "torch",
    "onnx",
    "onnxruntime",
    "onnxscript",
    "onnxsim",
    "onnx2tf",
    "tensorflow",
    "tf_keras",
    "ai-edge-litert",
    "coremltools",
    "executorch",
    "torchao",
    "numpy",
)


def tool_versions(names: tuple[str, ...] = _TOOLS) -> dict[str, str | None]:
    out: dict[str, str | None] = {"aestheticnet": __version__, "python": platform.python_version()}
    for name in names:
        try:
            out[name] = _importlib_metadata.version(name)
        except _importlib_metadata.PackageNotFoundError:
            out[name] = None
    return out


def build_manifest(
    checkpoint_meta: dict[str, Any],
    source: SourceInfo,
    fmt: Format,
    precision: Precision,
    exporter: dict[str, Any],
    dynamic: dict[str, list[int]] | None,
    **input_options: Any,
) -> Manifest:
    """The manifest of one artifact (the sidecar adds the file's hash and size, :func:`write_sidecar`).

    ``input_options``: ``input_kind`` ("tensor"), ``input_shape`` (from the layout), ``extra_input`` (what the
    format adds to the input section) and ``calibration`` (int8: the images it was calibrated on)."""
    fmt, precision = Format(fmt), Precision(precision)
    spec = SPECS[fmt]
    n = int(checkpoint_meta.get("num_buckets", len(checkpoint_meta.get("score_buckets", [])) or 10))
    config = dict(checkpoint_meta.get("config", {}))
    config.pop("genotype", None)
    model = ModelInfo(
        variant=checkpoint_meta.get("variant"),
        genotype_name=config.get("genotype_name"),
        genotype=checkpoint_meta.get("genotype"),
        config=config,
        num_buckets=n,
        score_buckets=checkpoint_meta.get("score_buckets", list(range(1, n + 1))),
    )
    export = {
        **exporter,
        "precision": precision.value,
        "tools": tool_versions(),
        "exported_at": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
    }
    calibration = input_options.pop("calibration", None)
    if calibration is not None:
        export["calibration"] = calibration
    return Manifest(
        artifact=ArtifactInfo(fmt.value, precision.value, spec.runtime),
        model=model,
        input=_input_info(checkpoint_meta, spec.layout, dynamic, **input_options),
        output=OutputInfo(
            OUTPUT_NAME,
            ["batch", n],
            "float32",
            f"probabilities over score buckets 1..{n} (softmax); mean score = sum_k k * p_k",
        ),
        preprocess=dict(checkpoint_meta.get("preprocess", {})),
        source=source,
        export=export,
    )


def _input_info(
    meta: dict, layout: str, dynamic, input_kind: str = "tensor", input_shape=None, extra_input=None
) -> InputInfo:
    pre = dict(meta.get("preprocess", {}))
    if input_shape is None:
        input_shape = ["batch", 3, "height", "width"] if layout == "NCHW" else ["batch", "height", "width", 3]
    tensor = input_kind == "tensor"
    return InputInfo(
        name=INPUT_NAME,
        kind=input_kind,
        layout=layout,
        dtype="float32" if tensor else "RGB image (pixel buffer, 8 bits per channel)",
        shape=input_shape,
        mean=pre.get("mean"),
        std=pre.get("std"),
        value_range="normalised: (pixel / 255 - mean) / std" if tensor else "RGB pixels 0..255",
        multiple=int(pre.get("multiple", 32)),
        dynamic=dynamic,
        extra=dict(extra_input or {}),
    )


def sidecar_path(artifact: str | Path) -> Path:
    artifact = Path(artifact)
    return artifact.with_name(artifact.name + ".json")


def write_sidecar(artifact: str | Path, manifest: Manifest) -> Path:
    artifact = Path(artifact)
    full = manifest.with_artifact(file=artifact.name, bytes=tree_bytes(artifact), sha256=sha256_file(artifact))
    path = sidecar_path(artifact)
    atomic_write_json(path, full.to_json())
    return path


def check_digest(artifact: str | Path, manifest: Manifest | None = None) -> None:
    """Refuse an artifact whose sidecar manifest records another sha256 than the file (or package) has now: the
    manifest then describes some other model. No sidecar, or one without a digest, is not checked. ``manifest``:
    the one :func:`read_manifest` returned already, if the caller has it."""
    artifact = Path(artifact)
    side = sidecar_path(artifact)
    if not side.is_file():
        return
    want = (manifest or read_manifest(artifact)).artifact.sha256
    if not want:
        return
    got = sha256_file(artifact)
    if got != want:
        raise ManifestError(
            f"{artifact}: its sha256 is {got[:16]}..., but its manifest {side.name} records {want[:16]}...: the "
            "file changed after it was exported. Export it again (or pass --no-integrity-check to use it as it is)"
        )


def outside_bounds(manifest: Manifest, shape) -> str | None:
    """Why ``shape`` (a :class:`~aestheticnet.sizes.Shape`) is outside the bounds the manifest declares for the
    artifact's dynamic batch, height and width (``"height 512 is outside 32..256"``); None when it is inside."""
    for dim, value in (("batch", shape.batch), ("height", shape.height), ("width", shape.width)):
        bounds = manifest.input.bounds(dim)
        if bounds is not None and not bounds[0] <= value <= bounds[1]:
            return f"{dim} {value} is outside {bounds[0]}..{bounds[1]}"
    return None


def check_shapes(manifest: Manifest, shapes, where: str) -> None:
    """Refuse input shapes (:class:`~aestheticnet.sizes.Shape`) outside the bounds the manifest declares for the
    artifact's dynamic batch, height and width; ``where`` names the option or key they came from."""
    for shape in shapes:
        why = outside_bounds(manifest, shape)
        if why is not None:
            raise ManifestError(
                f"{where} {shape}: {why}, the range this artifact was exported for (its manifest's input.dynamic); "
                "give shapes within it, or export again for larger bounds (ExecuTorch: --max-batch / --max-side)"
            )


def read_manifest(artifact: str | Path, required: bool = True) -> Manifest | None:
    """The sidecar manifest of ``artifact``, else its embedded copy; ``None`` or an error when neither exists."""
    artifact = Path(artifact)
    side = sidecar_path(artifact)
    if side.is_file():
        try:
            data = json.loads(side.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise ManifestError(f"{side}: unreadable manifest ({exc})") from None
        return Manifest.from_json(data, str(side))
    data = read_embedded(artifact)
    if data is not None:
        return Manifest.from_json(data, f"{artifact} (embedded manifest)")
    if required:
        raise ManifestError(
            f"{artifact}: no manifest found (expected {side.name} next to it, or metadata embedded in the model); "
            "re-export with `aestheticnet export`"
        )
    return None


def manifest_precision(manifest: Manifest, where: str | Path = "manifest") -> Precision:
    """The precision a manifest records; a clear error when it records none the exporter knows."""
    try:
        return manifest.precision
    except ValueError:
        valid = ", ".join(p.value for p in Precision)
        raise ManifestError(
            f"{where}: the manifest records precision {manifest.artifact.precision!r}; expected one of {valid}"
        ) from None
