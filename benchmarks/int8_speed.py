"""Int8 against fp32 of one checkpoint: latency, where the time goes, and whether the ranking survives.

    .venv/bin/python benchmarks/int8_speed.py --checkpoint CKPT --out /tmp/int8_speed [--rounds 5]

Exports ``CKPT`` (default: the default AestheticNet*, random weights with randomised BatchNorm statistics) to ONNX
and TFLite in fp32, in int8 with the default recipe ("int8") and in int8 with the recipe's kernel rewrites turned
off ("int8-before": signed int8 ONNX activations with their ReLUs as Relu and their depthwise convolutions at
their own channel counts, int8 RELUs left in the TFLite file), then:

1. latency at 224x224, batch 1, 1 thread (``--threads``): every artifact timed by ``aestheticnet bench``'s harness
   in a fresh process, the artifacts interleaved within each of ``--rounds`` rounds (in an order rotated by the
   round, after ``--warmup-rounds`` dropped ones); the p50 of each round, then the median over rounds with its
   spread, and the ratio of each int8 file to its fp32 file;
2. where the time goes: ONNX Runtime's profiler (1 thread, 224x224): milliseconds per operator type per run, per
   kind of convolution (depthwise by channel count, pointwise, dense), and
   the operator types left after ONNX Runtime's graph optimisations; LiteRT: the number of XNNPACK delegate
   partitions (every operator XNNPACK does not take splits the graph) and the file's operators (LiteRT's Python
   API has no per-operator timer);
3. with ``--data`` (or the synthetic default), ``verify`` of every int8 artifact against the checkpoint on
   ``--samples`` images: SROCC of its mean scores against PyTorch's (the gate is 0.98).

Writes ``int8_speed.json`` and ``int8_speed.md`` in ``--out``.
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
from pathlib import Path

import torch

from aestheticnet.artifacts import Format, Precision
from aestheticnet.bench import (
    BenchSettings,
    interleaved_rounds,
    onnxruntime_profile,
    run_benchmark,
    save_result,
    summarize_rounds,
    untrained_checkpoint,
)
from aestheticnet.data import ensure_synthetic
from aestheticnet.export import ExportOptions, Int8Recipe, VerifyOptions, export_checkpoint, verify_artifact
from aestheticnet.sizes import Shape

BEFORE = Int8Recipe(
    onnx_uint8_activations=False,
    onnx_relu_as_leaky_relu=False,
    onnx_depthwise_channel_multiple=0,
    tflite_relu_as_requantize=False,
)


def export_all(ckpt: Path, out: Path, data: Path, calibration: int) -> dict[str, Path]:
    formats = [Format.ONNX, Format.TFLITE]
    options = ExportOptions(data=data, calibration_samples=calibration)
    after = export_checkpoint(ckpt, formats, [Precision.FP32, Precision.INT8], out, options, name="star", log=None)
    before = export_checkpoint(
        ckpt, formats, [Precision.INT8], out, dataclasses.replace(options, recipe=BEFORE), name="before", log=None
    )
    arts = {f"{a.format.value} {a.precision.value}": a.path for a in after.artifacts}
    arts.update({f"{a.format.value} int8-before": a.path for a in before.artifacts})
    return arts


def interleaved_latency(arts: dict[str, Path], args: argparse.Namespace) -> dict[str, dict]:
    """Every artifact's p50 in each of ``--rounds`` interleaved rounds; the median over rounds and the spread."""
    settings = BenchSettings(threads=(args.threads,), shapes=(Shape(224, 224),), runs=args.runs, warmup=5)

    def p50(key: str) -> float:
        row = run_benchmark([arts[key]], settings)["results"][0]
        if not row["ok"]:
            raise SystemExit(f"{key}: {row['error']}")
        return row["p50_ms"]

    def show(label: str, key: str, ms: float) -> None:
        print(f"{label} {key}: p50 {ms:.1f} ms", flush=True)

    p50s = interleaved_rounds(list(arts), p50, args.rounds, warmup_rounds=args.warmup_rounds, progress=show)
    spreads = {k: summarize_rounds(v) for k, v in p50s.items()}
    return {
        k: {"p50_ms_per_round": v, "median_p50_ms": spreads[k]["median"], "spread": spreads[k]} for k, v in p50s.items()
    }


def onnx_profile(path: Path, runs: int = 20) -> dict:
    """ONNX Runtime's profile (``onnxruntime_profile``) in this report's form, convolutions told apart by kind."""
    profile = onnxruntime_profile(path, runs=runs, group=lambda n: conv_kind(n) if n.op_type in _CONVS else None)

    def table(rows: list[dict]) -> dict[str, float]:
        return {r["name"]: round(r["ms"], 3) for r in rows}

    return {
        "ms_per_run_by_op": table(profile["rows"]),
        "ms_per_run_by_convolution": table(profile["groups"]),
        "ops_after_optimisation": profile["ops_after_optimisation"],
    }


_CONVS = ("Conv", "FusedConv", "QLinearConv")


