"""``verify`` with the artifact's outputs computed on a device: the same inputs, checks and tolerances as
:func:`aestheticnet.export.verify_artifact`, the numbers from the device's own runtime.

The host runs verify once here, recording every input it feeds the artifact (Gaussian inputs at the verify
shapes, the preprocessed ``--data`` images); those inputs go to the device in one ``.npz`` beside the model, the
device runner (``runner.py --inputs``) runs each once with the device's runtime and returns the outputs, and verify
runs again with them in place of this machine's. The report's ``device`` names the device, its ISA, operating
system and runtime version, and whether the artifact also passed on this machine.
"""

from __future__ import annotations

import hashlib
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from aestheticnet.bench.devices import BenchError, Job

__all__ = ["verify_on_device"]

INPUTS_FILE = "inputs.npz"
# Seconds the device may take per input on top of loading the model: emulated boards run about 20x slower.
SECONDS_PER_INPUT = 20.0


def _digest(x: np.ndarray) -> str:
    x = np.ascontiguousarray(x, dtype=np.float32)
    return hashlib.sha256(repr(x.shape).encode() + x.tobytes()).hexdigest()


class _Recorder:
    """This machine's backend, every input it is given kept in order."""

    def __init__(self, local):
        self.local = local
        self.inputs: dict[str, np.ndarray] = {}

    def __getattr__(self, name: str):
        return getattr(self.local, name)

    def run(self, batch) -> np.ndarray:
        out = self.local.run(batch)  # checks the input as the device's run will
        x = np.ascontiguousarray(batch, dtype=np.float32)
        self.inputs.setdefault(_digest(x), x)
        return out


class _DeviceOutputs:
    """The local backend's interface (a property of the file), outputs the device computed for the same inputs."""

    def __init__(self, local, outputs: dict[str, np.ndarray], name: str):
        self.local, self.outputs, self.name = local, outputs, name
        self.evaluated_by = name

    def __getattr__(self, attr: str):
        return getattr(self.local, attr)

    def run(self, batch) -> np.ndarray:
        key = _digest(np.asarray(batch))
        if key not in self.outputs:
            raise BenchError(f"the device returned no output for an input of shape {tuple(np.shape(batch))}")
        return self.outputs[key]


def _device_outputs(device, artifact: Path, inputs: dict[str, np.ndarray], threads: int) -> tuple[dict, dict]:
    """``(outputs by input digest, the runner's result)`` for ``inputs`` run on ``device``."""
    keys = {f"x{i:05d}": digest for i, digest in enumerate(inputs)}
    job = Job(threads=threads, inputs=INPUTS_FILE, timeout_s=120.0 + SECONDS_PER_INPUT * len(keys))
    with tempfile.TemporaryDirectory(prefix="aestheticnet-verify-") as tmp:
        path = Path(tmp) / INPUTS_FILE
        np.savez(path, **{key: inputs[digest] for key, digest in keys.items()})
        result = device.run(artifact, [job], files={INPUTS_FILE: path})[0]
    if not result.get("ok"):
        kind = result.get("error_kind", "error")
        raise BenchError(f"{artifact.name} on {device.describe()}: {kind}: {result.get('error')}")
    returned = result.get("outputs") or {}
    missing = sorted(set(keys) - set(returned))
    if missing:
        raise BenchError(f"{artifact.name} on {device.describe()}: no outputs for {len(missing)} of the inputs")
    outputs = {digest: np.asarray(returned[key], dtype=np.float32) for key, digest in keys.items()}
    return outputs, result


def _device_summary(device, result: dict, local_passed: bool) -> dict[str, Any]:
    machine = result.get("machine") or {}
    return {
        "url": device.describe(),
        "machine": machine.get("machine"),
        "cpu_model": machine.get("cpu_model"),
        "os": machine.get("os"),
        "python": machine.get("python"),
        "runtime": result.get("backend"),
        "runtime_version": result.get("runtime_version"),
        "emulated": machine.get("emulated"),
        "passed_on_this_machine": local_passed,
    }


def verify_on_device(artifact, reference, device, options=None, cache: dict | None = None):
    """:func:`~aestheticnet.export.verify_artifact` of ``artifact`` against ``reference``, with the artifact's
    outputs computed on ``device`` (a :class:`~aestheticnet.bench.SshDevice` or
    :class:`~aestheticnet.bench.LocalDevice`); returns the :class:`~aestheticnet.export.VerifyReport` with its
    ``device`` filled in."""
    from aestheticnet.export.verify import VerifyOptions, verify_artifact
    from aestheticnet.runtime import load

    options = VerifyOptions() if options is None else options
    cache = {} if cache is None else cache
    artifact = Path(artifact)
    if not artifact.is_file():
        raise FileNotFoundError(f"{artifact}: no such artifact")
    recorder = _Recorder(load(artifact, threads=options.threads, check_integrity=False))
    local = verify_artifact(artifact, reference, options, cache, backend=recorder)
    outputs, result = _device_outputs(device, artifact, recorder.inputs, options.threads or 1)
    name = f"{result.get('backend')} {result.get('runtime_version')} on {device.describe()}"
    report = verify_artifact(artifact, reference, options, cache, backend=_DeviceOutputs(recorder.local, outputs, name))
    report.runtime = result.get("backend")
    report.device = _device_summary(device, result, local.passed)
    return report
