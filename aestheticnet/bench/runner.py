#!/usr/bin/env python3
"""Self-contained latency and memory runner: one model, one thread count, one input shape, one fresh process.

This file is copied as it is to remote devices and run there with the device's own ``python3``, so it imports
only the standard library at module level; numpy and the runtime are imported when needed, and aestheticnet
(with torch) only for ``.safetensors`` models, which run locally.

    python3 runner.py MODEL [--threads N] [--shape [N]xHxW] [--batch B] [--warmup N] [--runs N | --min-seconds S]

Backends by file type: ``.onnx`` -> onnxruntime (CPU provider, ``intra_op_num_threads``); ``.tflite`` ->
ai_edge_litert (XNNPACK delegate unless ``--no-xnnpack``), else tflite_runtime, else tensorflow.lite;
``.pte`` -> ExecuTorch's Python runtime (XNNPACK delegate; ``--threads`` sets its thread pool);
``.safetensors`` -> PyTorch eager through aestheticnet. The input layout (NCHW or NHWC) and dtype are read from
the model. Random inputs of the requested batch and HxW; H and W must be multiples of ``--multiple`` (32).

It measures load/init time (model load, shape resize, tensor allocation), the first inference, the mean of the
warm-up runs, then timed runs (a fixed count or a minimum duration): p50, p90, p99, mean, std, min, max,
throughput, and the peak RSS over the process's RSS before the model was loaded. It prints exactly one JSON
object on stdout (whatever the libraries print goes to stderr) and exits 0; on an error the object has
``"ok": false``, ``"error_kind"`` and ``"error"``, and the exit status is nonzero (see ``EXIT_CODES``).
Written for Python 3.8+ so that older board images run it.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import re
import sys
import time

RUNNER_VERSION = 1

EXIT_CODES = {
    "bad_argument": 2,
    "bad_shape": 2,
    "missing_runtime": 3,
    "unsupported_model": 4,
    "load_failed": 4,
    "shape_rejected": 5,
    "inference_failed": 5,
    "internal": 6,
}

BACKENDS = ("auto", "onnxruntime", "litert", "tflite_runtime", "tensorflow", "executorch", "pytorch", "aestheticnet")

_THREAD_ENV = (
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
    "NUMEXPR_NUM_THREADS",
)


class RunnerError(Exception):
    def __init__(self, kind: str, message: str):
        super().__init__(message)
        self.kind = kind
        self.message = message


# ---------------------------------------------------------------------------------------------- machine info


def _read(path: str) -> str | None:
    try:
        with open(path, "rb") as f:
            return f.read().decode("utf-8", "replace")
    except OSError:
        return None


def _cpu_model() -> str:
    info = _read("/proc/cpuinfo") or ""
    fields: dict = {}
    for line in info.splitlines():
        if ":" in line:
            key, _, value = line.partition(":")
            fields.setdefault(key.strip(), value.strip())
    for key in ("model name", "Model", "Hardware", "cpu model", "Processor", "uarch"):
        if fields.get(key):
            name = fields[key]
            if key != "model name" and fields.get("CPU part"):
                name += f" (CPU part {fields['CPU part']})"
            return name
    tree = _read("/proc/device-tree/model")
    if tree:
        return tree.strip("\x00\n ")
    if sys.platform == "darwin":
        import subprocess

        try:
            out = subprocess.run(
                ["sysctl", "-n", "machdep.cpu.brand_string"], capture_output=True, text=True, timeout=5
            ).stdout.strip()
            if out:
                return out
        except (OSError, subprocess.SubprocessError):
            pass
    return platform.processor() or platform.machine() or "unknown"


def _physical_cores() -> int | None:
    try:
        import psutil  # optional

        return psutil.cpu_count(logical=False)
    except Exception:
        pass
    pairs = set()
    phys = core = None
    for line in (_read("/proc/cpuinfo") or "").splitlines():
        if line.startswith("physical id"):
            phys = line.split(":", 1)[1].strip()
        elif line.startswith("core id"):
            core = line.split(":", 1)[1].strip()
            pairs.add((phys, core))
    return len(pairs) or None


def _cpu_quota() -> float | None:
    """CPUs a container may use (cgroup v2 ``cpu.max`` or v1 quota), None when unlimited or unknown."""
    text = _read("/sys/fs/cgroup/cpu.max")
    if text:
        quota, _, period = text.strip().partition(" ")
        if quota != "max" and period:
            return round(int(quota) / int(period), 2)
        return None
    quota, period = _read("/sys/fs/cgroup/cpu/cpu.cfs_quota_us"), _read("/sys/fs/cgroup/cpu/cpu.cfs_period_us")
    if quota and period and int(quota) > 0:
        return round(int(quota) / int(period), 2)
    return None


def _memory_total() -> int | None:
    for line in (_read("/proc/meminfo") or "").splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) * 1024
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


def library_versions() -> dict:
    """Versions of the libraries that matter, read from package metadata (nothing heavy is imported)."""
    try:
        from importlib import metadata
    except ImportError:  # Python < 3.8
        return {}
    out = {}
    for dist in (
        "numpy",
        "onnxruntime",
        "ai-edge-litert",
        "tflite-runtime",
        "tensorflow",
        "executorch",
        "torch",
        "psutil",
        "aestheticnet",
    ):
        try:
            out[dist] = metadata.version(dist)
        except Exception:
            continue
    return out


def machine_info() -> dict:
    """CPU model, cores, OS, Python and library versions of the machine this runs on."""
    try:
        usable = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        usable = os.cpu_count()
    try:
        load = [round(x, 2) for x in os.getloadavg()]
    except (AttributeError, OSError):
        load = None
    return {
        "hostname": platform.node(),
        "cpu_model": _cpu_model(),
        "machine": platform.machine(),
        "logical_cores": os.cpu_count(),
        "physical_cores": _physical_cores(),
        "usable_cores": usable,
        "cpu_quota": _cpu_quota(),
        "memory_bytes": _memory_total(),
        "os": platform.platform(),
        "python": platform.python_version(),
        "python_implementation": platform.python_implementation(),
        "python_executable": sys.executable,
        "libraries": library_versions(),
        "load_average": load,
        # Set by an emulated board (scripts/arm64-board): its timings are the emulator's, not the ISA's.
        "emulated": os.environ.get("AESTHETICNET_EMULATED") or None,
    }


# ---------------------------------------------------------------------------------------------------- memory


def _status_kb(field: str) -> int | None:
    for line in (_read("/proc/self/status") or "").splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    return None


def current_rss() -> int | None:
    try:
        import psutil

        return int(psutil.Process().memory_info().rss)
    except Exception:
        return _status_kb("VmRSS")


def reset_peak_rss() -> bool:
    """Linux >= 4.0: writing 5 to clear_refs resets VmHWM to the current RSS, so the peak excludes imports."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def peak_rss() -> tuple:
    """(bytes, method) of the process's peak resident set size."""
    hwm = _status_kb("VmHWM")
    if hwm is not None:
        return hwm, "VmHWM"
    try:
        import resource

        maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return (maxrss if sys.platform == "darwin" else maxrss * 1024), "ru_maxrss"
    except Exception:
        return None, "unavailable"


