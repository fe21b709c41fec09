"""Remote devices reached with the system OpenSSH client.

A device is ``ssh://[user@]host[:port]``, or ``ssh://alias`` for a ``~/.ssh/config`` entry. One ``ssh`` session
per model streams a tar of the runner and the model on stdin into a ``mktemp -d`` folder on the device, runs each
measurement there with the device's own Python (``--remote-python``, default ``python3``), and prints the runner's
JSON lines between markers. A trap on the remote side removes the folder when the session ends for any reason;
the local side also runs ``rm -rf`` on it in a ``finally`` (after a timeout, say). Every argument that reaches the
remote shell is quoted with ``shlex.quote``. The OpenSSH client is used as it is, so keys, agents,
``~/.ssh/config`` aliases and jump hosts work; extra options come from ``--ssh-option`` or the
``AESTHETICNET_SSH_OPTS`` environment variable (one shell-style string).
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import tarfile
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote

from aestheticnet.artifacts import SPECS, Format, UnknownFormatError, format_of_path
from aestheticnet.bench.devices import (
    FATAL_EXIT,
    MODEL_FATAL,
    BenchError,
    Job,
    LocalDevice,
    RemoteError,
    error_result,
    parse_runner_output,
    progress_line,
    remote_formats,
    runner_path,
    skipped_result,
    tail,
)

__all__ = ["SSH_OPTS_ENV", "SshDevice", "SshTarget", "parse_device", "parse_ssh_url"]

SSH_OPTS_ENV = "AESTHETICNET_SSH_OPTS"
# Exported files only: a device runs the runner with its own Python and runtime, without this package's models.


def _runs_remotely(model: Path) -> bool:
    try:
        return format_of_path(model).value in remote_formats()
    except UnknownFormatError:
        return False


MARK = "@@aestheticnet-bench"
# A dead connection ends the session within a minute instead of hanging the benchmark.
_KEEPALIVE = ("ServerAliveInterval=15", "ServerAliveCountMax=4")
# Exit statuses of the remote session script (ssh itself uses 255).
_NO_PYTHON, _NO_TOOLS, _NO_TMP, _BAD_UPLOAD = 90, 91, 92, 93
# Seconds allowed on top of the measurements for connecting and uploading.
UPLOAD_GRACE_S = 120.0

_HOST_RE = re.compile(r"^[A-Za-z0-9._%-]+$|^\[[0-9A-Fa-f:.]+\]$")


@dataclass(frozen=True)
class SshTarget:
    host: str
    user: str | None = None
    port: int | None = None

    @property
    def destination(self) -> str:
        host = self.host[1:-1] if self.host.startswith("[") else self.host
        return f"{self.user}@{host}" if self.user else host

    def url(self) -> str:
        return "ssh://" + (f"{self.user}@" if self.user else "") + self.host + (f":{self.port}" if self.port else "")


def parse_ssh_url(url: str) -> SshTarget:
    """``ssh://[user@]host[:port]`` -> SshTarget; clear errors for a missing host, a bad port or odd characters."""
    if not url.startswith("ssh://"):
        raise BenchError(f"device {url!r}: expected 'local' or ssh://[user@]host[:port]")
    rest = url[len("ssh://") :].rstrip("/")
    if "/" in rest or "?" in rest or "#" in rest:
        raise BenchError(f"device {url!r}: an ssh URL has no path; use ssh://[user@]host[:port]")
    user = None
    if "@" in rest:
        user, _, rest = rest.rpartition("@")
        user = unquote(user)
        if not user or any(c.isspace() or c in "@:" for c in user) or user.startswith("-"):
            raise BenchError(f"device {url!r}: invalid user name {user!r}")
    host, port = rest, None
    if rest.startswith("["):  # [IPv6]:port
        end = rest.find("]")
        if end < 0:
            raise BenchError(f"device {url!r}: unclosed '[' in the host")
        host, tail = rest[: end + 1], rest[end + 1 :]
        if tail:
            if not tail.startswith(":"):
                raise BenchError(f"device {url!r}: unexpected {tail!r} after the host")
            port = tail[1:]
    elif ":" in rest:
        host, _, port = rest.partition(":")
    if not host or host == "[]":
        raise BenchError(
            f"device {url!r}: the ssh URL has no host; use ssh://user@host[:port] or ssh://alias "
            "(an alias from ~/.ssh/config)"
        )
    if host.startswith("-") or not _HOST_RE.match(host):
        raise BenchError(f"device {url!r}: invalid host name {host!r}")
    port_num = None
    if port is not None:
        if not port.isdigit() or not 0 < int(port) < 65536:
            raise BenchError(f"device {url!r}: port {port!r} is not a number from 1 to 65535")
        port_num = int(port)
    return SshTarget(host=host, user=user, port=port_num)


