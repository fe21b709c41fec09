"""The benchmark matrix: models x threads x shapes, each measured in a fresh process, locally or over SSH.

``run_benchmark`` returns one report (a JSON-ready dict): the settings, the machine that ran the harness, the
device that ran the measurements (CPU model, cores, OS, Python and library versions), and one row per model x
backend x threads x shape with load/init time, first inference, warm-up mean, p50/p90/p99/mean/std/min/max
latency, throughput, peak memory (RSS delta) and, for a program that plans it when it loads (ExecuTorch), the
memory its export planned, file size, params and MACs (with where they came from).
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from aestheticnet.artifacts import check_digest, check_shapes, read_manifest
from aestheticnet.bench.devices import BenchError, Job, LocalDevice, remote_formats
from aestheticnet.bench.manifest import CHECKPOINT, PACKAGE_BACKEND, file_format, model_facts
from aestheticnet.bench.ssh import SshDevice
from aestheticnet.sizes import SIZE_MULTIPLE, Shape, parse_shapes

__all__ = ["REPORT_SCHEMA", "ROW_FIELDS", "BenchSettings", "parse_shapes", "parse_threads", "run_benchmark"]

REPORT_SCHEMA = "aestheticnet.bench/1"
DEFAULT_RUNS = 50

# Every row has these keys (null when not measured or unknown); the tests check them all.
ROW_FIELDS = (
    "model",
    "path",
    "format",
    "precision",
    "backend",
    "runtime_version",
    "xnnpack",
    "threads",
    "shape",
    "batch",
    "layout",
    "input_dtype",
    "load_ms",
    "first_inference_ms",
    "warmup_runs",
    "warmup_mean_ms",
    "mode",
    "runs",
    "p50_ms",
    "p90_ms",
    "p99_ms",
    "mean_ms",
    "std_ms",
    "min_ms",
    "max_ms",
    "throughput_ips",
    "peak_rss_delta_bytes",
    "peak_rss_bytes",
    "peak_rss_method",
    "planned_memory_bytes",
    "file_size_bytes",
    "params",
    "params_source",
    "macs",
    "macs_source",
    "facts_note",
    "achieved_gmacs_per_s",
    "load_average",
    "ok",
    "error_kind",
    "error",
)


@dataclass(frozen=True)
class BenchSettings:
    """What to measure. ``shapes`` are :class:`~aestheticnet.sizes.Shape` values; one run measures one batch:
    ``batch``, or the batch of the shapes that state one (NxHxW with N > 1), which must then agree."""

    threads: tuple[int, ...] = (1,)
    shapes: tuple[Shape, ...] = (Shape(224, 224),)
    batch: int = 1
    warmup: int = 5
    runs: int | None = None  # DEFAULT_RUNS when min_seconds is None too
    min_seconds: float | None = None
    timeout_s: float = 600.0  # per measurement
    multiple: int = SIZE_MULTIPLE

    def __post_init__(self) -> None:
        if any(not isinstance(s, Shape) for s in self.shapes):
            raise BenchError(f"shapes {list(self.shapes)}: expected aestheticnet.sizes.Shape values")
        stated = {s.batch for s in self.shapes if s.batch != 1}
        if len(stated) > 1 or (stated and self.batch not in (1, *stated)):
            raise BenchError(
                f"shapes {', '.join(map(str, self.shapes))} with batch {self.batch}: one run measures "
                "one batch; give it with --batch or as N in NxHxW, the same for every shape"
            )
        if stated:
            object.__setattr__(self, "batch", stated.pop())
        object.__setattr__(self, "shapes", tuple(dict.fromkeys(Shape(s.height, s.width) for s in self.shapes)))

    @property
    def sizes(self) -> tuple[tuple[int, int], ...]:
        """``(height, width)`` of every shape, in order."""
        return tuple(s.size for s in self.shapes)

    def validate(self) -> None:
        if not self.threads or any(t < 1 for t in self.threads):
            raise BenchError(f"threads {list(self.threads)}: need one or more counts >= 1")
        if not self.shapes:
            raise BenchError("no input shapes given")
        if self.batch < 1:
            raise BenchError(f"--batch {self.batch}: need at least 1")
        if self.warmup < 0:
            raise BenchError(f"--warmup {self.warmup}: need 0 or more")
        if self.runs is not None and self.min_seconds is not None:
            raise BenchError("use --runs or --min-seconds, not both")
        if self.runs is not None and self.runs < 1:
            raise BenchError(f"--runs {self.runs}: need at least 1")
        if self.min_seconds is not None and not self.min_seconds > 0:
            raise BenchError(f"--min-seconds {self.min_seconds}: need a positive duration")
        if not self.timeout_s > 0:
            raise BenchError(f"--timeout {self.timeout_s}: need a positive number of seconds")

    def jobs(self) -> list[Job]:
        runs = self.runs if (self.runs is not None or self.min_seconds is not None) else DEFAULT_RUNS
        return [
            Job(
                threads=t,
                shape=s,
                batch=self.batch,
                warmup=self.warmup,
                runs=runs,
                min_seconds=self.min_seconds,
                multiple=self.multiple,
                timeout_s=self.timeout_s,
            )
            for t in self.threads
            for s in self.sizes
        ]


def parse_threads(text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(t) for t in text.replace(" ", "").split(",") if t)
    except ValueError:
        raise BenchError(f"threads {text!r}: expected comma-separated integers, e.g. 1,2,4") from None
    if not values or any(v < 1 for v in values):
        raise BenchError(f"threads {text!r}: expected counts >= 1, e.g. 1,2,4")
    return tuple(dict.fromkeys(values))


def _now() -> str:
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")


def _check_timeable(path: Path, device) -> None:
    """Refuse, by name, a model this device cannot time: an unknown type, a format that is not timed, a model that
    only this package runs on a remote board."""
    from aestheticnet.export.registry import EXPORTERS
    from aestheticnet.runtime import model_suffixes

    fmt = file_format(path)
    exporter = EXPORTERS.get(fmt) if fmt in EXPORTERS else None
    if exporter is not None and exporter.bench_refusal:
        raise BenchError(f"{path.name}: {exporter.bench_refusal}")
    if path.is_dir():
        raise BenchError(f"{path}: is a folder; give a model file ({', '.join(model_suffixes())})")
    if fmt != CHECKPOINT and exporter is None:
        raise BenchError(f"{path.name}: unknown model type {path.suffix!r} (expected {', '.join(model_suffixes())})")
    if getattr(device, "remote", False) and (fmt == CHECKPOINT or exporter.bench_backend is None):
        raise BenchError(
            f"{path.name}: {fmt} models run only where this package runs; export to a format a board runs "
            f"({', '.join(remote_formats())}) for {device.describe()}"
        )


def _check_models(models: Sequence[str | Path], device, settings: BenchSettings, check_integrity: bool) -> list[Path]:
    """The model files, or an error naming the first that cannot be timed (before anything is timed)."""
    paths = []
    for m in models:
        p = Path(m)
        if not p.exists():
            raise BenchError(f"{p}: no such model file")
        _check_timeable(p, device)
        manifest = read_manifest(p, required=False) if file_format(p) != CHECKPOINT else None
        if manifest is not None:
            check_shapes(manifest, [Shape(h, w, settings.batch) for h, w in settings.sizes], "--shapes")
        if check_integrity:
            check_digest(p, manifest)
        paths.append(p)
    if not paths:
        raise BenchError("no model given")
    return paths


def run_benchmark(
    models: Sequence[str | Path],
    settings: BenchSettings = BenchSettings(),
    device: LocalDevice | SshDevice | None = None,
    progress: Callable[[str], None] | None = None,
    check_integrity: bool = True,
) -> dict[str, Any]:
    """Measure every model x threads x shape on ``device`` (default: this machine). See the module docstring.

    A model whose sha256 differs from its manifest's is refused unless ``check_integrity`` is False."""
    from aestheticnet.bench.runner import machine_info

    device = device or LocalDevice()
    settings.validate()
    paths = _check_models(models, device, settings, check_integrity)
    jobs = settings.jobs()
    rows: list[dict[str, Any]] = []
    device_info = None
    for path in paths:
        facts = model_facts(path, settings.sizes, settings.batch)
        # A format only this package runs is timed through runtime.load (the runner's package backend).
        model_jobs = (
            [replace(j, backend=PACKAGE_BACKEND) for j in jobs] if facts["backend"] == PACKAGE_BACKEND else jobs
        )
        results = device.run(path, model_jobs, progress=progress)
        for job, result in zip(jobs, results):
            machine = result.pop("machine", None)
            if device_info is None and isinstance(machine, dict) and "cpu_model" in machine:
                device_info = machine
            rows.append(_row(facts, job, result, machine))
    report = {
        "schema": REPORT_SCHEMA,
        "created": _now(),
        "device": device.describe(),
        "settings": {**asdict(settings), "runs_default": DEFAULT_RUNS, "shapes": [str(s) for s in settings.shapes]},
        "host": machine_info(),
        "device_info": device_info,
        "remote_dirs": list(getattr(device, "last_remote_dirs", [])) or None,
        "results": rows,
        "errors": [
            f"{r['model']} [{r['backend']}, threads={r['threads']}, {r['shape']}]: {r['error']}"
            for r in rows
            if not r["ok"]
        ],
    }
    return report


def _row(facts: dict, job: Job, result: dict, machine: dict | None) -> dict[str, Any]:
    shape = f"{job.shape[0]}x{job.shape[1]}"
    row = {k: None for k in ROW_FIELDS}
    row.update(
        model=facts["name"],
        path=facts["path"],
        format=facts["format"],
        precision=facts["precision"],
        backend=facts["backend"],
        threads=job.threads,
        shape=shape,
        batch=job.batch,
        file_size_bytes=facts["file_size_bytes"],
        planned_memory_bytes=facts["planned_memory_bytes"],
        params=facts["params"],
        params_source=facts["params_source"],
        macs=facts["macs"].get(shape),
        macs_source=facts["macs_source"],
        facts_note=facts["facts_note"],
        load_average=(machine or {}).get("load_average"),
    )
    skip = {"model", "model_file", "shape", "machine"}
    for key, value in result.items():
        if key not in skip:
            row[key] = value
    row["ok"] = bool(result.get("ok"))
    if row["ok"] and row["macs"] and row["p50_ms"]:
        row["achieved_gmacs_per_s"] = row["macs"] / (row["p50_ms"] / 1000.0) / 1e9
    return row