# ------------------------------------------------------------------------------------------------ input shape


# The size grammar of ``aestheticnet.sizes`` (this file cannot import the package): ``HxW`` or ``NxHxW``, decimal
# integers joined by ``x``, case-insensitive, spaces around the whole item ignored. A test feeds both the same strings.
_SHAPE = re.compile(r"(?:(\d+)x)?(\d+)x(\d+)")
MAX_SIDE, MAX_BATCH = 2048, 64


def parse_shape(text: str, multiple: int = 32) -> tuple:
    """``"224x224"`` -> ``(1, 224, 224)``; ``"3x320x256"`` -> ``(3, 320, 256)``; H and W multiples of ``multiple``."""
    match = _SHAPE.fullmatch(str(text).strip().lower())
    if match is None:
        raise RunnerError("bad_argument", f"shape {text!r} is not HxW or NxHxW, e.g. 224x224 or 3x320x256")
    n, h, w = (int(g) if g is not None else 1 for g in match.groups())
    if n < 1 or h < 1 or w < 1:
        raise RunnerError("bad_argument", f"shape {text!r}: batch, height and width must be positive")
    if multiple > 1 and (h % multiple or w % multiple):
        raise RunnerError(
            "bad_shape",
            f"input shape {h}x{w} (HxW) is not accepted: height and width must be multiples of {multiple} "
            f"(total stride of the network), e.g. {max(multiple, h // multiple * multiple)}x"
            f"{max(multiple, w // multiple * multiple)}",
        )
    if n > MAX_BATCH or max(h, w) > MAX_SIDE:
        raise RunnerError("bad_shape", f"shape {text!r}: at most a batch of {MAX_BATCH} and sides of {MAX_SIDE}")
    return n, h, w


