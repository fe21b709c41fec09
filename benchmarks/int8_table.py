"""The int8 table of docs/int8.md: SROCC of int8 mean scores against PyTorch's, per checkpoint x recipe x format.

    .venv/bin/python benchmarks/int8_table.py --model demo=runs/demo/star/best.safetensors \\
        --model train_default=runs/train_default/best.safetensors --recipes default,before --out /tmp/int8_table

For every ``--model NAME=CKPT``, every recipe of ``--recipes`` and every dataset of ``--data`` (default: the
synthetic default), exports ONNX and TFLite int8 (``--precisions``; calibrated on ``--calibration-samples``
images of that dataset, as ``aestheticnet export CKPT --data DIR`` does) and verifies each artifact on
``--samples`` images of the same dataset (``aestheticnet verify ART --reference CKPT --data DIR``): the SROCC
and PLCC of its mean scores against PyTorch's, and the largest mean-score difference.

Recipes (:class:`aestheticnet.export.Int8Recipe`):
``default``; ``before``: without the kernel rewrites (signed int8 ONNX activations with their ReLUs as Relu, int8
TFLite RELUs);
``no-outliers``: no calibration image left out; ``tail-cut``: the worst tenth left out even when more images
exceed the outlier factor (``Int8Recipe.keep_heavy_tails`` off); ``equalisation``: the default with activation
ranges equalised (``Int8Recipe.equalize``, off by default).

Writes ``int8_table.json`` and ``int8_table.md`` in ``--out`` (one row per model x data x recipe).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from aestheticnet.artifacts import Format, Precision, parse_precisions
from aestheticnet.bench import machine_info, save_result
from aestheticnet.export import ExportOptions, Int8Recipe, VerifyOptions, export_checkpoint, verify_artifact
from aestheticnet.io import atomic_write_json
from aestheticnet.sizes import Shape

RECIPES = {
    "default": Int8Recipe(),
    "before": Int8Recipe(
        onnx_uint8_activations=False,
        onnx_relu_as_leaky_relu=False,
        onnx_depthwise_channel_multiple=0,
        tflite_relu_as_requantize=False,
    ),
    "no-outliers": Int8Recipe(outlier_max_fraction=0.0),
    "tail-cut": Int8Recipe(keep_heavy_tails=False),
    "equalisation": Int8Recipe(equalize=True),
}


def _named(text: str) -> tuple[str, Path]:
    name, sep, path = text.partition("=")
    if not sep or not name or not path:
        raise argparse.ArgumentTypeError(f"--model {text!r}: expected NAME=CHECKPOINT")
    if not Path(path).is_file():
        raise argparse.ArgumentTypeError(f"--model {text!r}: {path} is not a file")
    return name, Path(path)


def measure(name: str, ckpt: Path, data: Path, recipe: str, args) -> dict:
    out = args.out / name / data.name / recipe
    t0 = time.perf_counter()
    rep = export_checkpoint(
        ckpt,
        [Format.ONNX, Format.TFLITE],
        args.precisions,
        out,
        ExportOptions(data=data, calibration_samples=args.calibration_samples, recipe=RECIPES[recipe]),
        log=None,
    )
    row = {
        "model": name,
        "checkpoint": str(ckpt),
        "data": str(data),
        "recipe": recipe,
        "export_seconds": round(time.perf_counter() - t0, 1),
        "artifacts": {},
    }
    cache: dict = {}
    for art in rep.artifacts:
        options = VerifyOptions([Shape(224, 224)], data=data, samples=args.samples, threads=1)
        v = verify_artifact(art.path, ckpt, options, cache).to_dict()
        real = v.get("real") or {}
        key = f"{art.format.value} {art.precision.value}"
        row["artifacts"][key] = {
            "srocc": real.get("srocc"),
            "plcc": real.get("plcc"),
            "mean_score_diff": real.get("mean_score_diff"),
            "passed": v["passed"],
        }
        print(f"{name} {data.name} {recipe} {key}: SROCC {real.get('srocc')}", flush=True)
    return row


def markdown(result: dict) -> str:
    rows = result["rows"]
    keys = sorted({k for r in rows for k in r["artifacts"]})
    columns = [(k, "srocc", "SROCC", ".4f") for k in keys] + [
        (k, "mean_score_diff", "largest score diff", ".3f") for k in keys
    ]
    header = " | ".join(f"{k} {label}" for k, _, label, _ in columns)
    lines = [f"| model | data | recipe | {header} |", "|---|---|---|" + "---:|" * len(columns)]
    for r in rows:
        cells = []
        for k, field, _, form in columns:
            value = r["artifacts"].get(k, {}).get(field)
            cells.append("-" if value is None else format(value, form))
        lines.append(f"| {r['model']} | {Path(r['data']).name} | {r['recipe']} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=_named, action="append", required=True, help="NAME=CHECKPOINT (repeat)")
    ap.add_argument("--data", type=Path, action="append", default=None, help="dataset folder (repeat)")
    ap.add_argument("--recipes", default="default", help=f"comma-separated: {', '.join(RECIPES)}")
    ap.add_argument("--precisions", default="int8", help="int8[,int8-dynamic]")
    ap.add_argument("--samples", type=int, default=200)
    ap.add_argument("--calibration-samples", type=int, default=100)
    ap.add_argument("--out", type=Path, default=Path("int8_table"))
    args = ap.parse_args()
    recipes = [r for r in args.recipes.split(",") if r]
    unknown = [r for r in recipes if r not in RECIPES]
    if unknown:
        ap.error(f"--recipes: unknown {unknown}; valid: {', '.join(RECIPES)}")
    args.precisions = [p for p in parse_precisions(args.precisions) if p in (Precision.INT8, Precision.INT8_DYNAMIC)]
    torch.set_num_threads(1)
    if args.data is None:
        from aestheticnet.data import ensure_synthetic

        args.data = [ensure_synthetic(progress=False)]
    args.out.mkdir(parents=True, exist_ok=True)
    result = {"rows": [], "machine": machine_info()}
    for name, ckpt in args.model:
        for data in args.data:
            for recipe in recipes:
                result["rows"].append(measure(name, ckpt, data, recipe, args))
                atomic_write_json(args.out / "int8_table.json", result)  # each row kept as soon as it is measured
    print(save_result(result, args.out, "int8_table", markdown))


if __name__ == "__main__":
    main()