def parse_device(text: str, ssh_options: Sequence[str] = (), remote_python: str = "python3"):
    """'local' (or empty) -> LocalDevice; 'ssh://...' -> SshDevice."""
    if text in ("", "local", "localhost-process"):
        return LocalDevice()
    return SshDevice(parse_ssh_url(text), ssh_options=ssh_options, remote_python=remote_python)


def _ssh_options_from_env() -> list[str]:
    raw = os.environ.get(SSH_OPTS_ENV, "").strip()
    return shlex.split(raw) if raw else []


class SshDevice:
    """A device reached with ``ssh``; see the module docstring for the protocol."""

    remote = True

    def __init__(
        self,
        target: SshTarget,
        ssh_options: Sequence[str] = (),
        remote_python: str = "python3",
        connect_timeout_s: int = 15,
        ssh_binary: str = "ssh",
    ):
        if not remote_python or any(c in remote_python for c in "\n\r\0"):
            raise BenchError(f"--remote-python {remote_python!r} is not a command name or path")
        self.target = target
        self.url = target.url()
        self.remote_python = remote_python
        self.ssh_binary = ssh_binary
        self.options = [*_ssh_options_from_env(), *self._split_options(ssh_options)]
        self.connect_timeout_s = connect_timeout_s
        self.last_remote_dirs: list[str] = []  # the folders made on the device (all removed), for checks

    @staticmethod
    def _split_options(options: Sequence[str]) -> list[str]:
        out: list[str] = []
        for opt in options:
            out += shlex.split(opt)
        return out

    def describe(self) -> str:
        return self.url

    def ssh_command(self, remote_command: str) -> list[str]:
        ssh = shutil.which(self.ssh_binary)
        if ssh is None:
            raise BenchError(f"the OpenSSH client ({self.ssh_binary!r}) is not installed on this machine")
        options = ("BatchMode=yes", f"ConnectTimeout={self.connect_timeout_s}", *_KEEPALIVE)
        cmd = [ssh, *(arg for option in options for arg in ("-o", option))]
        if self.target.port:
            cmd += ["-p", str(self.target.port)]
        cmd += self.options
        # "--" ends the options: the destination can never be read as one.
        cmd += ["--", self.target.destination, remote_command]
        return cmd

    def _session_script(self, model_name: str, jobs: Sequence[Job], label: str = "") -> str:
        q = shlex.quote
        lines = [
            f"PY={q(self.remote_python)}",
            f'command -v "$PY" >/dev/null 2>&1 || {{ echo "{MARK} error no_python"; exit {_NO_PYTHON}; }}',
            f'for t in mktemp tar rm; do command -v "$t" >/dev/null 2>&1 || {{ echo "{MARK} error no_tool $t"; '
            f"exit {_NO_TOOLS}; }}; done",
            f'd=$(mktemp -d "${{TMPDIR:-/tmp}}/aestheticnet-bench.XXXXXXXX") || {{ echo "{MARK} error mktemp"; '
            f"exit {_NO_TMP}; }}",
            "trap 'rm -rf \"$d\"' EXIT",
            "trap 'exit 129' HUP INT TERM PIPE",
            f'echo "{MARK} dir $d"',
            f'cd "$d" && tar -xf - || {{ echo "{MARK} error upload"; exit {_BAD_UPLOAD}; }}',
            'if command -v timeout >/dev/null 2>&1; then TO=timeout; else TO=""; fi',
            "fatal=0",
        ]
        for i, job in enumerate(jobs):
            args = " ".join(q(a) for a in ["runner.py", model_name, f"--label={label}", *job.runner_args()])
            limit = q(str(max(1, int(round(job.timeout_s)))))
            lines.append(f'echo "{MARK} start {i}"; echo "{MARK} start {i}" >&2')
            # a runtime that is missing or a model that does not load: skip the model's other measurements
            lines.append(
                f'if [ "$fatal" != 0 ]; then rc=-1; elif [ -n "$TO" ]; then timeout {limit} "$PY" {args} '
                f'</dev/null; rc=$?; else "$PY" {args} </dev/null; rc=$?; fi'
            )
            lines.append(f'case "$rc" in {"|".join(map(str, FATAL_EXIT))}) fatal=1;; esac')
            lines.append(f'echo "{MARK} end {i} $rc"; echo "{MARK} end {i} $rc" >&2')
        return "; ".join(lines)

    def _remote_command(self, script: str) -> str:
        # The login shell of the user runs this string: hand the script to sh, whatever that shell is.
        return "sh -c " + shlex.quote(script)

    def _cleanup(self, remote_dir: str) -> None:
        try:
            subprocess.run(
                self.ssh_command("rm -rf -- " + shlex.quote(remote_dir)),
                capture_output=True,
                timeout=60,
                stdin=subprocess.DEVNULL,
            )
        except (subprocess.SubprocessError, OSError):
            pass

    def check_remote_path_exists(self, remote_path: str) -> bool:
        """True when ``remote_path`` exists on the device (used by tests to check that nothing is left behind)."""
        proc = subprocess.run(
            self.ssh_command("test -e " + shlex.quote(remote_path) + " && echo yes || echo no"),
            capture_output=True,
            text=True,
            timeout=60,
            stdin=subprocess.DEVNULL,
        )
        if proc.returncode != 0:
            raise RemoteError(f"{self.url}: ssh failed: {tail(proc.stderr)}")
        return proc.stdout.strip().endswith("yes")

    def run(
        self,
        model: Path,
        jobs: Sequence[Job],
        progress: Callable[[str], None] | None = None,
        files: Mapping[str, Path] | None = None,
    ) -> list[dict]:
        """``files``: name -> path of the files the jobs name (``Job.inputs``), uploaded beside the model."""
        model = Path(model)
        if not _runs_remotely(model):
            suffixes = ", ".join(SPECS[Format(f)].suffix for f in remote_formats())
            raise BenchError(
                f"{model.name}: remote devices run {suffixes} models; export "
                f"{model.suffix or 'this model'} first (aestheticnet export)"
            )
        model_name = "model" + model.suffix.lower()
        script = self._session_script(model_name, jobs, label=model.name)
        total_timeout = UPLOAD_GRACE_S + sum(j.timeout_s + 10 for j in jobs)
        with tempfile.TemporaryDirectory(prefix="aestheticnet-bench-") as tmp:
            archive = Path(tmp) / "upload.tar"
            with tarfile.open(archive, "w", format=tarfile.USTAR_FORMAT) as tar:
                tar.add(str(runner_path()), arcname="runner.py")
                tar.add(str(model), arcname=model_name)
                for name, path in (files or {}).items():
                    tar.add(str(path), arcname=name)
            cmd = self.ssh_command(self._remote_command(script))
            remote_dir = None
            stdout = ""
            timed_out = False
            try:
                with open(archive, "rb") as stdin:
                    proc = subprocess.Popen(cmd, stdin=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
                    try:
                        out, err = proc.communicate(timeout=total_timeout)
                    except subprocess.TimeoutExpired:
                        timed_out = True
                        proc.kill()
                        out, err = proc.communicate()
                stdout, stderr = out.decode("utf-8", "replace"), err.decode("utf-8", "replace")
                remote_dir, results = self._parse_session(stdout, stderr, proc.returncode, jobs, timed_out)
            finally:
                if remote_dir is None:
                    remote_dir = _find_dir(stdout)
                if remote_dir:
                    self.last_remote_dirs.append(remote_dir)
                    self._cleanup(remote_dir)
        for job, result in zip(jobs, results):
            if progress:
                progress(progress_line(model, job, result))
        return results

    def _parse_session(self, stdout: str, stderr: str, returncode: int, jobs: Sequence[Job], timed_out: bool):
        """``(remote folder, one result per job)`` from the session's output; RemoteError when the session failed
        before the measurements."""
        remote_dir = _find_dir(stdout)
        self._check_session_started(stdout, stderr, returncode, timed_out, remote_dir)
        results = self._job_results(stdout, stderr, returncode, jobs, timed_out)
        for r in results:
            r.setdefault("remote_dir", remote_dir)
        return remote_dir, results

    def _check_session_started(
        self, stdout: str, stderr: str, returncode: int, timed_out: bool, remote_dir: str | None
    ) -> None:
        """RemoteError when ssh could not connect, the session script reported a setup error, or no folder was made."""
        if returncode == 255 and remote_dir is None:
            raise RemoteError(
                f"cannot reach {self.url} over SSH: {tail(stderr) or 'ssh exited with status 255'} "
                "(check the host, port, user and key; extra ssh options go in --ssh-option)"
            )
        for line in stdout.splitlines():
            if line.startswith(f"{MARK} error"):
                raise self._setup_error(line[len(f"{MARK} error") :].strip(), stderr)
        if remote_dir is None:
            if timed_out:
                raise RemoteError(f"{self.url}: no answer from the device within the time limit")
            raise RemoteError(f"{self.url}: the remote session failed (status {returncode}): {tail(stderr)}")

    def _setup_error(self, what: str, stderr: str) -> RemoteError:
        """The error for the setup failure that the session script reported in its ``MARK error WHAT`` line."""
        if what == "no_python":
            return RemoteError(
                f"{self.url}: Python {self.remote_python!r} was not found on the device; install "
                "python3 there or point --remote-python at it"
            )
        if what.startswith("no_tool"):
            return RemoteError(
                f"{self.url}: the device has no {what.split()[-1]!r} command, which the runner upload needs"
            )
        if what == "mktemp":
            return RemoteError(f"{self.url}: cannot create a temporary folder on the device: {tail(stderr)}")
        return RemoteError(f"{self.url}: uploading the runner and the model failed: {tail(stderr)}")

    def _job_results(
        self, stdout: str, stderr: str, returncode: int, jobs: Sequence[Job], timed_out: bool
    ) -> list[dict]:
        """One result per job; after a model-fatal result, the jobs the script skipped get a skipped result."""
        blocks, ends = _split_blocks(stdout)
        err_blocks, _ = _split_blocks(stderr)
        results: list[dict] = []
        fatal = None
        for i, job in enumerate(jobs):
            if i not in ends:
                results.append(self._unfinished_result(job, stderr, returncode, timed_out))
            elif ends[i] == -1 and fatal is not None:
                results.append(skipped_result(fatal))
            else:
                result = self._finished_result(job, blocks.get(i, []), ends[i], "\n".join(err_blocks.get(i, [])))
                results.append(result)
                if result.get("error_kind") in MODEL_FATAL and fatal is None:
                    fatal = result
        return results

    def _finished_result(self, job: Job, out_lines: list[str], rc: int, job_err: str) -> dict:
        """The result of a job the session saw end with status ``rc``, from the runner's stdout and stderr."""
        if rc == 124 and not any(b.lstrip().startswith("{") for b in out_lines):
            return error_result(
                "timeout",
                f"the measurement timed out after {job.timeout_s:g} s "
                f"on {self.url} (raise --timeout, or use fewer runs)",
            )
        result = parse_runner_output("\n".join(out_lines), rc, job_err)
        if rc in (126, 127) and result.get("error_kind") == "crashed":
            result = error_result(
                "missing_python", f"{self.url}: {self.remote_python!r} could not run the runner: {tail(job_err)}"
            )
        return result

    def _unfinished_result(self, job: Job, stderr: str, returncode: int, timed_out: bool) -> dict:
        """The result of a job the session ended (or ran out of time) before finishing."""
        if timed_out:
            return error_result(
                "timeout", f"no result from {self.url} within the time limit ({job.timeout_s:g} s per measurement)"
            )
        return error_result(
            "connection",
            f"the session with {self.url} ended before this measurement (status {returncode}): {tail(stderr)}",
        )


def _find_dir(stdout: str) -> str | None:
    for line in (stdout or "").splitlines():
        if line.startswith(f"{MARK} dir "):
            return line[len(f"{MARK} dir ") :].strip() or None
    return None


def _split_blocks(text: str) -> tuple[dict[int, list[str]], dict[int, int]]:
    """Lines between the start and end markers of each job, and each job's exit status."""
    blocks: dict[int, list[str]] = {}
    ends: dict[int, int] = {}
    current = None
    for line in (text or "").splitlines():
        if line.startswith(f"{MARK} start "):
            current = int(line.split()[-1])
            blocks[current] = []
        elif line.startswith(f"{MARK} end "):
            parts = line.split()
            ends[int(parts[-2])] = int(parts[-1])
            current = None
        elif current is not None:
            blocks[current].append(line)
    return blocks, ends