# --------------------------------------------------------------------------------------------------- backends


def backend_for(path: str, backend: str) -> str:
    if backend != "auto":
        return backend
    ext = os.path.splitext(path)[1].lower()
    if ext == ".onnx":
        return "onnxruntime"
    if ext == ".tflite":
        return "litert"
    if ext == ".pte":
        return "executorch"
    if ext == ".safetensors":
        return "pytorch"
    raise RunnerError(
        "unsupported_model",
        f"{_label(path)}: unknown model type {ext!r} (expected .onnx, .tflite, .pte or .safetensors)",
    )


def _layout(shape) -> str:
    """'NCHW' or 'NHWC' from an input shape whose channel axis holds 3 (other dims may be names or -1)."""
    if shape is None or len(shape) != 4:
        raise RunnerError("unsupported_model", f"expected a 4-D image input, the model's input has shape {shape}")
    if shape[1] == 3:
        return "NCHW"
    if shape[3] == 3:
        return "NHWC"
    return "NCHW"


def _make_input(np, shape, dtype, seed: int):
    rng = np.random.default_rng(seed)
    dtype = np.dtype(dtype)
    if dtype.kind == "f":
        return (rng.random(shape, dtype=np.float32) * 2 - 1).astype(dtype)
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        return rng.integers(info.min, info.max, size=shape, endpoint=True).astype(dtype)
    raise RunnerError("unsupported_model", f"input dtype {dtype} is not supported")


def _open_model(runtime: str, path: str, open_model):
    """``open_model()``; any failure becomes a ``load_failed`` error naming the runtime and the model."""
    try:
        return open_model()
    except Exception as exc:
        raise RunnerError("load_failed", f"{runtime} cannot load {_label(path)}: {_short(exc)}") from None


def _single_input(inputs):
    if len(inputs) != 1:
        raise RunnerError("unsupported_model", f"expected one input, the model has {len(inputs)}")
    return inputs[0]


class _Backend:
    """What every backend shares: random inputs of a shape, fed through the backend's own ``set_input``."""

    def prepare(self, np, shape, seed: int) -> None:
        self.set_input(_make_input(np, shape, self.dtype, seed))


