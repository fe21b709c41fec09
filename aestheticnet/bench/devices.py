"""Where measurements run: one job, the runner's answer, and this machine (remote devices: ``ssh.py``).

Every measurement is one fresh ``python runner.py ...`` process (``aestheticnet/bench/runner.py``), so memory
and caches start clean and a crash or a leak in one runtime cannot touch the next measurement.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = ["MODEL_FATAL", "BenchError", "Job", "LocalDevice", "RemoteError", "remote_formats", "runner_path"]


class BenchError(ValueError):
    """A benchmark cannot run as asked; the message says what happened and what to do."""


class RemoteError(BenchError):
    """The remote device could not be reached or prepared."""


@dataclass(frozen=True)
class Job:
    """One measurement: runner arguments besides the model path, and the per-measurement timeout."""

    threads: int
    shape: tuple[int, int] = (224, 224)  # unused when the job returns the outputs of ``inputs``
    batch: int = 1
    warmup: int = 5
    runs: int | None = None
    min_seconds: float | None = None
    multiple: int = 32
    backend: str = "auto"
    timeout_s: float = 600.0
    # The name of a file sent with the model (a device's ``files``): the runner returns the outputs of its inputs
    # instead of timing.
    inputs: str | None = None

    def runner_args(self) -> list[str]:
        args = [
            "--backend",
            self.backend,
            "--threads",
            str(self.threads),
            "--shape",
            f"{self.shape[0]}x{self.shape[1]}",
            "--batch",
            str(self.batch),
            "--warmup",
            str(self.warmup),
            "--multiple",
            str(self.multiple),
        ]
        if self.min_seconds is not None:
            args += ["--min-seconds", repr(float(self.min_seconds))]
        elif self.runs is not None:
            args += ["--runs", str(self.runs)]
        if self.inputs is not None:
            args += ["--inputs", self.inputs]
        return args


def runner_path() -> Path:
    return Path(__file__).with_name("runner.py")


def error_result(kind: str, message: str, **extra) -> dict:
    return {"ok": False, "error_kind": kind, "error": message, **extra}


def parse_runner_output(stdout: str, returncode: int, stderr: str) -> dict:
    """The runner's JSON object (its last JSON line), or an error result that quotes stderr's tail."""
    for line in reversed(stdout.strip().splitlines()):
        line = line.strip()
        if line.startswith("{"):
            try:
                obj = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(obj, dict):
                return obj
    last_lines = tail(stderr)
    return error_result(
        "crashed",
        f"the runner exited with status {returncode} without a result" + (f": {last_lines}" if last_lines else ""),
    )


def tail(text: str, lines: int = 6, limit: int = 800) -> str:
    kept = [ln for ln in (text or "").strip().splitlines() if ln.strip()][-lines:]
    out = " | ".join(s.strip() for s in kept)
    return out if len(out) <= limit else "..." + out[-limit:]


# ------------------------------------------------------------------------------------------------------ local


# Errors that no other thread count or shape can fix: the remaining measurements of the model are skipped.
MODEL_FATAL = ("missing_runtime", "load_failed", "unsupported_model")
FATAL_EXIT = (3, 4)  # the runner's exit statuses for those


def skipped_result(first: dict) -> dict:
    out = {k: v for k, v in first.items() if k in ("ok", "error_kind", "error", "machine")}
    out["skipped"] = True
    return out


class LocalDevice:
    """Runs each measurement as ``sys.executable runner.py ...`` in a fresh process on this machine."""

    url = "local"
    remote = False

    def __init__(self, python: str | None = None):
        self.python = python or sys.executable

    def describe(self) -> str:
        return "local"

    def run(
        self,
        model: Path,
        jobs: Sequence[Job],
        progress: Callable[[str], None] | None = None,
        files: Mapping[str, Path] | None = None,
    ) -> list[dict]:
        """``files``: name -> path of the files the jobs name (``Job.inputs``); each job runs in a folder that
        holds them under those names, as on a remote device."""
        with tempfile.TemporaryDirectory(prefix="aestheticnet-bench-") as workdir:
            for name, path in (files or {}).items():
                os.symlink(Path(path).resolve(), Path(workdir) / name)
            return self._run_in(Path(model).resolve(), jobs, progress, workdir)

    def _run_in(self, model: Path, jobs: Sequence[Job], progress, workdir: str) -> list[dict]:
        results: list[dict] = []
        fatal = None
        for job in jobs:
            if fatal is not None:
                results.append(skipped_result(fatal))
                continue
            cmd = [self.python, str(runner_path()), str(model), *job.runner_args()]
            env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONUNBUFFERED="1")
            try:
                proc = subprocess.run(
                    cmd,
                    capture_output=True,
                    text=True,
                    timeout=job.timeout_s,
                    env=env,
                    stdin=subprocess.DEVNULL,
                    cwd=workdir,
                )
                result = parse_runner_output(proc.stdout, proc.returncode, proc.stderr)
            except subprocess.TimeoutExpired:
                result = error_result(
                    "timeout",
                    f"the measurement timed out after {job.timeout_s:g} s (raise --timeout, or use fewer runs)",
                )
            results.append(result)
            if result.get("error_kind") in MODEL_FATAL:
                fatal = result
            if progress:
                progress(progress_line(model, job, result))
        return results


def progress_line(model: Path, job: Job, result: dict) -> str:
    where = f"{model.name} threads={job.threads} {job.shape[0]}x{job.shape[1]}"
    if result.get("ok"):
        return f"{where}: p50 {result['p50_ms']:.2f} ms over {result['runs']} runs"
    return f"{where}: FAILED: {result.get('error')}"


def remote_formats() -> list[str]:
    """The formats the device runner times on a board without this package (their exporters name a backend)."""
    from aestheticnet.export.registry import EXPORTERS

    return [name for name in EXPORTERS.names() if EXPORTERS.get(name).bench_backend is not None]
