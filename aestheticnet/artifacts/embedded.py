"""The manifest inside the model file: ONNX ``metadata_props``, TFLite metadata buffers, CoreML user metadata,
an ExecuTorch program's constant method :data:`EXECUTORCH_METHOD` (a method that returns the JSON string; any
ExecuTorch runtime can read it, no sidecar needed).

Each format gets the whole manifest as JSON under :data:`EMBED_KEY`; ONNX and CoreML also get a few flat entries
(:func:`flat_entries`) that model viewers show without parsing JSON. Readers return ``None`` when a file carries no
manifest, and never import a converter: only ``onnx``, the LiteRT schema or the CoreML protobuf classes.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from aestheticnet.artifacts.formats import INPUT_NAME, SPECS, format_of_path
from aestheticnet.artifacts.manifest_types import Manifest

__all__ = [
    "EMBED_KEY",
    "EXECUTORCH_METHOD",
    "coreml_entries",
    "embed_onnx_metadata",
    "embed_tflite_metadata",
    "flat_entries",
    "read_coreml_text",
    "read_embedded",
    "read_executorch_text",
    "read_onnx_text",
    "read_tflite_metadata",
    "read_tflite_text",
]

EMBED_KEY = "aestheticnet.manifest"  # key of the embedded JSON in every format
EXECUTORCH_METHOD = "aestheticnet_manifest"  # a method name is a C identifier: no dot


def flat_entries(manifest: Manifest) -> dict[str, str]:
    """The manifest's JSON and its most used fields as plain strings (ONNX ``metadata_props``)."""
    return {
        EMBED_KEY: json.dumps(manifest.to_json()),
        "variant": str(manifest.model.variant),
        "input_name": INPUT_NAME,
        "input_layout": manifest.input.layout,
        "input_multiple": str(manifest.input.multiple),
        "mean": json.dumps(manifest.input.mean),
        "std": json.dumps(manifest.input.std),
        "score_buckets": json.dumps(manifest.model.score_buckets),
        "source_sha256": manifest.source.sha256,
        "precision": manifest.artifact.precision,
    }


def coreml_entries(manifest: Manifest, input_kind: str) -> dict[str, str]:
    """The entries of a CoreML package's user-defined metadata: :func:`flat_entries` plus the input kind."""
    flat = flat_entries(manifest)
    order = (
        "variant",
        "input_name",
        "input_layout",
        "input_kind",
        "input_multiple",
        "mean",
        "std",
        "score_buckets",
        "precision",
        "source_sha256",
    )
    return {EMBED_KEY: flat[EMBED_KEY], **{k: input_kind if k == "input_kind" else flat[k] for k in order}}


def embed_onnx_metadata(model, entries: dict[str, str]) -> None:
    """Set (replace) ONNX ``metadata_props`` entries of a ModelProto."""
    keep = [p for p in model.metadata_props if p.key not in entries]
    del model.metadata_props[:]
    model.metadata_props.extend(keep)
    for key, value in entries.items():
        prop = model.metadata_props.add()
        prop.key, prop.value = str(key), str(value)


def embed_tflite_metadata(flat: bytes, entries: dict[str, str]) -> bytes:
    """Add (or replace) named metadata buffers in a TFLite flatbuffer."""
    import numpy as np
    from ai_edge_litert import schema_py_generated as schema

    from aestheticnet.artifacts.flatbuffer import pack, unpack

    model, _ = unpack(flat)
    model.metadata = [m for m in (model.metadata or []) if m.name.decode() not in entries]
    model.buffers = model.buffers or []
    for name, value in entries.items():
        buffer = schema.BufferT()
        buffer.data = np.frombuffer(value.encode(), dtype=np.uint8)
        model.buffers.append(buffer)
        meta = schema.MetadataT()
        meta.name = name.encode()
        meta.buffer = len(model.buffers) - 1
        model.metadata.append(meta)
    return pack(model, len(flat))


def read_tflite_metadata(path_or_bytes: str | os.PathLike | bytes) -> dict[str, str]:
    """Named metadata entries of a TFLite file, decoded as UTF-8 where possible."""
    import numpy as np
    from ai_edge_litert import schema_py_generated as schema

    data = Path(path_or_bytes).read_bytes() if isinstance(path_or_bytes, (str, os.PathLike)) else path_or_bytes
    model = schema.Model.GetRootAsModel(bytearray(data), 0)
    out = {}
    for i in range(model.MetadataLength()):
        meta = model.Metadata(i)
        raw = model.Buffers(meta.Buffer()).DataAsNumpy()
        if isinstance(raw, np.ndarray):
            try:
                out[meta.Name().decode()] = raw.tobytes().decode()
            except UnicodeDecodeError:
                continue
    return out


def read_onnx_text(artifact: Path) -> str | None:
    import onnx

    model = onnx.load(str(artifact), load_external_data=False)
    return {p.key: p.value for p in model.metadata_props}.get(EMBED_KEY)


def read_tflite_text(artifact: Path) -> str | None:
    return read_tflite_metadata(artifact).get(EMBED_KEY)


def read_coreml_text(artifact: Path) -> str | None:
    from aestheticnet.artifacts.coreml_package import read_spec

    return dict(read_spec(artifact).description.metadata.userDefined).get(EMBED_KEY)


def read_executorch_text(path: Path) -> str | None:
    """The JSON string returned by the program's :data:`EXECUTORCH_METHOD`, ``None`` when it has none."""
    from executorch.runtime import Runtime

    program = Runtime.get().load_program(str(path))
    if EXECUTORCH_METHOD not in program.method_names:
        return None
    (value,) = program.load_method(EXECUTORCH_METHOD).execute([])
    return str(value)


def read_embedded(artifact: str | os.PathLike) -> dict[str, Any] | None:
    """The manifest embedded in an artifact by its format's reader (``FormatSpec.read_embedded``); ``None`` when there is none or it is unreadable
    (the caller then reports the missing manifest, naming the file)."""
    artifact = Path(artifact)
    try:
        spec = SPECS[format_of_path(artifact)]
        if spec.read_embedded is None or artifact.is_dir() != spec.directory:
            return None
        raw = spec.read_embedded(artifact)
        return json.loads(raw) if raw else None
    except Exception:  # noqa: BLE001 - a damaged file has no readable manifest; its runtime reports the damage
        return None
