"""Latency matrix: AestheticNet vs AestheticNet* vs networks built from the DARTS_V2 and PDARTS cells.

    python benchmarks/latency_matrix.py [--quick] [--out DIR] [--layers 20] [--init-channels 36] [--genotype G]
                                        [--threads 1,2] [--shapes 224x224,512x384] [--runs N | --min-seconds S]

Every network has the same depth (``--layers``) and width (``--init-channels``); AestheticNet uses ``--genotype``
(default: the package's default, PDARTS until a search result is given, in which case it is the PDARTS network
and is measured once). Each network runs as

* PyTorch eager (fp32, from a .safetensors file),
* ONNX Runtime: fp32, fp16, int8,
* LiteRT (ai-edge-litert, XNNPACK): fp32, fp16, int8 and int8-dynamic (dynamic-range),

exported with the project's exporter (``aestheticnet.export.export_checkpoint``: its export-safe rewrites,
manifests; int8 calibrated on photos shipped with scikit-image, written to ``--out``/calibration). Where that
exporter is not importable, ``--exporter local`` (the fallback) converts here: ``export_onnx`` + onnxsim, fp16
with onnxruntime's float16 converter, int8 with onnxruntime static QDQ quantization on random inputs, and
onnx2tf for TFLite (fp32, fp16, dynamic-range int8). The model files are measured
at each thread count and input shape, each measurement in a fresh process (``aestheticnet.bench``). A format
that cannot be produced or run on this machine is listed with the reason instead of a number.

The script also measures this machine's peak fp32 multiply-add rate with a large matrix product (``torch.mm`` of
2048x2048 matrices, best of several, per thread count) and prints each model's efficiency: achieved MACs/s
(the network's MACs at that shape over the p50 latency) divided by that peak.

``--quick``: 10 timed runs after 2 warm-up runs (instead of 30 after 5); the matrix itself is complete. The
exports are cached in ``--out`` and reused (``--fresh`` rebuilds them). Nothing is downloaded.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
import traceback
import warnings
from pathlib import Path

import numpy as np
import torch

from aestheticnet.bench.harness import BenchSettings, parse_shapes, parse_threads, run_benchmark
from aestheticnet.bench.report import markdown_report, write_json, write_plots
from aestheticnet.bench.runner import machine_info
from aestheticnet.export.onnx_export import export_onnx
from aestheticnet.io import atomic_write_json
from aestheticnet.models import create_model, save
from aestheticnet.models.checkpoint import build_metadata

MM_SIZE = 2048


def peak_macs_per_s(threads: int, size: int = MM_SIZE, repeats: int = 7) -> dict:
    """Best-of-``repeats`` fp32 multiply-adds per second of ``torch.mm`` (size x size) @ (size x size)."""
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        g = torch.Generator().manual_seed(0)
        a, b = torch.randn(size, size, generator=g), torch.randn(size, size, generator=g)
        out = torch.empty(size, size)
        torch.mm(a, b, out=out)  # warm-up
        times = []
        for _ in range(repeats):
            t = time.perf_counter()
            torch.mm(a, b, out=out)
            times.append(time.perf_counter() - t)
    finally:
        torch.set_num_threads(previous)
    macs = size**3
    return {"threads": threads, "size": size, "best_s": min(times), "median_s": float(np.median(times)),
            "peak_gmacs_per_s": macs / min(times) / 1e9, "median_gmacs_per_s": macs / float(np.median(times)) / 1e9}  # fmt: skip


def build_networks(layers: int, channels: int, genotype: str | None) -> dict[str, torch.nn.Module]:
    torch.manual_seed(0)
    base = {"layers": layers, "init_channels": channels}
    if genotype:
        base_net = create_model("aestheticnet", genotype=genotype, **base)
    else:
        base_net = create_model("aestheticnet", **base)
    nets = {"aestheticnet": base_net}
    star = create_model("aestheticnet_star", genotype=base_net.config.genotype, genotype_name=base_net.config.genotype_name,
                        **base)  # fmt: skip
    nets["aestheticnet_star"] = star
    for name in ("DARTS_V2", "PDARTS"):
        net = create_model("aestheticnet", genotype=name, **base)
        if net.config.genotype == base_net.config.genotype:
            print(f"note: AestheticNet's genotype is {name}: the {name} network is the AestheticNet row", file=sys.stderr)
            continue
        nets[f"darts_net_{name.lower()}"] = net
    for net in nets.values():
        net.eval()
        # non-trivial BN statistics, so quantization ranges are not degenerate
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.2, 0.2)
                m.running_var.uniform_(0.5, 1.5)
    return nets


def _manifest(path: Path, model, precision: str, layout: str, how: str) -> None:
    meta = build_metadata(model)
    atomic_write_json(Path(str(path) + ".json"), {"variant": meta["variant"], "config": meta["config"],
                                                  "precision": precision, "layout": layout, "made_with": how})  # fmt: skip


class _RandomReader:
    """Calibration data for onnxruntime static quantization: random images (latency only, not accuracy)."""

    def __init__(self, name: str, n: int = 4, size=(224, 224)):
        g = np.random.default_rng(0)
        self.items = iter([{name: g.standard_normal((1, 3, *size)).astype(np.float32)} for _ in range(n)])

    def get_next(self):
        return next(self.items, None)


CALIBRATION_PHOTOS = ("astronaut", "chelsea", "coffee", "rocket", "hubble_deep_field", "immunohistochemistry",
                      "retina", "camera")  # fmt: skip


def calibration_folder(out: Path) -> Path:
    """Photos shipped in the scikit-image wheel (no download), as PNG files, for int8 calibration."""
    import skimage.data
    from PIL import Image

    folder = out / "calibration"
    folder.mkdir(parents=True, exist_ok=True)
    for name in CALIBRATION_PHOTOS:
        path = folder / f"{name}.png"
        if not path.exists():
            img = getattr(skimage.data, name)()
            Image.fromarray(img).convert("RGB").save(path)
    return folder


PROJECT_PLAN = {"onnx": ("fp32", "fp16", "int8"), "tflite": ("fp32", "fp16", "int8", "int8-dynamic")}


def export_with_project(name: str, model, folder: Path, fresh: bool, want_litert: bool,
                        calibration: Path) -> tuple[list[Path], list[str]]:  # fmt: skip
    """``aestheticnet.export.export_checkpoint`` into ``folder``; returns the files and what is missing, and why."""
    from aestheticnet.export.api import ExportFailed, export_checkpoint
    from aestheticnet.export.specs import artifact_name

    folder.mkdir(parents=True, exist_ok=True)
    st = folder / f"{name}.safetensors"
    if fresh or not st.exists():
        save(model, st)
    formats = ["onnx"] + (["tflite"] if want_litert else [])
    expected = [(f, p, folder / artifact_name(name, f, p)) for f in formats for p in PROJECT_PLAN[f]]
    missing: list[str] = []
    if fresh or not all(path.exists() for *_, path in expected):
        precisions = sorted({p for f in formats for p in PROJECT_PLAN[f]}, key=["fp32", "fp16", "int8", "int8-dynamic"].index)
        t = time.time()
        try:
            export_checkpoint(st, ",".join(formats), ",".join(precisions), folder, data=calibration,
                              calibration_samples=len(CALIBRATION_PHOTOS), name=name,
                              log=lambda m: print(f"  {m}", file=sys.stderr))  # fmt: skip
        except ExportFailed as exc:
            missing += [f"{name} {k}: {v}" for k, v in exc.failures.items()]
        print(f"  {name}: exported in {time.time() - t:.0f} s", file=sys.stderr)
    files = [st] + [path for *_, path in expected if path.exists()]
    missing += [f"{name} {f}/{p}: not produced" for f, p, path in expected if not path.exists()
                and not any(m.startswith(f"{name} {f}/{p}") for m in missing)]  # fmt: skip
    return files, missing


def export_formats(name: str, model, folder: Path, fresh: bool, want_litert: bool) -> tuple[list[Path], list[str]]:
    """Every format of one network in ``folder``; returns the files and the reasons for those that are missing."""
    folder.mkdir(parents=True, exist_ok=True)
    files: list[Path] = []
    missing: list[str] = []

    def have(p: Path) -> bool:
        return p.exists() and not fresh

    st = folder / f"{name}.safetensors"
    if not have(st):
        save(model, st)
    files.append(st)

    onnx32 = folder / f"{name}_fp32.onnx"
    if not have(onnx32):
        t = time.time()
        raw = folder / f".{name}_raw.onnx"
        export_onnx(model, raw)
        simplify_onnx(raw, onnx32)
        raw.unlink()
        print(f"  {onnx32.name}: exported and simplified in {time.time() - t:.1f} s", file=sys.stderr)
    _manifest(onnx32, model, "fp32", "NCHW", "aestheticnet.export.onnx_export.export_onnx + onnxsim")
    files.append(onnx32)

    onnx16 = folder / f"{name}_fp16.onnx"
    try:
        if not have(onnx16):
            import onnx
            from onnxruntime.transformers.float16 import convert_float_to_float16

            m16 = convert_float_to_float16(onnx.load(str(onnx32)), keep_io_types=True)
            onnx.save(m16, str(onnx16))
        _manifest(onnx16, model, "fp16", "NCHW", "onnxruntime.transformers.float16 (keep_io_types)")
        files.append(onnx16)
    except Exception as exc:
        missing.append(f"{name} ONNX fp16: {type(exc).__name__}: {exc}")

    onnx8 = folder / f"{name}_int8.onnx"
    try:
        if not have(onnx8):
            from onnxruntime.quantization import QuantFormat, QuantType, quantize_static
            from onnxruntime.quantization.shape_inference import quant_pre_process

            pre = folder / f".{name}_pre.onnx"
            quant_pre_process(str(onnx32), str(pre), skip_optimization=True, skip_symbolic_shape=True)
            quantize_static(str(pre), str(onnx8), _RandomReader("image"), quant_format=QuantFormat.QDQ,
                            per_channel=True, activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)  # fmt: skip
            pre.unlink(missing_ok=True)
        _manifest(onnx8, model, "int8", "NCHW", "onnxruntime.quantization.quantize_static (QDQ, per channel)")
        files.append(onnx8)
    except Exception as exc:
        missing.append(f"{name} ONNX int8: {type(exc).__name__}: {exc}")

    if want_litert:
        targets = {"fp32": folder / f"{name}_fp32.tflite", "fp16": folder / f"{name}_fp16.tflite",
                   "int8": folder / f"{name}_int8.tflite"}  # fmt: skip
        try:
            if not all(have(p) for p in targets.values()):
                convert_tflite(onnx32, folder, name, targets)
            for prec, p in targets.items():
                if p.exists():
                    _manifest(p, model, prec, "NHWC", "onnx2tf" + (" (dynamic-range int8)" if prec == "int8" else ""))
                    files.append(p)
                else:
                    missing.append(f"{name} LiteRT {prec}: onnx2tf wrote no file")
        except Exception as exc:
            missing.append(f"{name} LiteRT: onnx2tf failed: {type(exc).__name__}: {str(exc)[:300]}")
    return files, missing


def simplify_onnx(src: Path, dst: Path) -> None:
    """onnxsim (dynamic dims kept). Needed here: onnxruntime 1.32's constant folding rejects the raw export of the
    full-size networks ("Node input 'pad_2' is not a graph input ..." at every optimization level above
    DISABLE_ALL); after onnxsim folds the padded FactorizedReduce weights the model loads, with identical outputs."""
    import onnx
    import onnxsim

    model, ok = onnxsim.simplify(onnx.load(str(src)))
    if not ok:
        raise RuntimeError(f"onnxsim could not validate the simplified {src.name}")
    onnx.save(model, str(dst))


def convert_tflite(onnx_path: Path, folder: Path, name: str, targets: dict[str, Path]) -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import onnx2tf

    work = folder / f".{name}_onnx2tf"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir()
    src = work / "model.onnx"  # onnx2tf rewrites its input in place: give it a copy (GUIDE rule 6)
    shutil.copy(onnx_path, src)
    t = time.time()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        onnx2tf.convert(input_onnx_file_path=str(src), output_folder_path=str(work / "out"), non_verbose=True,
                        output_dynamic_range_quantized_tflite=True)  # fmt: skip
    produced = {"fp32": "model_float32.tflite", "fp16": "model_float16.tflite", "int8": "model_dynamic_range_quant.tflite"}
    for prec, target in targets.items():
        src_file = work / "out" / produced[prec]
        if src_file.exists():
            shutil.move(str(src_file), target)
    shutil.rmtree(work, ignore_errors=True)
    print(f"  {name}: onnx2tf in {time.time() - t:.1f} s", file=sys.stderr)


RUNTIME = {"pytorch": "PyTorch eager", "onnxruntime": "ONNX Runtime", "litert": "LiteRT"}


def matrix_table(rows: list[dict], peaks: dict[int, dict], networks: list[str]) -> str:
    head = ("| network | runtime | prec | thr | shape | p50 ms | p90 ms | GMACs | GMAC/s | efficiency | file MB | "
            "peak RSS Δ MB |")  # fmt: skip
    lines = [head, "|---|---|---|---:|---|---:|---:|---:|---:|---:|---:|---:|"]

    def net_of(row):
        stem = Path(row["path"]).stem
        return next((n for n in sorted(networks, key=len, reverse=True) if stem.startswith(n)), stem)

    order = {"pytorch": 0, "onnxruntime": 1, "litert": 2}
    prec_order = {"fp32": 0, "fp16": 1, "int8": 2, "int8-dynamic": 3}
    rows = sorted(rows, key=lambda r: (r["shape"], r["threads"], networks.index(net_of(r)) if net_of(r) in networks else 9,
                                       order.get(r["backend"], 9), prec_order.get(r["precision"], 9)))  # fmt: skip
    for r in rows:
        if not r["ok"]:
            lines.append(f"| {net_of(r)} | {RUNTIME.get(r['backend'], r['backend'])} | {r['precision']} | {r['threads']} | "
                         f"{r['shape']} | failed: {str(r['error'])[:120]} | | | | | | |")  # fmt: skip
            continue
        eff = r["achieved_gmacs_per_s"] / peaks[r["threads"]]["peak_gmacs_per_s"] if r["achieved_gmacs_per_s"] else None
        lines.append(
            f"| {net_of(r)} | {RUNTIME.get(r['backend'], r['backend'])} | {r['precision']} | {r['threads']} | {r['shape']} "
            f"| {r['p50_ms']:.1f} | {r['p90_ms']:.1f} | {r['macs'] / 1e9:.3f} | {r['achieved_gmacs_per_s']:.1f} | "
            f"{100 * eff:.1f}% | {r['file_size_bytes'] / 2**20:.2f} | {(r['peak_rss_delta_bytes'] or 0) / 2**20:.0f} |"
        )
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="10 timed runs after 2 warm-up runs")
    p.add_argument("--out", default="runs/latency_matrix", help="exports, JSON, Markdown and plots go here")
    p.add_argument("--layers", type=int, default=20)
    p.add_argument("--init-channels", type=int, default=36)
    p.add_argument("--genotype", default=None, help="AestheticNet's genotype (name or genotype.json)")
    p.add_argument("--threads", default="1,2")
    p.add_argument("--shapes", default="224x224,512x384")
    p.add_argument("--runs", type=int, default=None)
    p.add_argument("--min-seconds", type=float, default=None)
    p.add_argument("--warmup", type=int, default=None)
    p.add_argument("--no-litert", action="store_true", help="skip the onnx2tf conversions and LiteRT")
    p.add_argument("--fresh", action="store_true", help="rebuild the exports even when present")
    p.add_argument("--exporter", choices=("project", "local"), default="project",
                   help="project: aestheticnet.export.export_checkpoint; local: the conversions in this script")
    args = p.parse_args(argv)

    threads, shapes = parse_threads(args.threads), parse_shapes(args.shapes)
    runs = args.runs if args.runs is not None or args.min_seconds is not None else (10 if args.quick else 30)
    warmup = args.warmup if args.warmup is not None else (2 if args.quick else 5)
    out = Path(args.out)
    models_dir = out / f"models_L{args.layers}_C{args.init_channels}"
    t_start = time.time()

    print(f"machine: {json.dumps(machine_info())}", file=sys.stderr)
    peaks = {}
    for t in threads:
        peaks[t] = peak_macs_per_s(t)
        print(f"peak fp32 MAC rate, torch.mm {MM_SIZE}x{MM_SIZE}, {t} thread(s): {peaks[t]['peak_gmacs_per_s']:.1f} "
              f"GMAC/s (median {peaks[t]['median_gmacs_per_s']:.1f})", file=sys.stderr)  # fmt: skip

    nets = build_networks(args.layers, args.init_channels, args.genotype)
    exporter = args.exporter
    if exporter == "project":
        try:
            import aestheticnet.export.api  # noqa: F401
        except ImportError as exc:
            print(f"note: aestheticnet.export.api is not importable ({exc}); using the local conversions",
                  file=sys.stderr)  # fmt: skip
            exporter = "local"
    models_dir = models_dir.with_name(models_dir.name + ("" if exporter == "project" else "_local"))
    calibration = calibration_folder(out) if exporter == "project" else None
    files, missing = [], []
    for name, net in nets.items():
        print(f"exporting {name} ({exporter} exporter)", file=sys.stderr)
        try:
            if exporter == "project":
                f, m = export_with_project(name, net, models_dir, args.fresh, not args.no_litert, calibration)
            else:
                f, m = export_formats(name, net, models_dir, args.fresh, not args.no_litert)
        except Exception:
            traceback.print_exc()
            missing.append(f"{name}: export failed (see stderr)")
            continue
        files += f
        missing += m
    t_export = time.time() - t_start

    settings = BenchSettings(threads=threads, shapes=shapes, runs=runs, min_seconds=args.min_seconds, warmup=warmup,
                             timeout_s=900)  # fmt: skip
    report = run_benchmark(files, settings, progress=lambda line: print(line, file=sys.stderr))
    # Measured again after the matrix: on a shared machine the first burst may have been slowed down; the peak
    # is the best of both bursts.
    for t in threads:
        again = peak_macs_per_s(t)
        first = peaks[t]
        peaks[t] = dict(max(first, again, key=lambda v: v["peak_gmacs_per_s"]),
                        bursts_gmacs_per_s=[first["peak_gmacs_per_s"], again["peak_gmacs_per_s"]])  # fmt: skip
    report["peak_fp32_mac_rate"] = {str(t): v for t, v in peaks.items()}
    loads = [row.get("load_average") for row in report["results"] if row.get("load_average")]
    report["missing_formats"] = missing
    report["exporter"] = exporter
    report["networks"] = {n: {"variant": m.variant, "genotype": m.config.genotype_name, "layers": m.config.layers,
                              "init_channels": m.config.init_channels} for n, m in nets.items()}  # fmt: skip
    for row in report["results"]:
        if row["ok"] and row["achieved_gmacs_per_s"]:
            row["efficiency"] = row["achieved_gmacs_per_s"] / peaks[row["threads"]]["peak_gmacs_per_s"]
    out.mkdir(parents=True, exist_ok=True)
    write_json(report, out / "latency_matrix.json")
    table = matrix_table(report["results"], peaks, list(nets))
    peak_lines = "\n".join(
        f"- {t} thread(s): {v['peak_gmacs_per_s']:.1f} GMAC/s (torch.mm {MM_SIZE}x{MM_SIZE}, best of 7 in each of two "
        f"bursts, before and after the matrix: {', '.join(f'{b:.1f}' for b in v['bursts_gmacs_per_s'])})"
        for t, v in peaks.items()
    )
    if loads:
        peak_lines += (f"\n\n1-minute load average during the measurements: {min(x[0] for x in loads):.2f} to "
                       f"{max(x[0] for x in loads):.2f} on {os.cpu_count()} logical CPUs")  # fmt: skip
    text = (f"# Latency matrix ({'quick: ' if args.quick else ''}{runs} runs after {warmup} warm-up, layers "
            f"{args.layers}, C={args.init_channels}, {exporter} exporter)\n\nPeak fp32 multiply-add rate:\n"
            f"{peak_lines}\n\n{table}")
    if missing:
        text += "\nNot measured:\n" + "\n".join(f"- {m}" for m in missing) + "\n"
    text += f"\nExports {t_export:.0f} s, total {time.time() - t_start:.0f} s.\n"
    (out / "latency_matrix.md").write_text(text + "\n" + markdown_report(report))
    write_plots(report, out / "plots")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
