"""Read a CoreML ``.mlpackage`` without running it: its spec, checked for completeness.

A package cut off mid-copy fails here with a message that names what is missing, before any converter or runtime
sees it.
"""

from __future__ import annotations

import json
from pathlib import Path

__all__ = ["CoreMLPackageError", "operations", "read_spec"]


class CoreMLPackageError(ValueError):
    """A path is not a readable ``.mlpackage``; the message says what was expected."""


def _check_layout(path: Path) -> Path:
    if not path.exists():
        raise CoreMLPackageError(f"{path}: no such CoreML package")
    if not path.is_dir():
        raise CoreMLPackageError(f"{path}: expected an .mlpackage directory (with Manifest.json and Data/), got a file")
    manifest = path / "Manifest.json"
    if not manifest.is_file():
        raise CoreMLPackageError(
            f"{path}: not a complete .mlpackage (Manifest.json missing); the export may have been cut off"
        )
    try:
        items = json.loads(manifest.read_text()).get("itemInfoEntries", {})
    except (OSError, json.JSONDecodeError) as exc:
        raise CoreMLPackageError(f"{path}: Manifest.json unreadable ({exc}); the package is damaged") from None
    spec_file = None
    for entry in items.values():
        candidate = path / "Data" / entry.get("path", "")
        if not candidate.exists():
            raise CoreMLPackageError(
                f"{path}: package lists {entry.get('path')!r} but the file is missing (truncated package?)"
            )
        if candidate.suffix == ".mlmodel":
            spec_file = candidate
    if spec_file is None:
        raise CoreMLPackageError(f"{path}: package holds no model.mlmodel spec")
    return spec_file


def read_spec(path: str | Path):
    """The ``Model_pb2.Model`` spec of a package; clear errors for missing or truncated packages."""
    path = Path(path)
    spec_file = _check_layout(path)
    from aestheticnet.artifacts.files import silenced

    with silenced():  # importing coremltools prints version and macOS-library notices
        from coremltools.proto import Model_pb2

    spec = Model_pb2.Model()
    try:
        spec.ParseFromString(spec_file.read_bytes())
    except Exception as exc:  # noqa: BLE001
        raise CoreMLPackageError(
            f"{path}: model spec cannot be parsed ({exc}); the package is truncated or damaged"
        ) from None
    if not spec.description.input:
        raise CoreMLPackageError(f"{path}: model spec has no inputs; the package is truncated or damaged")
    _check_weight_blobs(path, spec)
    return spec


def _check_weight_blobs(path: Path, spec) -> None:
    """Every weight the program references must lie inside its blob file (a cut-off copy fails here)."""
    weights = path / "Data" / "com.apple.CoreML" / "weights"
    sizes: dict[str, int] = {}
    for op in operations(spec):
        for value in op.attributes.values():
            if value.WhichOneof("value") != "blobFileValue":
                continue
            name = value.blobFileValue.fileName.replace("@model_path/weights/", "")
            if name not in sizes:
                blob = weights / name
                if not blob.is_file():
                    raise CoreMLPackageError(f"{path}: weight file {name} is missing (truncated package?)")
                sizes[name] = blob.stat().st_size
            # a blob record: 64-byte metadata header at `offset`, then the data
            if value.blobFileValue.offset + 64 > sizes[name]:
                raise CoreMLPackageError(
                    f"{path}: weight file {name} is {sizes[name]} bytes but the program reads at offset "
                    f"{value.blobFileValue.offset}; the package is truncated"
                )


def operations(spec) -> list:
    if spec.WhichOneof("Type") != "mlProgram":
        return []
    ops = []
    for function in spec.mlProgram.functions.values():
        for block in function.block_specializations.values():
            ops.extend(block.operations)
    return ops
