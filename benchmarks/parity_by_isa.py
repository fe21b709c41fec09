"""Parity by ISA: every ONNX and TFLite file of one checkpoint verified here and on devices of other ISAs.

    scripts/arm64-board up && eval "$(scripts/arm64-board env)"
    .venv/bin/python benchmarks/parity_by_isa.py --checkpoint CKPT --device "$AESTHETICNET_BOARD" \\
        --out /tmp/parity_by_isa [--data DIR] [--samples 40]

Exports ``--checkpoint`` to ONNX and TFLite in fp32, fp16 and int8 (int8 calibrated on ``--data``, default the
synthetic dataset), then runs ``verify`` of each file on this machine and on every ``--device`` (``verify
--device``: the same inputs, the outputs computed by the device's runtime) at 224x224, 320x256 and batch 3, and on
``--samples`` real images of ``--data``. Per file and machine: the largest absolute difference from PyTorch and the
largest mean-score difference over all inputs, SROCC of the real images' mean scores, and the verdict at the
format's tolerance. A device whose results are emulated says so in its column: its numbers are the emulator's
arithmetic for that ISA, its timings (not measured here) would be meaningless.

Writes ``parity_by_isa.json`` and ``parity_by_isa.md`` in ``--out``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from aestheticnet.artifacts import Format, Precision
from aestheticnet.bench import machine_info, parse_device, save_result, verify_on_device
from aestheticnet.data import ensure_synthetic
from aestheticnet.export import ExportOptions, VerifyOptions, export_checkpoint, verify_artifact
from aestheticnet.sizes import Shape

SHAPES = (Shape(224, 224), Shape(320, 256), Shape(224, 224, batch=3))


def export_all(checkpoint: Path, out: Path, data: Path) -> list[Path]:
    report = export_checkpoint(
        checkpoint,
        [Format.ONNX, Format.TFLITE],
        [Precision.FP32, Precision.FP16, Precision.INT8],
        out,
        ExportOptions(data=data),
        log=None,
    )
    return sorted(Path(a.path) for a in report.artifacts)


def summary(report) -> dict:
    rows = [s for s in report.shapes if "max_abs" in s] + ([report.real] if report.real else [])
    return {
        "passed": report.passed,
        "max_abs": max(r["max_abs"] for r in rows),
        "mean_score_diff": max(r["mean_score_diff"] for r in rows),
        "srocc": report.real.get("srocc") if report.real else None,
        "mismatches": [str(m) for m in report.mismatches],
    }


def device_label(device: dict) -> str:
    return f"{device['machine']}{' emulated' if device.get('emulated') else ''} ({device['url']})"


def markdown(result: dict) -> str:
    machines = result["machines"]
    head = "| artifact | " + " | ".join(f"{m}: max abs / mean score / SROCC" for m in machines) + " |"
    lines = [head, "|---|" + "---|" * len(machines)]
    for row in result["rows"]:
        cells = []
        for m in machines:
            r = row["results"][m]
            srocc = "-" if r["srocc"] is None else f"{r['srocc']:.4f}"
            verdict = "passed" if r["passed"] else "**FAILED**"
            cells.append(f"{r['max_abs']:.1e} / {r['mean_score_diff']:.1e} / {srocc} ({verdict})")
        lines.append(f"| {row['artifact']} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--checkpoint", type=Path, required=True)
    ap.add_argument("--device", action="append", default=[], help="ssh://[user@]host[:port]; repeatable")
    ap.add_argument("--data", type=Path, default=None, help="calibration and real images (default: synthetic)")
    ap.add_argument("--samples", type=int, default=40)
    ap.add_argument("--out", type=Path, default=Path("parity_by_isa"))
    args = ap.parse_args()
    data = args.data or ensure_synthetic()
    options = VerifyOptions(shapes=SHAPES, data=data, samples=args.samples)
    here = machine_info()
    label = f"{here['machine']} (this machine)"
    machines = {label: {k: here[k] for k in ("machine", "cpu_model", "os", "libraries")}}
    rows = []
    for artifact in export_all(args.checkpoint, args.out / "artifacts", data):
        results = {label: summary(verify_artifact(artifact, args.checkpoint, options))}
        for url in args.device:
            report = verify_on_device(artifact, args.checkpoint, parse_device(url), options)
            details = machines.setdefault(device_label(report.device), dict(report.device, runtimes={}))
            details["runtimes"][report.device["runtime"]] = report.device["runtime_version"]
            results[device_label(report.device)] = summary(report)
        rows.append({"artifact": artifact.name, "results": results})
        print(artifact.name, json.dumps({k: (v["passed"], v["max_abs"]) for k, v in results.items()}), flush=True)
    result = {"checkpoint": str(args.checkpoint), "data": str(data), "machines": list(machines), "rows": rows}
    result["machine_details"], result["machine"] = machines, here
    print(save_result(result, args.out, "parity_by_isa", markdown))


if __name__ == "__main__":
    main()
