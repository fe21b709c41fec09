"""``aestheticnet bench ops``: build a target's latency table from probes exported and timed like networks.

Every part of the final network at every shape it runs (:func:`~aestheticnet.nas.network_plan.plan_network`) gets
a probe (:mod:`aestheticnet.bench.op_probes`); identical shapes share one. Each probe and each baseline (a probe's
feed alone) is exported the way ``export_checkpoint`` exports a network (``prepare_for_export``, one
``torch.export`` with dynamic batch, height and width, ``build_onnx``; for LiteRT then ``convert_tflite``, fp32)
and timed by the device runner through :func:`~aestheticnet.bench.harness.run_benchmark`: each measurement in a
fresh process, locally or over SSH. ``rounds`` runs the whole set several times, one model after the other, so
a burst of load touches every model alike; each model's latency is the median of its rounds' p50s. An entry is
its probe's latency minus its baseline's, never below zero.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import re
import statistics
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from aestheticnet.artifacts import SPECS, Format
from aestheticnet.bench.devices import BenchError, LocalDevice
from aestheticnet.bench.harness import BenchSettings, run_benchmark
from aestheticnet.bench.op_probes import PROBES_VERSION, CopyRule, Feed, baseline_feed, copies_of, probe
from aestheticnet.bench.ssh import SshDevice
from aestheticnet.nas.latency_table import LatencyTable, TableRuntime
from aestheticnet.nas.network_plan import NetworkSpec, OpShape, plan_network
from aestheticnet.sizes import Shape

__all__ = ["OpsBenchSettings", "build_latency_table", "export_probes"]

# The format a latency table's runtime runs.
_FORMAT = {TableRuntime.ONNXRUNTIME: Format.ONNX, TableRuntime.LITERT: Format.TFLITE}


@dataclass(frozen=True)
class OpsBenchSettings:
    runtime: TableRuntime = TableRuntime.ONNXRUNTIME
    threads: int = 1
    warmup: int = 10
    runs: int = 100  # timed runs per measurement; the probes are small, so many runs cost little
    rounds: int = 3
    copies: CopyRule = CopyRule()  # copies of a part per probe
    timeout_s: float = 300.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "runtime", TableRuntime(self.runtime))
        c = self.copies
        counts = (self.threads, self.runs, self.rounds, c.copies, c.max_copies)
        if min(counts) < 1 or min(self.warmup, c.weights_bytes) < 0:
            raise BenchError(
                f"bench ops: threads={self.threads}, runs={self.runs}, rounds={self.rounds}, "
                f"warmup={self.warmup}, {c} (need warmup and weights_bytes >= 0, the others >= 1)"
            )


def _file_name(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", text.replace("->", "to")).strip("-")


def _export(module, path: Path, spec: NetworkSpec, runtime: TableRuntime) -> Path:
    """``module`` exported fp32 by the network's own route; the file the runtime runs."""
    from aestheticnet.export.dynamic import DynamicSpec
    from aestheticnet.export.onnx.build import build_onnx
    from aestheticnet.export.prepare import prepare_for_export, trace
    from aestheticnet.nas.stem import input_multiple

    dynamic = DynamicSpec(multiple=input_multiple(spec.stem))
    prepared, _rewrites = prepare_for_export(module)
    onnx_path = path.with_suffix(SPECS[Format.ONNX].suffix)
    traced = trace(prepared, dynamic, example_size=(spec.height, spec.width), decompose=False)
    build_onnx(prepared, onnx_path, spec=dynamic, example_size=(spec.height, spec.width), traced=traced)
    if runtime == TableRuntime.ONNXRUNTIME:
        return onnx_path
    from aestheticnet.export.tflite.convert import convert_tflite

    tflite_path = path.with_suffix(SPECS[Format.TFLITE].suffix)
    convert_tflite(onnx_path, {"fp32": str(tflite_path)})
    return tflite_path


