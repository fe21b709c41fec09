"""What an exported file is: formats, precisions, tolerances, names, the manifest and the metadata in the file.

This package sits below both ``export`` (which writes artifacts) and ``runtime`` (which runs them) and imports
neither. Importing it is cheap: converters and runtimes are imported by the functions that read their files.
"""

from __future__ import annotations

from aestheticnet.artifacts import builtin_formats, formats
from aestheticnet.artifacts.formats import (
    INPUT_NAME,
    OUTPUT_NAME,
    SPECS,
    ArtifactError,
    Format,
    FormatSpec,
    Precision,
    Tolerance,
    UnknownFormatError,
    UnknownPrecisionError,
    artifact_name,
    format_of_path,
    precision_of_path,
    members,
    parse_formats,
    parse_precisions,
    register_format,
    tolerance_for,
    unregister_format,
)
from aestheticnet.artifacts.manifest import (
    Manifest,
    ManifestError,
    check_digest,
    check_shapes,
    manifest_precision,
    outside_bounds,
    read_manifest,
    sidecar_path,
)

# builtin_formats registers ONNX, TFLite, CoreML and ExecuTorch; importing it is all it takes.
_REGISTERED = builtin_formats

__all__ = [
    *formats.__all__,
    "Manifest",
    "ManifestError",
    "check_digest",
    "check_shapes",
    "manifest_precision",
    "outside_bounds",
    "read_manifest",
    "sidecar_path",
]
