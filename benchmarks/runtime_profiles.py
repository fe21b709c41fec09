"""Where each artifact's time goes, with each runtime's own profiler: ONNX Runtime's profiler, ExecuTorch's ETDump,
and for LiteRT (whose Python API has no operator timer) the graph timed cut after every few operators.

    .venv/bin/python benchmarks/runtime_profiles.py ART.onnx ART.tflite ART.pte [...] --out /tmp/runtime_profiles

Batch 1, ``--size`` (224x224), 1 thread, each artifact in a fresh process. Prints and writes, per artifact, the
milliseconds per operator (ONNX Runtime: per operator type; ExecuTorch: per XNNPACK operator kind, whose name
gives its data types, e.g. ``Convolution (NHWC, QC8)`` for int8 kernels or ``F32``; LiteRT: per stretch of
operators in graph order) and the total. ``runtime_profiles.json`` and ``runtime_profiles.md`` in ``--out``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from aestheticnet.artifacts import Format, format_of_path
from aestheticnet.bench import executorch_profile, litert_cut_profile, onnxruntime_profile, run_fresh, save_result
from aestheticnet.sizes import parse_shape

PROFILERS = {
    Format.ONNX: ("ONNX Runtime profiler", onnxruntime_profile),
    Format.TFLITE: ("LiteRT, graph cut after every few operators", litert_cut_profile),
    Format.EXECUTORCH: ("ExecuTorch ETDump", executorch_profile),
}


def profile_one(path: Path, size: tuple[int, int]) -> dict:
    fmt = format_of_path(path)
    if fmt not in PROFILERS:
        raise SystemExit(
            f"{path}: no profiler for {fmt.value}; expected one of {', '.join(f.value for f in PROFILERS)}"
        )
    method, profile = PROFILERS[fmt]
    return {"artifact": str(path), "format": fmt.value, "method": method, **profile(path, size)}


def markdown(result: dict) -> str:
    lines = [f"Batch 1, {result['size']}, 1 thread; milliseconds per inference (median of the runs).", ""]
    for profile in result["profiles"]:
        lines += [f"### {Path(profile['artifact']).name}: {profile['total_ms']:.3f} ms ({profile['method']})", ""]
        lines += ["| operators | ms |", "|---|---:|"]
        lines += [f"| {row['name']} | {row['ms']:.3f} |" for row in profile["rows"][:15]]
        lines.append("")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("artifacts", nargs="+", type=Path)
    ap.add_argument("--size", default="224x224", help="HxW")
    ap.add_argument("--out", type=Path, default=Path("runtime_profiles"))
    ap.add_argument("--one", action="store_true", help=argparse.SUPPRESS)  # child: profile one, print JSON
    args = ap.parse_args()
    shape = parse_shape(args.size)
    if args.one:
        print(json.dumps(profile_one(args.artifacts[0], shape.size)))
        return
    results = []
    for path in args.artifacts:
        result = run_fresh([sys.executable, __file__, str(path), "--size", args.size, "--one"])
        print(f"{path}: {result['total_ms']:.3f} ms", flush=True)
        results.append(result)
    args.out.mkdir(parents=True, exist_ok=True)
    print(save_result({"size": args.size, "threads": 1, "profiles": results}, args.out, "runtime_profiles", markdown))


if __name__ == "__main__":
    main()
