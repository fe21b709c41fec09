"""The phone runtimes side by side: ONNX Runtime, LiteRT and ExecuTorch, fp32 and int8, for the model the demo
ships and for the default 20-cell network.

    .venv/bin/python benchmarks/phone_runtimes.py --out /tmp/phone_runtimes \\
        [--demo CKPT] [--default CKPT] [--data DIR] [--threads 1,2] [--shapes 224x224,192x256] [--rounds 3]

For each model (``--models``; a checkpoint given with ``--demo`` / ``--default``, else a freshly initialised one
with randomised BatchNorm statistics, seeded; ``demo-raw``, ``demo-c32`` and ``demo-c48`` are the demo's
architecture without its MSCN normaliser and at 32 and 48 initial channels, always fresh) the script

1. exports ONNX, TFLite and ExecuTorch in fp32 and int8 with ``export_checkpoint`` (int8 calibrated on ``--data``,
   the synthetic default when omitted), into ``OUT/<model>``; files already there are reused, so an interrupted
   run resumes;
2. verifies every artifact against the checkpoint (``verify_artifact`` on ``--samples`` images of ``--data``): the
   verdict at the format's tolerance, and for int8 files the SROCC of their mean scores against PyTorch's;
3. times every artifact at every thread count and shape with ``aestheticnet bench``'s harness, each measurement in
   a fresh process, the artifacts of one model interleaved within each of ``--rounds`` rounds (rotated by the
   round); per artifact the median over rounds of the p50 and of the peak RSS the model adds to its process.

The tables give each p50 as a ratio to ONNX Runtime fp32 of the same model, shape and thread count, each int8
p50 as a ratio to its own fp32, and ExecuTorch's peak memory as a ratio to LiteRT's, with the issue's gates
(fp32 <= 1.25x ONNX Runtime, int8 <= 0.75x its fp32, int8 SROCC >= 0.98, ExecuTorch memory <= 2x LiteRT).
Writes ``phone_runtimes.json`` and ``phone_runtimes.md`` in ``--out``.
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path

from aestheticnet.artifacts import Format, Precision, artifact_name
from aestheticnet.bench import (
    BenchSettings,
    interleaved_rounds,
    parse_threads,
    run_benchmark,
    save_result,
    summarize_rounds,
    untrained_checkpoint,
)
from aestheticnet.data import ensure_synthetic
from aestheticnet.export import ExportOptions, VerifyOptions, export_checkpoint, verify_artifact
from aestheticnet.sizes import parse_shapes

FORMATS = (Format.ONNX, Format.TFLITE, Format.EXECUTORCH)
PRECISIONS = (Precision.FP32, Precision.INT8)
# The demo's AestheticNet* as the pipeline trains it, and the package's default network; both read MSCN input.
# The demo's architecture without its normaliser and at other widths shows where int8 starts to pay.
MODELS = {
    "demo": {"layers": 5, "init_channels": 16, "input_norm": "mscn"},
    "default": {"input_norm": "mscn"},
    "demo-raw": {"layers": 5, "init_channels": 16, "input_norm": "none"},
    "demo-c32": {"layers": 5, "init_channels": 32, "input_norm": "mscn"},
    "demo-c48": {"layers": 5, "init_channels": 48, "input_norm": "mscn"},
}
GATES = {"fp32_vs_onnxruntime": 1.25, "int8_vs_fp32": 0.75, "int8_srocc": 0.98, "executorch_memory_vs_litert": 2.0}


def fresh_checkpoint(name: str, out: Path, seed: int = 0) -> Path:
    """A freshly initialised model of kind ``name`` (``untrained_checkpoint``), the one in ``out`` when it is there."""
    path = out / f"{name}.safetensors"
    return path if path.exists() else untrained_checkpoint(path, "aestheticnet_star", seed, **MODELS[name])


def artifact_key(fmt: Format, precision: Precision) -> str:
    return f"{fmt.value} {precision.value}"


def export_model(checkpoint: Path, out: Path, data: Path) -> dict[str, Path]:
    """Every format x precision of ``checkpoint`` in ``out``, exported once (files already there are kept)."""
    spec = {artifact_key(f, p): out / artifact_name(checkpoint.stem, f, p) for f in FORMATS for p in PRECISIONS}
    missing_formats = [f for f in FORMATS if any(not spec[artifact_key(f, p)].exists() for p in PRECISIONS)]
    if missing_formats:
        options = ExportOptions(data=data)
        report = export_checkpoint(checkpoint, missing_formats, list(PRECISIONS), out, options, log=None)
        for artifact in report.artifacts:
            spec[artifact_key(artifact.format, artifact.precision)] = Path(artifact.path)
    return spec


def verify_all(artifacts: dict[str, Path], checkpoint: Path, data: Path, samples: int) -> dict[str, dict]:
    cache: dict = {}
    verdicts = {}
    for key, path in artifacts.items():
        report = verify_artifact(path, checkpoint, VerifyOptions(data=data, samples=samples), cache).to_dict()
        real = report.get("real") or {}
        verdicts[key] = {"passed": report["passed"], "srocc": real.get("srocc")}
        print(f"  verify {key}: {'passed' if report['passed'] else 'FAILED'}, SROCC {real.get('srocc')}", flush=True)
    return verdicts


def time_all(artifacts: dict[str, Path], settings: BenchSettings, rounds: int) -> dict[str, list[dict]]:
    """Per artifact, per round, the harness rows (one per thread count and shape)."""

    def measure(key: str) -> list[dict]:
        rows = run_benchmark([artifacts[key]], settings)["results"]
        failed = [r for r in rows if not r["ok"]]
        if failed:
            raise SystemExit(f"{key}: {failed[0]['error']}")
        return rows

    def show(label: str, key: str, rows: list[dict]) -> None:
        text = ", ".join(f"{r['threads']}t {r['shape']} {r['p50_ms']:.2f} ms" for r in rows)
        print(f"  {label} {key}: {text}", flush=True)

    return interleaved_rounds(list(artifacts), measure, rounds, warmup_rounds=1, progress=show)


def summarise(per_round: dict[str, list[list[dict]]]) -> list[dict]:
    """One row per artifact, thread count and shape: the median over rounds of the p50 and of the peak RSS."""
    rows = []
    for key, rounds in per_round.items():
        for index, first in enumerate(rounds[0]):
            p50s = [r[index]["p50_ms"] for r in rounds]
            rss = [r[index]["peak_rss_delta_bytes"] for r in rounds if r[index]["peak_rss_delta_bytes"] is not None]
            rows.append(
                {
                    "artifact": key,
                    "threads": first["threads"],
                    "shape": first["shape"],
                    "p50_ms": summarize_rounds(p50s),
                    "peak_rss_delta_mb": round(statistics.median(rss) / 2**20, 2) if rss else None,
                    "planned_memory_mb": (
                        round(first["planned_memory_bytes"] / 2**20, 2) if first["planned_memory_bytes"] else None
                    ),
                }
            )
    return rows


def add_ratios(rows: list[dict]) -> None:
    """Each row's p50 over ONNX Runtime fp32's and over its own format's fp32, and ExecuTorch's peak RSS over
    LiteRT's, at the same thread count and shape."""
    by_case = {(r["artifact"], r["threads"], r["shape"]): r for r in rows}
    for row in rows:
        fmt, precision = row["artifact"].split()
        same = (row["threads"], row["shape"])
        p50 = row["p50_ms"]["median"]
        onnx = by_case[(artifact_key(Format.ONNX, Precision.FP32), *same)]["p50_ms"]["median"]
        own = by_case[(f"{fmt} fp32", *same)]["p50_ms"]["median"]
        row["vs_onnxruntime_fp32"] = round(p50 / onnx, 3)
        row["vs_own_fp32"] = round(p50 / own, 3) if precision != "fp32" else None
        litert = by_case.get((f"tflite {precision}", *same), {}).get("peak_rss_delta_mb")
        is_et = fmt == Format.EXECUTORCH.value
        row["memory_vs_litert"] = round(row["peak_rss_delta_mb"] / litert, 2) if is_et and litert else None


