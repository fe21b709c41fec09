"""Atomic outputs and quiet native code for the layers that write and read artifacts.

A failed export leaves neither a half file nor a half ``.mlpackage``.

Files go through :func:`aestheticnet.io.atomic_path`. Directories (``.mlpackage``) are built in a temporary
sibling and renamed into place; an existing package is moved aside first and removed only after the rename.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

__all__ = [
    "atomic_dir",
    "failure_text",
    "log_tail",
    "move_into_place",
    "publish",
    "quiet_fds",
    "scratch_dir",
    "silenced",
    "tree_bytes",
]


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary directory path (not yet created) next to ``path``; on success it becomes ``path``."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    # The temporary name keeps the suffix: coremltools insists on saving to a path ending in ".mlpackage".
    tmp = target.parent / f".{target.stem}.{uuid.uuid4().hex[:8]}.tmp{target.suffix}"
    try:
        yield tmp
        if not tmp.exists():
            raise FileNotFoundError(f"{tmp}: the exporter wrote nothing")
        move_into_place(tmp, target)
    except BaseException:
        _remove(tmp)
        raise


def move_into_place(src: str | os.PathLike, target: str | os.PathLike) -> None:
    """Rename ``src`` (a file or a directory on the same file system) to ``target``, replacing what is there: a
    reader sees the old one or the new one. An existing directory is moved aside first, removed after."""
    src, target = Path(src), Path(target)
    if src.is_file():
        os.replace(src, target)
        return
    old = None
    if target.exists() or target.is_symlink():
        old = target.parent / f".{target.name}.{uuid.uuid4().hex[:8]}.old"
        os.replace(target, old)
    os.replace(src, target)
    if old is not None:
        _remove(old)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


@contextlib.contextmanager
def scratch_dir(parent: str | os.PathLike | None = None, prefix: str = "aestheticnet-export-") -> Iterator[Path]:
    """A temporary working directory, removed afterwards whatever happens."""
    path = Path(tempfile.mkdtemp(prefix=prefix, dir=parent))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@contextlib.contextmanager
def quiet_fds(log_path: str | os.PathLike) -> Iterator[Path]:
    """Send this process's stdout and stderr (file descriptors 1 and 2, native code included) to ``log_path``.

    Converters (onnx2tf, the TFLite converter, coremltools) print progress bars and debug logs from C++ that
    Python-level redirection cannot catch. The log is kept so error messages can quote its tail.
    """
    log_path = Path(log_path)
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    with open(log_path, "ab") as log:
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
        try:
            yield log_path
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])


@contextlib.contextmanager
def silenced() -> Iterator[None]:
    """Discard native-code chatter (import banners, delegate notices) on stdout/stderr for a short call."""
    with quiet_fds(os.devnull):
        yield


def log_tail(log_path: str | os.PathLike, lines: int = 15) -> str:
    try:
        text = Path(log_path).read_text(errors="replace")
    except OSError:
        return ""
    keep = [ln for ln in text.splitlines() if ln.strip()][-lines:]
    return "\n".join(keep)


def failure_text(what: str, exc: BaseException, log_path: str | os.PathLike) -> str:
    """``"<what> failed: <error>"`` plus the last lines of the converter's log, for an :class:`ExportError`."""
    tail = log_tail(log_path)
    return f"{what} failed: {type(exc).__name__}: {exc}" + (f"\nconverter log (last lines):\n{tail}" if tail else "")


def tree_bytes(path: str | os.PathLike) -> int:
    path = Path(path)
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def publish(*paths: str | os.PathLike) -> None:
    """Give finished outputs the usual permissions: atomic writes go through ``mkstemp``, which creates 0600 files."""
    umask = os.umask(0)
    os.umask(umask)
    for path in paths:
        path = Path(path)
        targets = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()] if path.is_dir() else []
        for target in targets:
            with contextlib.suppress(OSError):
                target.chmod(0o666 & ~umask)
