"""Run one export step in a fresh Python process: ``python -m aestheticnet.export.worker JOB.json RESULT.json``.

A plain subprocess rather than ``multiprocessing``: a spawned multiprocessing child re-imports the caller's main
module, which breaks every script that calls :func:`~aestheticnet.export.api.export_checkpoint` without an
``if __name__ == "__main__"`` guard. The job file names a function (``module:function``) and its JSON arguments
(tuples arrive as lists); the result file holds ``["ok", value]`` or ``["error", text]``. JSON, not pickle: the
project never unpickles, and the arguments (paths, manifests, plain option dicts) are JSON already.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import os
import subprocess
import sys
import traceback
from pathlib import Path
from typing import Any

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
        from aestheticnet.export.specs import ExportError

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
                [sys.executable, "-m", "aestheticnet.export.worker", str(self.job), str(self.out)],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            )  # fmt: skip

    def result(self) -> Any:
        code = self.process.wait()
        if self.out.is_file():
            status, value = json.loads(self.out.read_text())
            if status == "ok":
                return value
            raise self._error(value)
        from aestheticnet.export.files import log_tail

        raise self._error(f"worker process exited with code {code}:\n{log_tail(self.log)}")

    def cancel(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


def main(job_path: str, out_path: str) -> int:
    job = json.loads(Path(job_path).read_text())
    module, _, name = job["function"].partition(":")
    try:
        value = getattr(importlib.import_module(module), name)(*job["args"])
        result = ("ok", value)
    except BaseException as exc:  # noqa: BLE001 - reported to the parent as text
        result = ("error", f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=5)}")
    try:
        text = json.dumps(result)
    except (TypeError, ValueError) as exc:  # a value JSON cannot hold: a bug in the worker function
        text = json.dumps(["error", f"result of {job['function']} is not JSON: {exc}"])
    Path(out_path).write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