def gate_failures(model: str, rows: list[dict], verdicts: dict[str, dict]) -> list[str]:
    """The issue's gates that a row or a verdict misses, in words."""
    misses = []
    for row in rows:
        case = f"{model} {row['artifact']} {row['threads']}t {row['shape']}"
        fp32_gate = row["threads"] == 1 and row["artifact"].endswith("fp32") and "onnx" not in row["artifact"]
        if fp32_gate and row["vs_onnxruntime_fp32"] > GATES["fp32_vs_onnxruntime"]:
            misses.append(f"{case}: {row['vs_onnxruntime_fp32']:.2f}x ONNX Runtime fp32")
        if row["threads"] == 1 and row["vs_own_fp32"] and row["vs_own_fp32"] > GATES["int8_vs_fp32"]:
            misses.append(f"{case}: {row['vs_own_fp32']:.2f}x its fp32")
        memory = row["memory_vs_litert"]
        if memory and memory > GATES["executorch_memory_vs_litert"]:
            misses.append(f"{case}: peak RSS {memory:.2f}x LiteRT's")
    for key, verdict in verdicts.items():
        if not verdict["passed"]:
            misses.append(f"{model} {key}: verify failed")
        if "int8" in key and (verdict["srocc"] or 0.0) < GATES["int8_srocc"]:
            misses.append(f"{model} {key}: SROCC vs PyTorch {verdict['srocc']}")
    return misses