def export_probes(
    spec: NetworkSpec,
    runtime: TableRuntime,
    folder: str | Path,
    rule: CopyRule = CopyRule(),
    progress: Callable[[str], None] | None = None,
) -> tuple[dict[str, Path], dict[str, Path]]:
    """Export every probe (copies of its part by ``rule``) and baseline of ``spec`` into ``folder``; files already
    there are reused (their names say what they hold).

    Returns ``({entry key: probe file}, {feed name: baseline file})``.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    entries = plan_network(spec).entries()
    feeds = sorted({baseline_feed(s, spec) for s in entries})
    jobs: list[tuple[str, int, OpShape | None, Feed | None]] = [
        (s.key, copies_of(s, spec, rule), s, None) for s in entries
    ]
    jobs += [(f.name, 1, None, f) for f in feeds]
    files: dict[str, Path] = {}
    for n, (name, copies, shape, feed) in enumerate(jobs, 1):
        target = folder / (_file_name(f"{name} x{copies} v{PROBES_VERSION}") + SPECS[_FORMAT[runtime]].suffix)
        if not target.is_file():
            _export(probe(shape, spec, feed, copies), target, spec, runtime)
        files[name] = target
        if progress:
            progress(f"[{n}/{len(jobs)}] exported {target.name}")
    return {s.key: files[s.key] for s in entries}, {f.name: files[f.name] for f in feeds}


def _time_rounds(
    paths: list[Path], settings: OpsBenchSettings, size: Shape, device, progress: Callable[[str], None] | None
) -> tuple[dict[Path, list[float]], dict]:
    """p50 of every model in every round, and the last report (runtime version, device info)."""
    bench = BenchSettings(
        threads=(settings.threads,),
        shapes=(size,),
        warmup=settings.warmup,
        runs=settings.runs,
        timeout_s=settings.timeout_s,
    )
    times: dict[Path, list[float]] = {p: [] for p in paths}
    report: dict = {}
    for r in range(settings.rounds):
        if progress:
            progress(f"round {r + 1}/{settings.rounds}: timing {len(paths)} models")
        report = run_benchmark(paths, bench, device, progress=progress)
        if report["errors"]:
            raise BenchError("bench ops: measurements failed:\n  " + "\n  ".join(report["errors"]))
        for path, row in zip(paths, report["results"]):
            times[path].append(float(row["p50_ms"]))
    return times, report


def build_latency_table(
    spec: NetworkSpec,
    settings: OpsBenchSettings = OpsBenchSettings(),
    device: LocalDevice | SshDevice | None = None,
    models_dir: str | Path | None = None,
    progress: Callable[[str], None] | None = None,
) -> LatencyTable:
    """Export and time every probe of ``spec`` (see the module docstring). ``models_dir`` keeps the probe files
    (and reuses those already there); without it they live in a scratch folder."""
    from aestheticnet.artifacts.files import scratch_dir

    device = device or LocalDevice()
    size = Shape(spec.height, spec.width)
    if models_dir is None:
        with scratch_dir(prefix="aestheticnet-ops-") as tmp:
            return build_latency_table(spec, settings, device, tmp, progress)
    probes, baselines = export_probes(spec, settings.runtime, models_dir, settings.copies, progress)
    paths = [*probes.values(), *baselines.values()]
    times, report = _time_rounds(paths, settings, size, device, progress)
    p50 = {p: statistics.median(t) for p, t in times.items()}
    shapes = {s.key: s for s in plan_network(spec).entries()}
    entries, measurements = {}, {}
    for key, path in probes.items():
        base = baselines[baseline_feed(shapes[key], spec).name]
        copies = copies_of(shapes[key], spec, settings.copies)
        entries[key] = max(0.0, p50[path] - p50[base]) / copies
        measurements[key] = {
            "copies": copies,
            "probe_ms": p50[path],
            "baseline_ms": p50[base],
            "probe_rounds_ms": times[path],
            "baseline_rounds_ms": times[base],
        }
    rows = report["results"]
    return LatencyTable(
        runtime=settings.runtime,
        threads=settings.threads,
        network=spec,
        entries=entries,
        runtime_version=rows[0].get("runtime_version") if rows else None,
        device=report.get("device", "local"),
        measurements=measurements,
        device_info=report.get("device_info"),
        created=_dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        method={
            "probes_version": PROBES_VERSION,
            "copies": dataclasses.asdict(settings.copies),
            "rounds": settings.rounds,
            "runs": settings.runs,
            "warmup": settings.warmup,
            "statistic": "median over rounds of p50",
            "backend": rows[0].get("backend") if rows else None,
        },
    )
