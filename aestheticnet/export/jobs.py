"""A function call in a child process (:mod:`aestheticnet.export.worker`): the parent starts it, goes on with its
own work, and collects the value (or the error) with :meth:`Job.result`."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from aestheticnet.artifacts.files import log_tail
from aestheticnet.export.errors import ExportError

__all__ = ["Job"]


def _encode(value: Any) -> Any:
    """Dataclasses (``DynamicSpec``) as dicts and paths as strings; the worker function rebuilds what it needs."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    raise TypeError(f"{type(value).__name__} cannot go into an export job file")


class Job:
    """A function call running in a child process; :meth:`result` waits for it and returns its value."""

    def __init__(self, function: str, args: tuple, workdir: str | os.PathLike, name: str):
        self._error = ExportError
        workdir = Path(workdir)
        self.job, self.out, self.log = (
            workdir / f"{name}.job.json",
            workdir / f"{name}.result.json",
            workdir / f"{name}.log",
        )
        self.job.write_text(json.dumps({"function": function, "args": list(args)}, default=_encode))
        with open(self.log, "wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "aestheticnet.export.worker", str(self.job), str(self.out), str(os.getpid())],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )

    def result(self) -> Any:
        code = self.process.wait()
        if self.out.is_file():
            status, value = json.loads(self.out.read_text())
            if status == "ok":
                return value
            raise self._error(value)
        raise self._error(f"worker process exited with code {code}:\n{log_tail(self.log)}")

    def cancel(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