def markdown(result: dict) -> str:
    lines = [
        (
            f"Threads {result['threads']}, shapes {', '.join(result['shapes'])}; medians over {result['rounds']} "
            "interleaved rounds, each measurement in a fresh process."
        ),
        "",
        (
            "| model | artifact | threads | shape | p50 ms | x ONNX Runtime fp32 | x own fp32 | peak RSS MB | "
            "x LiteRT memory | verify | SROCC vs PyTorch |"
        ),
        "|---|---|---:|---|---:|---:|---:|---:|---:|---|---:|",
    ]
    for name, model in result["models"].items():
        for row in model["rows"]:
            verdict = model["verify"].get(row["artifact"], {})
            own = "-" if row["vs_own_fp32"] is None else f"{row['vs_own_fp32']:.2f}"
            memory = "-" if row["memory_vs_litert"] is None else f"{row['memory_vs_litert']:.2f}"
            srocc = "-" if verdict.get("srocc") is None else f"{verdict['srocc']:.4f}"
            passed = {True: "passed", False: "FAILED"}.get(verdict.get("passed"), "-")
            lines.append(
                f"| {name} | {row['artifact']} | {row['threads']} | {row['shape']} | {row['p50_ms']['median']:.2f} | "
                f"{row['vs_onnxruntime_fp32']:.2f} | {own} | {row['peak_rss_delta_mb']} | {memory} | {passed} | "
                f"{srocc} |"
            )
    misses = [m for model in result["models"].values() for m in model["gate_failures"]]
    lines += ["", f"Gates ({', '.join(f'{k} {v}' for k, v in GATES.items())}): "]
    lines += [f"- {m}" for m in misses] or ["- all met"]
    return "\n".join(lines) + "\n"


def run_model(name: str, checkpoint: Path | None, args: argparse.Namespace, settings: BenchSettings) -> dict:
    out = args.out / name
    out.mkdir(parents=True, exist_ok=True)
    checkpoint = checkpoint or fresh_checkpoint(name, out)
    print(f"{name}: {checkpoint}", flush=True)
    artifacts = export_model(checkpoint, out, args.data)
    verdicts = verify_all(artifacts, checkpoint, args.data, args.samples) if args.samples else {}
    rows = summarise(time_all(artifacts, settings, args.rounds))
    add_ratios(rows)
    return {
        "checkpoint": str(checkpoint),
        "weights": "given" if checkpoint.parent != out else "fresh, BatchNorm statistics randomised",
        "artifacts": {k: str(p) for k, p in artifacts.items()},
        "verify": verdicts,
        "rows": rows,
        "gate_failures": gate_failures(name, rows, verdicts),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=Path("phone_runtimes"))
    ap.add_argument("--models", default="demo,default", help=f"comma-separated: {', '.join(MODELS)}")
    ap.add_argument("--demo", type=Path, default=None, help="checkpoint of the demo's model")
    ap.add_argument("--default", type=Path, default=None, help="checkpoint of the default network")
    ap.add_argument("--data", type=Path, default=None, help="calibration and verification images")
    ap.add_argument("--samples", type=int, default=200, help="images verify scores (0: skip verify)")
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--shapes", default="224x224,192x256")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--runs", type=int, default=30, help="timed runs per measurement")
    args = ap.parse_args()
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    unknown = [m for m in models if m not in MODELS]
    if unknown:
        ap.error(f"--models: unknown {unknown}; expected some of {', '.join(MODELS)}")
    args.out.mkdir(parents=True, exist_ok=True)
    args.data = args.data or ensure_synthetic(progress=False)
    shapes = parse_shapes(args.shapes)
    settings = BenchSettings(threads=parse_threads(args.threads), shapes=shapes, runs=args.runs, warmup=5)
    result = {
        "threads": list(settings.threads),
        "shapes": [str(s) for s in shapes],
        "rounds": args.rounds,
        "runs": args.runs,
        "gates": GATES,
        "models": {m: run_model(m, getattr(args, m, None), args, settings) for m in models},
    }
    print(save_result(result, args.out, "phone_runtimes", markdown))


if __name__ == "__main__":
    main()
