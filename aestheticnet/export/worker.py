"""The child side of :class:`~aestheticnet.export.schedule.Job`: ``python -m aestheticnet.export.worker JOB.json
RESULT.json PARENT_PID`` runs one export step in a fresh Python process, which ends with its parent
(:func:`~aestheticnet.lifetime.bind_to_parent`): a killed export leaves no converter that writes a file later.

A plain subprocess rather than ``multiprocessing``: a spawned multiprocessing child re-imports the caller's main
module, which breaks every script that calls :func:`~aestheticnet.export.api.export_checkpoint` without an
``if __name__ == "__main__"`` guard. The job file names a function (``module:function``) and its JSON arguments
(tuples arrive as lists); the result file holds ``["ok", value]`` or ``["error", text]``. JSON, not pickle: the
project never unpickles, and the arguments (paths, manifests, plain option dicts) are JSON already.
"""

from __future__ import annotations

import importlib
import json
import sys
import traceback
from pathlib import Path

from aestheticnet.lifetime import bind_to_parent

__all__ = ["main"]


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
    bind_to_parent(int(sys.argv[3]))
    sys.exit(main(sys.argv[1], sys.argv[2]))
