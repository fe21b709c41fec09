"""File I/O: atomic writes (a reader sees the old file or the whole new one, never half a file), checked reads."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Callable, Iterator

__all__ = ["atomic_path", "atomic_write_text", "atomic_write_json", "read_parsed", "sha256_file"]


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path in the target's folder; on success it replaces ``path``, on error it is removed."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise


def atomic_write_text(path: str | Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def atomic_write_json(path: str | Path, data: Any) -> None:
    atomic_write_text(path, json.dumps(data, indent=2, sort_keys=False) + "\n")


def read_parsed(
    path: str | Path, parse: Callable[[str], Any], what: str, syntax: str, error: type[Exception] = ValueError
) -> Any:
    """Read a text file and parse it; an unreadable or malformed file raises ``error`` naming the file.

    ``what`` says what the file is ("pipeline config"), ``syntax`` what it should be written in ("TOML"); the
    parser's own error must be a ``ValueError`` (``json`` and ``tomllib`` raise subclasses of it).
    """
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise error(f"cannot read {what} {path}: {exc.strerror}") from None
    try:
        return parse(text)
    except ValueError as exc:
        raise error(f"{what} {path} is not valid {syntax}: {exc}") from None


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    """The sha256 of a file; of a folder (an ``.mlpackage``), that of its files' relative paths and digests."""
    path = Path(path)
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file())
        listing = "".join(f"{p.relative_to(path).as_posix()}\t{sha256_file(p, chunk)}\n" for p in files)
        return hashlib.sha256(listing.encode()).hexdigest()
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()
