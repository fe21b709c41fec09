"""Run one export step in a fresh Python process: ``python -m aestheticnet.export.worker JOB.pkl RESULT.pkl``.

A plain subprocess rather than ``multiprocessing``: a spawned multiprocessing child re-imports the caller's main
module, which breaks every script that calls :func:`~aestheticnet.export.api.export_checkpoint` without an
``if __name__ == "__main__"`` guard. The job file names a function (``module:function``) and its arguments; the
result file holds ``("ok", value)`` or ``("error", text)``.
"""

from __future__ import annotations

import importlib
import os
import pickle
import subprocess
import sys
import traceback
from pathlib import Path
from typing import Any

__all__ = ["Job"]


class Job:
    """A function call running in a child process; :meth:`result` waits for it and returns its value."""

    def __init__(self, function: str, args: tuple, workdir: str | os.PathLike, name: str):
        from aestheticnet.export.specs import ExportError

        self._error = ExportError
        workdir = Path(workdir)
        self.job, self.out, self.log = (
            workdir / f"{name}.job.pkl",
            workdir / f"{name}.result.pkl",
            workdir / f"{name}.log",
        )
        with open(self.job, "wb") as fh:
            pickle.dump({"function": function, "args": args}, fh)
        with open(self.log, "wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "aestheticnet.export.worker", str(self.job), str(self.out)],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            )  # fmt: skip

    def result(self) -> Any:
        code = self.process.wait()
        if self.out.is_file():
            with open(self.out, "rb") as fh:
                status, value = pickle.load(fh)
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
    with open(job_path, "rb") as fh:
        job = pickle.load(fh)
    module, _, name = job["function"].partition(":")
    try:
        value = getattr(importlib.import_module(module), name)(*job["args"])
        result = ("ok", value)
    except BaseException as exc:  # noqa: BLE001 - reported to the parent as text
        result = ("error", f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=5)}")
    with open(out_path, "wb") as fh:
        pickle.dump(result, fh)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
