"""Export timings and parity of every format x precision for the default AestheticNet*.

    .venv/bin/python benchmarks/export_parity.py --out /tmp/parity            # default model, everything
    .venv/bin/python benchmarks/export_parity.py --layers 8 --init-channels 16 --fit-steps 60 --samples 200
    .venv/bin/python benchmarks/export_parity.py --fit-steps 600 --teacher runs/td_final_lr01/best.safetensors
    .venv/bin/python benchmarks/export_parity.py --start OUT/star.safetensors --fit-steps 1400 --fit-seed 1 \
        --teacher runs/td_final_lr01/best.safetensors                          # continue fitting that model

Steps:
1. build the model (default: ``create_model("aestheticnet_star")``, 20 cells, C=36) and fit it briefly on the
   synthetic dataset (``--fit-steps`` Adam steps at 96x128, cross-entropy to the vote histograms) so that its
   scores vary across images: a randomly initialised network gives near-constant outputs, which makes rank
   correlations meaningless. ``--fit-steps 0`` keeps the random weights (BN statistics randomised instead).
   ``--teacher CKPT`` fits to a trained model's predicted distributions instead (distillation): a default-size
   network whose outputs spread like a trained aesthetic model's (the synthetic set is too small to train the
   20-cell network itself: it collapses to one-hot outputs, whose mean score is a step function of the logits);
2. timed fp32 export of all three formats together (the 90 s criterion), with the load average;
3. export of every precision (int8 calibrated on ``--calibration-samples`` dataset images);
4. ``verify`` of every artifact at 224x224, 320x256, 512x384, 96x640 and batch 3, and on ``--samples`` real
   images (SROCC/PLCC against PyTorch's mean scores).

Prints a table and writes ``export_parity.json`` and ``export_parity.md`` in ``--out``.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import torch

from aestheticnet.artifacts import Format, Precision, parse_formats, parse_precisions
from aestheticnet.bench import save_result, vary_batchnorm
from aestheticnet.data import Preprocess, ensure_synthetic, open_dataset
from aestheticnet.export import ExportOptions, VerifyOptions, export_checkpoint, verify_artifact
from aestheticnet.models import create_model, load, read_metadata, save

# The fitted checkpoint is saved with the preprocessing it was fitted at (the synthetic images are 256x192 ->
# 128x96): fitting BatchNorm at one resolution and evaluating at another made a degenerate, bimodal model on which
# fp16 and int8 comparisons say more about the model than about the export.
FIT_PRE = {
    "policy": "aspect",
    "size": 96,
    "max_side": 160,
    "multiple": 32,
    "mean": [0.485, 0.456, 0.406],
    "std": [0.229, 0.224, 0.225],
}


def fit(model, data_dir: Path, steps: int, batch: int = 16, seed: int = 0, teacher=None):
    if steps <= 0:
        return vary_batchnorm(model), {"steps": 0}
    ds = open_dataset(data_dir, preprocess=Preprocess.from_dict(FIT_PRE))
    g = torch.Generator().manual_seed(seed)
    picked = torch.randperm(len(ds), generator=g)[:512].tolist()
    # one shape for batching (the synthetic set has one; other datasets are resized to 96x128)
    xs = torch.stack(
        [torch.nn.functional.interpolate(ds[i][0][None], size=(96, 128), mode="bilinear")[0] for i in picked]
    )
    ys = torch.stack([ds[i][1] for i in picked])
    if teacher is not None:  # distillation: the teacher's predicted distributions replace the vote histograms
        with torch.no_grad():
            ys = torch.cat([teacher.eval()(xs[i : i + 64]) for i in range(0, len(xs), 64)])
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    model.train()
    t0, losses = time.perf_counter(), []
    for _ in range(steps):
        idx = torch.randint(len(xs), (batch,), generator=g)
        loss = -(ys[idx] * torch.log(model(xs[idx]) + 1e-8)).sum(1).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return model.eval(), {
        "steps": steps,
        "seconds": round(time.perf_counter() - t0, 1),
        "loss_first": losses[0],
        "loss_last": sum(losses[-10:]) / min(10, len(losses)),
    }


def _verify_all(rep, ckpt, data, args) -> list[dict]:
    """verify every exported artifact at the default shapes and on real images; one row per artifact."""
    rows, cache = [], {}
    for a in rep.artifacts:
        t0 = time.perf_counter()
        # Without shapes, verify checks its default set: the sizes this script's docstring lists.
        v = verify_artifact(a.path, ckpt, VerifyOptions(data=data, samples=args.samples, threads=args.threads), cache)
        d = v.to_dict()
        d["verify_seconds"] = round(time.perf_counter() - t0, 1)
        rows.append(d)
        real = d.get("real") or {}
        worst = max((s.get("max_abs") or 0.0) for s in d["shapes"]) if d["shapes"] else None
        print(
            f"{a.format.value:<7}{a.precision.value:<13} passed={d['passed']!s:<5} worst max_abs={worst}  "
            f"real: srocc={real.get('srocc')} mean-score diff={real.get('mean_score_diff')}",
            flush=True,
        )
    return rows


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=Path("export_parity"))
    ap.add_argument("--data", type=Path, default=None, help="dataset (default: the synthetic dataset, built if absent)")
    ap.add_argument("--layers", type=int, default=None)
    ap.add_argument("--init-channels", type=int, default=None)
    ap.add_argument("--fit-steps", type=int, default=60)
    ap.add_argument("--fit-seed", type=int, default=0, help="seed of the fitting images and batches")
    ap.add_argument(
        "--teacher",
        type=Path,
        default=None,
        help="checkpoint whose predicted distributions are the fitting targets (instead of the vote histograms)",
    )
    ap.add_argument(
        "--start",
        type=Path,
        default=None,
        help="checkpoint to start from instead of a new model (with --fit-steps 0: used as it is)",
    )
    ap.add_argument("--samples", type=int, default=200, help="real images for SROCC/PLCC")
    ap.add_argument("--calibration-samples", type=int, default=100)
    ap.add_argument("--formats", default="onnx,tflite,coreml")
    ap.add_argument("--precisions", default="fp32,fp16,int8,int8-dynamic")
    ap.add_argument("--skip-timing", action="store_true", help="skip the separate fp32 timing run")
    ap.add_argument("--threads", type=int, default=None, help="runtime threads for the artifacts")
    ap.add_argument(
        "--torch-threads",
        type=int,
        default=1,
        help="PyTorch threads for fitting and the reference (1: OpenMP spin-waits on busy machines)",
    )
    return ap.parse_args()


def fitted_checkpoint(args: argparse.Namespace, data: Path, overrides: dict) -> tuple[Path, dict]:
    """The model of ``--start`` or a new one, fitted (``fit``) and saved with its preprocessing; how it was fitted."""
    torch.manual_seed(0)
    teacher = load(args.teacher) if args.teacher is not None else None
    if args.start is not None:
        model, fit_info = load(args.start), {"steps": 0}
        if args.fit_steps > 0:
            model, fit_info = fit(model, data, args.fit_steps, seed=args.fit_seed, teacher=teacher)
        fit_info["start"] = str(args.start)
        preprocess = FIT_PRE if args.fit_steps > 0 else read_metadata(args.start).get("preprocess")
    else:
        model = create_model("aestheticnet_star", **overrides)
        model, fit_info = fit(model, data, args.fit_steps, seed=args.fit_seed, teacher=teacher)
        preprocess = FIT_PRE if args.fit_steps > 0 else None
    if args.teacher is not None:
        fit_info["teacher"] = str(args.teacher)
    return save(model, args.out / "star.safetensors", preprocess=preprocess), fit_info


def fp32_timing(ckpt: Path, out: Path) -> dict:
    """Wall seconds of one fp32 export to every format, with the load average before and after."""
    load_before = list(os.getloadavg())
    t0 = time.perf_counter()
    rep = export_checkpoint(ckpt, list(Format), [Precision.FP32], out, log=print)
    return {
        "wall_seconds": round(time.perf_counter() - t0, 1),
        "load_before": load_before,
        "load_after": list(os.getloadavg()),
        "format_seconds": rep.format_seconds,
        "shared_seconds": rep.shared_seconds,
    }


def main() -> None:
    args = parse_args()
    torch.set_num_threads(args.torch_threads)
    args.out.mkdir(parents=True, exist_ok=True)
    data = args.data if args.data is not None else ensure_synthetic(progress=False)
    overrides = {k: v for k, v in (("layers", args.layers), ("init_channels", args.init_channels)) if v is not None}
    ckpt, fit_info = fitted_checkpoint(args, data, overrides)
    results: dict = {"model": {"overrides": overrides, "fit": fit_info}, "data": str(data)}
    print(f"model {overrides or 'default'}; fit {fit_info}", flush=True)
    if not args.skip_timing:
        results["fp32_timing"] = fp32_timing(ckpt, args.out / "timing")
        print(json.dumps(results["fp32_timing"], indent=1), flush=True)
    formats, precisions = parse_formats(args.formats), parse_precisions(args.precisions)
    options = ExportOptions(data=data, calibration_samples=args.calibration_samples)
    rep = export_checkpoint(ckpt, formats, precisions, args.out / "all", options, log=print)
    results["export"] = rep.to_dict()
    results["verify"] = _verify_all(rep, ckpt, data, args)
    print(save_result(results, args.out, "export_parity", markdown))


def _worst(rows: list[dict], key: str) -> float | None:
    values = [row[key] for row in rows if isinstance(row.get(key), (int, float))]
    return max(values) if values else None


def _figure(value, fmt: str) -> str:
    return "–" if value is None else format(value, fmt)


def markdown(result: dict) -> str:
    fit = result["model"]["fit"]
    overrides = result["model"]["overrides"]
    model = f"`{Path(fit['start']).name}`" if fit.get("start") else f"a new AestheticNet* {overrides or '(default)'}"
    lines = [
        (
            f"Every exported file of {model} against PyTorch: the worst of five input shapes (224x224, "
            f"320x256, 512x384, 96x640 and a batch of 3) and the rank agreement on real images of "
            f"`{'/'.join(Path(result['data']).parts[-2:])}`. Each row passes or fails by its format's and precision's "
            "tolerances."
        ),
        "",
        "| format | precision | run by | passed | max abs diff | mean-score diff | real images | SROCC | PLCC "
        "| real images' largest mean-score diff |",
        "|---|---|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for row in sorted(result["verify"], key=lambda r: (r["format"], r["precision"])):
        real = row.get("real") or {}
        lines.append(
            f"| {row['format']} | {row['precision']} | {row.get('evaluated_by') or '–'} | "
            f"{'yes' if row['passed'] else '**no**'} | {_figure(_worst(row['shapes'], 'max_abs'), '.2e')} | "
            f"{_figure(_worst(row['shapes'], 'mean_score_diff'), '.2e')} | {real.get('n', '–')} | "
            f"{_figure(real.get('srocc'), '.4f')} | {_figure(real.get('plcc'), '.4f')} | "
            f"{_figure(real.get('mean_score_diff'), '.3f')} |"
        )
    notes: dict[str, list[str]] = {}
    for row in result["verify"]:
        for note in row.get("notes") or []:
            notes.setdefault(note, []).append(f"{row['format']} {row['precision']}")
    skipped = result["export"].get("skipped") or []
    failed = [
        f"- {row['format']} {row['precision']} failed: {m['check']} on {m['where']}, {m['got']} "
        f"(expected {m['expected']})"
        for row in result["verify"]
        for m in row.get("mismatches") or []
    ]
    if notes or skipped or failed:
        lines.append("")
    lines += failed
    lines += [f"- {', '.join(files)}: {note}" for note, files in notes.items()]
    lines += [f"- not exported: {item}" for item in skipped]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
