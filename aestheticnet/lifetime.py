"""Child processes that never outlive the command that started them, and the leftovers of killed runs.

A worker (an export converter, a parallel trainer, a synthetic-data renderer) calls :func:`bind_to_parent` first
thing. On Linux the kernel then kills it when its parent dies, however the parent died (``kill -9`` included):
``prctl(PR_SET_PDEATHSIG, SIGKILL)``. Elsewhere a daemon thread notices that the parent is gone (the child is
re-parented, so ``getppid`` changes) within half a second. Either way a killed command never leaves a worker that
goes on computing and writes a file later.

Temporary names written by a process carry its PID (``.<name>.tmp-<pid>-<random>``); :func:`remove_stale` deletes
those whose process no longer runs, so a rerun cleans what a killed run left.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import re
import shutil
import signal
import sys
import threading
import time
from pathlib import Path

__all__ = ["bind_to_parent", "pid_alive", "remove_stale", "temp_name"]

PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
_POLL_SECONDS = 0.5


def bind_to_parent(parent_pid: int) -> None:
    """End this process when ``parent_pid`` (the process that started it) ends.

    ``parent_pid`` is passed by the parent rather than read here, so a parent that died before this call is
    noticed too (the child has then already been re-parented).
    """
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
    if os.getppid() != parent_pid:
        os._exit(1)
    if not sys.platform.startswith("linux"):
        threading.Thread(target=_watch_parent, args=(parent_pid,), daemon=True, name="bind_to_parent").start()


def _watch_parent(parent_pid: int) -> None:
    while os.getppid() == parent_pid:
        time.sleep(_POLL_SECONDS)
    os._exit(1)


def pid_alive(pid: int) -> bool:
    """Whether a process with this PID exists (on this machine)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def temp_name(name: str, kind: str = "tmp") -> str:
    """A hidden temporary name for ``name`` that :func:`remove_stale` can tie to this process (``kind``: "tmp"
    for what is being built, "old" for what it replaces)."""
    if kind not in ("tmp", "old"):
        raise ValueError(f"kind must be 'tmp' or 'old', not {kind!r}")
    return f".{name}.{kind}-{os.getpid()}-{os.urandom(4).hex()}"


def remove_stale(folder: str | os.PathLike, name: str) -> list[Path]:
    """Remove ``folder``'s temporaries of ``name`` (see :func:`temp_name`) whose process has ended; returns them."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    pattern = re.compile(rf"^\.{re.escape(name)}\.(?:tmp|old)-(\d+)-")
    removed = []
    for entry in folder.iterdir():
        match = pattern.match(entry.name)
        if match is None or pid_alive(int(match.group(1))):
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            with contextlib.suppress(FileNotFoundError):
                entry.unlink()
        removed.append(entry)
    return removed