def conv_kind(node) -> str:
    """``depthwise 36ch``, ``pointwise`` or ``dense``: ONNX Runtime's int8 depthwise kernel is fast only for some
    channel counts, so depthwise convolutions are told apart by theirs."""
    attrs = {a.name: a for a in node.attribute}
    group = attrs["group"].i if "group" in attrs else 1
    kernel = list(attrs["kernel_shape"].ints) if "kernel_shape" in attrs else []
    if group > 1:
        return f"{node.op_type} depthwise {group}ch"
    return f"{node.op_type} {'pointwise' if kernel == [1, 1] else 'dense'}"


def litert_partitions(path: Path) -> dict:
    from ai_edge_litert.interpreter import Interpreter

    it = Interpreter(model_path=str(path), num_threads=1)
    inp = it.get_input_details()[0]
    it.resize_tensor_input(inp["index"], [1, 224, 224, 3])
    it.allocate_tensors()
    ops = collections.Counter(op["op_name"] for op in it._get_ops_details())
    return {"delegate_partitions": ops.pop("DELEGATE", 0), "ops_in_file": dict(ops)}


def markdown(result: dict) -> str:
    lat = result["latency"]
    lines = [
        "| artifact | p50 ms (median of rounds) | ratio to its fp32 | SROCC vs PyTorch | structure |",
        "|---|---:|---:|---:|---|",
    ]
    for key, row in lat.items():
        fmt = key.split()[0]
        fp32 = lat.get(f"{fmt} fp32", {}).get("median_p50_ms")
        ratio = f"{row['median_p50_ms'] / fp32:.2f}" if fp32 else "-"
        checked = result["verify"].get(key, {})
        srocc = "-" if checked.get("srocc") is None else f"{checked['srocc']:.4f}"
        if "passed" in checked:
            srocc += " (verify passed)" if checked["passed"] else " (verify FAILED)"
        prof = result["profiles"].get(key, {})
        if fmt == "onnx":
            left = prof.get("ops_after_optimisation", {})
            shape = ", ".join(f"{op} {left[op]}" for op in ("QLinearConv", "Conv", "DequantizeLinear") if op in left)
        else:
            shape = f"{prof.get('delegate_partitions')} XNNPACK partitions"
        lines.append(f"| {key} | {row['median_p50_ms']:.1f} | {ratio} | {srocc} | {shape} |")
    return "\n".join(lines + _convolution_lines(result)) + "\n"


def _convolution_lines(result: dict) -> list[str]:
    """ONNX Runtime's profile: milliseconds per run by kind of convolution, one column per ONNX file."""
    files = [k for k, p in result["profiles"].items() if "ms_per_run_by_convolution" in p]
    kinds = sorted({kind for k in files for kind in result["profiles"][k]["ms_per_run_by_convolution"]})
    if not kinds:
        return []
    lines = [
        "",
        f"ONNX Runtime's profiler, milliseconds per run by kind of convolution ({result['size']}, 1 thread):",
        "",
        "| convolution | " + " | ".join(files) + " |",
        "|---|" + "---:|" * len(files),
    ]
    for kind in kinds:
        cells = [result["profiles"][k]["ms_per_run_by_convolution"].get(kind) for k in files]
        lines.append(f"| {kind} | " + " | ".join("-" if c is None else f"{c:.2f}" for c in cells) + " |")
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkpoint", type=Path, default=None)
    ap.add_argument("--out", type=Path, default=Path("int8_speed"))
    ap.add_argument("--data", type=Path, default=None, help="calibration and verification images")
    ap.add_argument("--calibration-samples", type=int, default=100)
    ap.add_argument("--samples", type=int, default=200, help="images for the SROCC gate (0: skip verify)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--warmup-rounds", type=int, default=0, help="rounds run first and dropped")
    ap.add_argument("--runs", type=int, default=30, help="timed runs per artifact per round")
    args = ap.parse_args()
    torch.set_num_threads(1)
    args.out.mkdir(parents=True, exist_ok=True)
    if args.data is None:
        args.data = ensure_synthetic(progress=False)
    ckpt = args.checkpoint or untrained_checkpoint(args.out / "star.safetensors")
    arts = export_all(ckpt, args.out, args.data, args.calibration_samples)
    profiles = {k: (onnx_profile(p) if k.startswith("onnx") else litert_partitions(p)) for k, p in arts.items()}
    verify = {}
    if args.samples:
        for key, path in arts.items():
            if "int8" in key:
                options = VerifyOptions([Shape(224, 224)], data=args.data, samples=args.samples, threads=1)
                report = verify_artifact(path, ckpt, options).to_dict()
                real = report.get("real") or {}
                verify[key] = {
                    "passed": report["passed"],
                    "srocc": real.get("srocc"),
                    "mean_score_diff": real.get("mean_score_diff"),
                }
                print(
                    f"{key}: verify {'passed' if report['passed'] else 'FAILED'}, SROCC vs PyTorch {real.get('srocc')}",
                    flush=True,
                )
    latency = interleaved_latency(arts, args)
    result = {
        "checkpoint": str(ckpt),
        "weights": "given" if args.checkpoint else "random, BN statistics randomised",
        "threads": args.threads,
        "size": "224x224",
        "rounds": args.rounds,
        "warmup_rounds": args.warmup_rounds,
        "runs": args.runs,
        "artifacts": {k: str(p) for k, p in arts.items()},
        "latency": latency,
        "profiles": profiles,
        "verify": verify,
    }
    print(save_result(result, args.out, "int8_speed", markdown))


if __name__ == "__main__":
    main()