class OnnxRuntimeBackend(_Backend):
    name = "onnxruntime"

    def __init__(self, threads: int):
        try:
            import onnxruntime as ort
        except ImportError as exc:
            raise RunnerError(
                "missing_runtime",
                f"onnxruntime is not installed for {sys.executable} ({exc}); "
                "install it with: python3 -m pip install onnxruntime",
            ) from None
        self.ort = ort
        self.version = ort.__version__
        self.threads = threads

    def load(self, path: str) -> None:
        ort = self.ort
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = self.threads
        opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.log_severity_level = 3
        self.session = _open_model(
            f"onnxruntime {self.version}",
            path,
            lambda: ort.InferenceSession(path, sess_options=opts, providers=["CPUExecutionProvider"]),
        )
        self.input = _single_input(self.session.get_inputs())
        self.layout = _layout(self.input.shape)
        types = {
            "tensor(float)": "float32",
            "tensor(float16)": "float16",
            "tensor(double)": "float64",
            "tensor(uint8)": "uint8",
            "tensor(int8)": "int8",
        }
        if self.input.type not in types:
            raise RunnerError("unsupported_model", f"input type {self.input.type} is not supported")
        self.dtype = types[self.input.type]

    def set_input(self, x) -> None:
        self.feed = {self.input.name: x.astype(self.dtype, copy=False)}

    def infer(self):
        return self.session.run(None, self.feed)


