"""``load(path)``: the :class:`~aestheticnet.runtime.backends.Backend` that runs a model file: PyTorch for a
``.safetensors`` checkpoint, else the backend of the artifact's format, from the format registry."""

from __future__ import annotations

import os
import platform
from pathlib import Path

from aestheticnet.artifacts import SPECS, UnknownFormatError, check_digest, format_of_path
from aestheticnet.runtime.backends import Backend, CoreMLRunner, ModelFileError, TorchBackend

__all__ = ["load", "model_suffixes"]

CHECKPOINT_SUFFIX = ".safetensors"


def model_suffixes() -> tuple[str, ...]:
    """Every suffix ``load`` takes: checkpoints, then each registered format's."""
    return (CHECKPOINT_SUFFIX, *(spec.suffix for spec in SPECS.values()))


def load(
    path: str | os.PathLike,
    threads: int | None = None,
    coreml: CoreMLRunner = CoreMLRunner.AUTO,
    check_integrity: bool = True,
) -> Backend:
    """A :class:`Backend` for a ``.safetensors`` checkpoint or an artifact of any registered format; ``coreml``
    picks what runs a ``.mlpackage`` (Core ML on macOS by default, the MIL evaluator elsewhere). An exported file
    whose sha256 differs from its sidecar manifest's is refused unless ``check_integrity`` is False."""
    from aestheticnet.export.registry import exporter_for

    path = Path(path)
    if threads is not None and int(threads) < 1:
        raise ValueError(f"threads must be >= 1 (or None for the runtime's default), got {threads}")
    if str(path).rstrip("/\\").lower().endswith(CHECKPOINT_SUFFIX):
        _check_exists(path, directory=False)
        return TorchBackend(path, threads)
    try:
        fmt = format_of_path(path)
    except UnknownFormatError:
        raise ModelFileError(f"{path}: unknown model type; expected a file ending in {', '.join(model_suffixes())}")
    _check_exists(path, directory=SPECS[fmt].directory)
    if check_integrity:
        check_digest(path)
    coreml = CoreMLRunner(coreml)
    if coreml == CoreMLRunner.AUTO:
        coreml = CoreMLRunner.COREML if platform.system() == "Darwin" else CoreMLRunner.MIL
    return exporter_for(fmt).open(path, threads, coreml)


def _check_exists(path: Path, directory: bool) -> None:
    if not path.exists():
        raise ModelFileError(f"{path}: no such model file")
    if path.is_dir() and not directory:
        raise ModelFileError(f"{path}: is a directory; expected a {path.suffix or 'model'} file")
