"""``load(path)``: the :class:`~aestheticnet.runtime.backends.Backend` that runs a model file, by its suffix."""

from __future__ import annotations

import os
import platform
from pathlib import Path

from aestheticnet.artifacts import check_digest
from aestheticnet.runtime.backends import (
    SUFFIXES,
    Backend,
    CoreMLBackend,
    CoreMLRunner,
    MilBackend,
    ModelFileError,
    OnnxBackend,
    TFLiteBackend,
    TorchBackend,
)
from aestheticnet.runtime.executorch import ExecuTorchBackend

__all__ = ["load"]


def load(
    path: str | os.PathLike,
    threads: int | None = None,
    coreml: CoreMLRunner = CoreMLRunner.AUTO,
    check_integrity: bool = True,
) -> Backend:
    """A :class:`Backend` for a ``.safetensors``, ``.onnx``, ``.tflite``, ``.mlpackage`` or ``.pte`` model; ``coreml``
    picks what runs a ``.mlpackage`` (Core ML on macOS by default, the MIL evaluator elsewhere). An exported file
    whose sha256 differs from its sidecar manifest's is refused unless ``check_integrity`` is False."""
    path = Path(path)
    name = str(path).rstrip("/\\").lower()
    suffix = next((s for s in SUFFIXES if name.endswith(s)), None)
    if suffix is None:
        raise ModelFileError(f"{path}: unknown model type; expected a file ending in {', '.join(SUFFIXES)}")
    if not path.exists():
        raise ModelFileError(f"{path}: no such model file")
    if suffix != ".mlpackage" and path.is_dir():
        raise ModelFileError(f"{path}: is a directory; expected a {suffix} file")
    if threads is not None and int(threads) < 1:
        raise ValueError(f"threads must be >= 1 (or None for the runtime's default), got {threads}")
    if check_integrity and suffix != ".safetensors":
        check_digest(path)
    coreml = CoreMLRunner(coreml)
    if coreml == CoreMLRunner.AUTO:
        coreml = CoreMLRunner.COREML if platform.system() == "Darwin" else CoreMLRunner.MIL
    cls = {
        ".safetensors": TorchBackend,
        ".onnx": OnnxBackend,
        ".tflite": TFLiteBackend,
        ".mlpackage": CoreMLBackend if coreml == CoreMLRunner.COREML else MilBackend,
        ".pte": ExecuTorchBackend,
    }[suffix]
    return cls(path, threads)