class TFLiteBackend(_Backend):
    def __init__(self, threads: int, flavour: str, xnnpack: bool):
        self.threads, self.xnnpack = threads, xnnpack
        order = {
            "litert": ("litert", "tflite_runtime", "tensorflow"),
            "tflite_runtime": ("tflite_runtime",),
            "tensorflow": ("tensorflow",),
        }[flavour]
        errors = []
        for name in order:
            try:
                if name == "litert":
                    from ai_edge_litert import interpreter as mod
                elif name == "tflite_runtime":
                    from tflite_runtime import interpreter as mod
                else:
                    import tensorflow as tf

                    mod = tf.lite
            except Exception as exc:
                errors.append(f"{name}: {_short(exc)}")
                continue
            self.mod, self.name = mod, name
            self.version = _dist_version(
                {"litert": "ai-edge-litert", "tflite_runtime": "tflite-runtime", "tensorflow": "tensorflow"}[name]
            )
            return
        raise RunnerError(
            "missing_runtime",
            f"no TFLite runtime for {sys.executable} ({'; '.join(errors)}); install one with: "
            "python3 -m pip install ai-edge-litert (or tflite-runtime)",
        )

    def load(self, path: str) -> None:
        kwargs = {"model_path": path, "num_threads": self.threads}
        resolver = getattr(self.mod, "OpResolverType", None) or getattr(
            getattr(self.mod, "experimental", None), "OpResolverType", None
        )
        if resolver is not None:
            kwargs["experimental_op_resolver_type"] = (
                resolver.AUTO if self.xnnpack else (resolver.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
            )
        elif not self.xnnpack:
            raise RunnerError("bad_argument", f"{self.name} cannot turn the default XNNPACK delegate off")
        self.interpreter = _open_model(f"{self.name} {self.version}", path, lambda: self.mod.Interpreter(**kwargs))
        self.detail = _single_input(self.interpreter.get_input_details())
        signature = list(self.detail.get("shape_signature", self.detail["shape"]))
        self.signature = signature
        self.layout = _layout(signature)
        self.dtype = self.detail["dtype"]
        self.outputs = [d["index"] for d in self.interpreter.get_output_details()]
        self.allocated = None  # the input shape tensors were last allocated for

    def set_input(self, x) -> None:
        """``x`` in the model's layout; the input tensor is resized (and memory planned again) when its shape
        changes."""
        index, shape = self.detail["index"], list(x.shape)
        if shape != self.allocated:
            try:
                if list(self.detail["shape"]) != shape:
                    self.interpreter.resize_tensor_input(index, shape, strict=False)
                self.interpreter.allocate_tensors()
            except Exception as exc:
                raise RunnerError(
                    "shape_rejected", f"the model's input {self.signature} cannot take shape {shape}: {_short(exc)}"
                ) from None
            self.allocated = shape
        self.x = x.astype(self.dtype, copy=False)
        self.index = index

    def infer(self):
        self.interpreter.set_tensor(self.index, self.x)
        self.interpreter.invoke()
        return [self.interpreter.get_tensor(i) for i in self.outputs]


class TorchBackend(_Backend):
    name = "pytorch"
    layout = "NCHW"

    def __init__(self, threads: int):
        try:
            import torch
        except ImportError as exc:
            raise RunnerError("missing_runtime", f"torch is not installed for {sys.executable} ({exc})") from None
        self.torch = torch
        self.version = torch.__version__
        torch.set_num_threads(threads)
        try:
            torch.set_num_interop_threads(1)
        except RuntimeError:
            pass

    def load(self, path: str) -> None:
        try:
            from aestheticnet.models import load
        except ImportError as exc:
            raise RunnerError(
                "missing_runtime",
                f".safetensors models need aestheticnet ({exc}); export to ONNX "
                "or TFLite to run on a device without it",
            ) from None
        try:
            self.model = load(path).eval()
        except Exception as exc:
            raise RunnerError("load_failed", f"aestheticnet cannot load {_label(path)}: {_short(exc)}") from None
        self.dtype = "float32"

    def set_input(self, x) -> None:
        self.x = self.torch.from_numpy(x.astype("float32", copy=False))

    def infer(self):
        with self.torch.inference_mode():
            return self.model(self.x)


class PackageBackend(_Backend):
    """Any format the aestheticnet package can load (``runtime.load``): what the harness asks for when a format's
    exporter names no runner backend of its own. Only where the package is installed, so never on a board."""

    name = "aestheticnet"
    layout = "NCHW"  # Backend.run takes NCHW whatever the file's own layout

    def __init__(self, threads: int):
        self.threads = threads
        self.version = _dist_version("aestheticnet")

    def load(self, path: str) -> None:
        try:
            from aestheticnet.runtime import load
        except ImportError as exc:
            raise RunnerError("missing_runtime", f"{_label(path)} needs the aestheticnet package ({exc})") from None
        self.model = _open_model(f"aestheticnet {self.version}", path, lambda: load(path, threads=self.threads))
        self.dtype = "float32"

    def set_input(self, x) -> None:
        self.x = x.astype("float32", copy=False)

    def infer(self):
        return self.model.run(self.x)


class ExecuTorchBackend(TorchBackend):
    """ExecuTorch's Python runtime; the input is a torch tensor as for PyTorch (``prepare`` is shared). A shape
    outside the program's exported bounds fails the first inference."""

    name = "executorch"

    def __init__(self, threads: int):
        super().__init__(threads)
        try:
            from executorch.extension.pybindings import portable_lib
            from executorch.runtime import Runtime
        except ImportError as exc:
            raise RunnerError(
                "missing_runtime",
                f"executorch is not installed for {sys.executable} ({exc}); "
                "install it with: python3 -m pip install executorch",
            ) from None
        self.runtime, self.version = Runtime.get(), _dist_version("executorch")
        reset = getattr(portable_lib, "_unsafe_reset_threadpool", None)
        if reset is not None:  # XNNPACK's thread pool; without this call it uses every core
            reset(threads)

    def load(self, path: str) -> None:
        self.method = _open_model(
            f"executorch {self.version}", path, lambda: self.runtime.load_program(path).load_method("forward")
        )
        self.dtype = "float32"

    def infer(self):
        return self.method.execute([self.x])


_LABEL = {}


def _label(path: str) -> str:
    """The model's name in messages: ``--label`` (its name on the harness side) or the file's base name."""
    return _LABEL.get("name") or os.path.basename(path)


def _dist_version(dist: str) -> str | None:
    try:
        from importlib import metadata

        return metadata.version(dist)
    except Exception:
        return None


def _short(exc: BaseException, limit: int = 600) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


def make_backend(kind: str, threads: int, xnnpack: bool):
    if kind == "onnxruntime":
        return OnnxRuntimeBackend(threads)
    if kind in ("litert", "tflite_runtime", "tensorflow"):
        return TFLiteBackend(threads, kind, xnnpack)
    if kind == "executorch":
        return ExecuTorchBackend(threads)
    if kind == "pytorch":
        return TorchBackend(threads)
    if kind == "aestheticnet":
        return PackageBackend(threads)
    raise RunnerError("bad_argument", f"unknown backend {kind!r} (choose from {', '.join(BACKENDS)})")


# ------------------------------------------------------------------------------------------------- statistics


def percentile(sorted_values, q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default), on an already sorted list."""
    if not sorted_values:
        return float("nan")
    pos = (len(sorted_values) - 1) * q / 100.0
    lo = int(math.floor(pos))
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo)


def summarize(latencies_ms, batch: int) -> dict:
    values = sorted(latencies_ms)
    n = len(values)
    mean = sum(values) / n
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1)) if n > 1 else 0.0
    total_s = sum(values) / 1000.0
    return {
        "runs": n,
        "p50_ms": percentile(values, 50),
        "p90_ms": percentile(values, 90),
        "p99_ms": percentile(values, 99),
        "mean_ms": mean,
        "std_ms": std,
        "min_ms": values[0],
        "max_ms": values[-1],
        "total_timed_s": total_s,
        "throughput_ips": batch * n / total_s if total_s > 0 else None,
    }


# ------------------------------------------------------------------------------------------------------- main


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("model")
    p.add_argument("--backend", default="auto", choices=BACKENDS)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--shape", default="224x224", help="HxW, or NxHxW for a batch of N")
    p.add_argument("--batch", type=int, default=1, help="batch of an HxW shape")
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--runs", type=int, default=None, help="timed runs (default 50 unless --min-seconds)")
    p.add_argument("--min-seconds", type=float, default=None, help="time runs until this many seconds passed")
    p.add_argument("--min-runs", type=int, default=3, help="with --min-seconds: at least this many runs")
    p.add_argument("--multiple", type=int, default=32, help="H and W must be multiples of this (1: no check)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--label", default=None, help="the model's name in messages (default: the file name)")
    p.add_argument("--no-xnnpack", action="store_true", help="TFLite: run without the default XNNPACK delegate")
    p.add_argument(
        "--inputs",
        default=None,
        help="a .npz of NCHW float32 inputs: run each once and return the outputs instead of timing",
    )
    return p


def _ms(ns: int) -> float:
    return ns / 1e6


def _checked_args(args) -> tuple:
    """``(batch, height, width)`` after checking every argument; the batch of an NxHxW shape wins over --batch 1."""
    if args.threads < 1:
        raise RunnerError("bad_argument", f"--threads {args.threads}: need at least 1")
    if args.batch < 1:
        raise RunnerError("bad_argument", f"--batch {args.batch}: need at least 1")
    if args.warmup < 0:
        raise RunnerError("bad_argument", f"--warmup {args.warmup}: need 0 or more")
    if args.runs is not None and args.min_seconds is not None:
        raise RunnerError("bad_argument", "use --runs or --min-seconds, not both")
    if args.runs is not None and args.runs < 1:
        raise RunnerError("bad_argument", f"--runs {args.runs}: need at least 1")
    if args.min_seconds is not None and not args.min_seconds > 0:
        raise RunnerError("bad_argument", f"--min-seconds {args.min_seconds}: need a positive duration")
    n, h, w = parse_shape(args.shape, args.multiple)
    if n != 1 and args.batch not in (1, n):
        raise RunnerError("bad_argument", f"--shape {args.shape} gives batch {n} but --batch is {args.batch}")
    if not os.path.isfile(args.model):
        raise RunnerError("bad_argument", f"{args.model}: no such model file")
    return max(n, args.batch), h, w


def _timed_runs(backend, args) -> tuple:
    """``(first ms, warm-up ms list, timed ms list, wall seconds of the timed runs)``."""

    def timed() -> float:
        t0 = time.perf_counter_ns()
        backend.infer()
        return _ms(time.perf_counter_ns() - t0)

    first_ms = timed()
    warm = [timed() for _ in range(args.warmup)]
    latencies = []
    wall0 = time.perf_counter()
    if args.min_seconds is not None:
        deadline = time.perf_counter() + args.min_seconds
        while time.perf_counter() < deadline or len(latencies) < args.min_runs:
            latencies.append(timed())
    else:
        for _ in range(args.runs if args.runs is not None else 50):
            latencies.append(timed())
    return first_ms, warm, latencies, time.perf_counter() - wall0


def _configure_runtimes(threads: int) -> None:
    """Set what the math libraries and runtimes read when imported: every thread pool to ``threads``, and
    TensorFlow's C++ log to errors only (unless the caller set it)."""
    for var in _THREAD_ENV:
        os.environ[var] = str(threads)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def _import_numpy():
    try:
        import numpy as np
    except ImportError as exc:
        raise RunnerError("missing_runtime", f"numpy is not installed for {sys.executable} ({exc})") from None
    return np


def _inference_timings(backend, args, shape) -> tuple:
    """``_timed_runs``, with a runtime's failure raised as ``inference_failed`` naming the model and input shape."""
    try:
        return _timed_runs(backend, args)
    except RunnerError:
        raise
    except Exception as exc:
        raise RunnerError(
            "inference_failed", f"{backend.name} failed to run {_label(args.model)} at {shape}: {_short(exc)}"
        ) from None


def _peak_memory(rss_before, peak_reset: bool) -> dict:
    """The process's peak RSS, its rise over ``rss_before`` (the RSS before the model was loaded), and how the peak
    was read."""
    peak, peak_method = peak_rss()
    return {
        "rss_before_load_bytes": rss_before,
        "peak_rss_bytes": peak,
        "peak_rss_delta_bytes": (peak - rss_before) if (peak is not None and rss_before is not None) else None,
        "peak_rss_method": peak_method
        + (" (reset before load)" if peak_reset and peak_method == "VmHWM" else " (includes imports)"),
    }


def measure(args) -> dict:
    batch, h, w = _checked_args(args)
    if args.label:
        _LABEL["name"] = args.label
    path = args.model
    kind = backend_for(path, args.backend)
    _configure_runtimes(args.threads)
    np = _import_numpy()

    t = time.perf_counter_ns()
    backend = make_backend(kind, args.threads, not args.no_xnnpack)
    import_ms = _ms(time.perf_counter_ns() - t)

    rss_before = current_rss()
    peak_reset = reset_peak_rss()
    t = time.perf_counter_ns()
    backend.load(path)
    layout = backend.layout
    shape = [batch, 3, h, w] if layout == "NCHW" else [batch, h, w, 3]
    backend.prepare(np, shape, args.seed)
    load_ms = _ms(time.perf_counter_ns() - t)

    first_ms, warm, latencies, timed_wall_s = _inference_timings(backend, args, shape)
    memory = _peak_memory(rss_before, peak_reset)
    return {
        "ok": True,
        "runner_version": RUNNER_VERSION,
        "model_file": os.path.basename(path),
        "file_size_bytes": os.path.getsize(path),
        "backend": backend.name,
        "runtime_version": backend.version,
        "xnnpack": (not args.no_xnnpack) if kind in ("litert", "tflite_runtime", "tensorflow") else None,
        "threads": args.threads,
        "shape": [h, w],
        "batch": batch,
        "layout": layout,
        "input_shape": shape,
        "input_dtype": str(np.dtype(backend.dtype)),
        "import_ms": import_ms,
        "load_ms": load_ms,
        "first_inference_ms": first_ms,
        "warmup_runs": len(warm),
        "warmup_mean_ms": sum(warm) / len(warm) if warm else None,
        "mode": "min_seconds" if args.min_seconds is not None else "runs",
        "min_seconds": args.min_seconds,
        **summarize(latencies, batch),
        "timed_wall_s": timed_wall_s,
        **memory,
    }


def compute_outputs(args) -> dict:
    """Each array of ``--inputs`` (NCHW float32, any batch and size) run once, in the order of its keys; the first
    output of each, as float lists (float32 values survive JSON exactly)."""
    if args.label:
        _LABEL["name"] = args.label
    if not os.path.isfile(args.model):
        raise RunnerError("bad_argument", f"{args.model}: no such model file")
    kind = backend_for(args.model, args.backend)
    _configure_runtimes(args.threads)
    np = _import_numpy()
    try:
        inputs = np.load(args.inputs, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise RunnerError("bad_argument", f"--inputs {args.inputs}: not a readable .npz file ({_short(exc)})") from None
    backend = make_backend(kind, args.threads, not args.no_xnnpack)
    backend.load(args.model)
    outputs = {}
    for key in sorted(inputs.files):
        x = inputs[key]
        if x.ndim != 4 or x.shape[1] != 3:
            raise RunnerError("bad_argument", f"--inputs {args.inputs}: {key} has shape {list(x.shape)}, not NCHW")
        backend.set_input(x.transpose(0, 2, 3, 1) if backend.layout == "NHWC" else x)
        try:
            got = backend.infer()
        except Exception as exc:
            where = f"{key} {list(x.shape)}"
            raise RunnerError("inference_failed", f"{backend.name} failed on {where}: {_short(exc)}") from None
        first = got[0] if isinstance(got, (list, tuple)) else got
        outputs[key] = np.asarray(first, dtype=np.float32).tolist()
    return {
        "ok": True,
        "runner_version": RUNNER_VERSION,
        "model_file": os.path.basename(args.model),
        "backend": backend.name,
        "runtime_version": backend.version,
        "threads": args.threads,
        "outputs": outputs,
    }


def _leave_package_folder() -> None:
    """Run as a script, this file's folder is ``sys.path[0]``; inside the package its neighbours (``profile.py``)
    would shadow standard-library modules that runtimes import (torch and ExecuTorch import ``cProfile``)."""
    here = os.path.dirname(os.path.abspath(__file__))
    if sys.path and os.path.abspath(sys.path[0] or os.curdir) == here:
        sys.path.pop(0)


def main(argv=None) -> int:
    _leave_package_folder()
    # Libraries may print to stdout; keep it for the one JSON object and send everything else to stderr.
    out_fd = os.dup(1)
    sys.stdout.flush()
    os.dup2(2, 1)
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:  # --help, or arguments argparse rejected (its message is on stderr)
        if exc.code in (0, None):
            return 0
        _emit(out_fd, {"ok": False, "error_kind": "bad_argument", "error": "invalid runner arguments (see stderr)"})
        return EXIT_CODES["bad_argument"]
    try:
        result = compute_outputs(args) if args.inputs else measure(args)
        code = 0
    except RunnerError as exc:
        result = {"ok": False, "error_kind": exc.kind, "error": exc.message}
        code = EXIT_CODES.get(exc.kind, 6)
    except Exception as exc:  # a bug or an unexpected library failure: still one JSON object
        result = {"ok": False, "error_kind": "internal", "error": f"{type(exc).__name__}: {_short(exc)}"}
        code = EXIT_CODES["internal"]
    result["model"] = args.model
    try:
        result["machine"] = machine_info()
    except Exception as exc:
        result["machine"] = {"error": _short(exc)}
    _emit(out_fd, result)
    return code


def _emit(fd: int, obj: dict) -> None:
    sys.stdout.flush()
    try:
        text = json.dumps(obj, allow_nan=False, default=str)
    except ValueError:  # a NaN or infinity: strict JSON has none, so send null instead
        text = json.dumps(json.loads(json.dumps(obj, default=str), parse_constant=lambda _c: None))
    data = (text + "\n").encode()
    while data:
        data = data[os.write(fd, data) :]


if __name__ == "__main__":
    sys.exit(main())
