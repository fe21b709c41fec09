"""Latency matrix: AestheticNet vs AestheticNet* vs networks built from the DARTS_V2 and PDARTS cells.

    python benchmarks/latency_matrix.py [--quick] [--out DIR] [--layers 20] [--init-channels 36] [--genotype G]
                                        [--threads 1,2] [--shapes 224x224,512x384] [--runs N | --min-seconds S]

Every network has the same depth (``--layers``) and width (``--init-channels``); AestheticNet uses ``--genotype``
(default: the package's default, PDARTS until a search result is given, in which case it is the PDARTS network
and is measured once). Each network runs as

* PyTorch eager (fp32, from a .safetensors file),
* ONNX Runtime: fp32, fp16, int8,
* LiteRT (ai-edge-litert, XNNPACK): fp32, fp16, int8 and int8-dynamic (dynamic-range),

exported with the package's exporter (``aestheticnet.export.export_checkpoint``: its export-safe rewrites and
manifests; int8 calibrated on photos shipped with scikit-image, written to ``--out``/calibration). The model files
are measured at each thread count and input shape, each measurement in a fresh process (``aestheticnet.bench``).
A format that cannot be produced or run on this machine is listed with the reason instead of a number.

The script also measures this machine's peak fp32 multiply-add rate with a large matrix product (``torch.mm`` of
2048x2048 matrices, best of several, per thread count) and prints each model's efficiency: achieved MACs/s
(the network's MACs at that shape over the p50 latency) divided by that peak.

``--quick``: 10 timed runs after 2 warm-up runs (instead of 30 after 5); the matrix itself is complete. The
exports are cached in ``--out`` and reused (``--fresh`` rebuilds them). Nothing is downloaded.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import traceback
from pathlib import Path

import numpy as np
import torch

from aestheticnet.artifacts import Format, Precision
from aestheticnet.bench import (
    BenchSettings,
    machine_info,
    markdown_report,
    parse_threads,
    run_benchmark,
    save_result,
    vary_batchnorm,
    write_plots,
)
from aestheticnet.export import ExportFailed, ExportOptions, export_checkpoint
from aestheticnet.io import atomic_write_json
from aestheticnet.models import create_model, save
from aestheticnet.sizes import parse_shapes

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
    return {
        "threads": threads,
        "size": size,
        "best_s": min(times),
        "median_s": float(np.median(times)),
        "peak_gmacs_per_s": macs / min(times) / 1e9,
        "median_gmacs_per_s": macs / float(np.median(times)) / 1e9,
    }


def build_networks(layers: int, channels: int, genotype: str | None) -> dict[str, torch.nn.Module]:
    torch.manual_seed(0)
    base = {"layers": layers, "init_channels": channels}
    if genotype:
        base_net = create_model("aestheticnet", genotype=genotype, **base)
    else:
        base_net = create_model("aestheticnet", **base)
    nets = {"aestheticnet": base_net}
    star = create_model(
        "aestheticnet_star", genotype=base_net.config.genotype, genotype_name=base_net.config.genotype_name, **base
    )
    nets["aestheticnet_star"] = star
    for name in ("DARTS_V2", "PDARTS"):
        net = create_model("aestheticnet", genotype=name, **base)
        if net.config.genotype == base_net.config.genotype:
            print(
                f"note: AestheticNet's genotype is {name}: the {name} network is the AestheticNet row", file=sys.stderr
            )
            continue
        nets[f"darts_net_{name.lower()}"] = net
    for net in nets.values():
        vary_batchnorm(net)  # non-trivial BN statistics, so quantization ranges are not degenerate
    return nets


CALIBRATION_PHOTOS = (
    "astronaut",
    "chelsea",
    "coffee",
    "rocket",
    "hubble_deep_field",
    "immunohistochemistry",
    "retina",
    "camera",
)


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


FORMATS = (Format.ONNX, Format.TFLITE)
PRECISIONS = (Precision.FP32, Precision.FP16, Precision.INT8, Precision.INT8_DYNAMIC)


def export_network(
    name: str, model, folder: Path, fresh: bool, want_litert: bool, calibration: Path
) -> tuple[list[Path], list[str]]:
    """``aestheticnet.export.export_checkpoint`` into ``folder``; returns the files and what is missing, and why.

    The export report is kept as ``<name>.export.json``; a later run reuses the files it lists unless ``fresh``.
    """
    folder.mkdir(parents=True, exist_ok=True)
    st = folder / f"{name}.safetensors"
    record = folder / f"{name}.export.json"
    formats = list(FORMATS if want_litert else FORMATS[:1])
    if fresh or not st.exists():
        save(model, st)
    cached = json.loads(record.read_text()) if record.is_file() and not fresh else None
    if (
        cached is None
        or cached.get("formats") != [f.value for f in formats]
        or not all(Path(p).exists() for p in cached["files"])
    ):
        t = time.time()
        try:
            report = export_checkpoint(
                st,
                formats,
                list(PRECISIONS),
                folder,
                ExportOptions(data=calibration, calibration_samples=len(CALIBRATION_PHOTOS)),
                name=name,
                log=lambda m: print(f"  {m}", file=sys.stderr),
            )
        except ExportFailed as exc:
            report = exc.report
        print(f"  {name}: exported in {time.time() - t:.0f} s", file=sys.stderr)
        cached = {
            "formats": [f.value for f in formats],
            "files": [a.path for a in report.artifacts],
            "missing": [f"{name} {k}: {v}" for k, v in report.failures.items()],
        }
        atomic_write_json(record, cached)
    return [st, *map(Path, cached["files"])], list(cached["missing"])


RUNTIME = {"pytorch": "PyTorch eager", "onnxruntime": "ONNX Runtime", "litert": "LiteRT"}


def matrix_table(rows: list[dict], peaks: dict[int, dict], networks: list[str]) -> str:
    head = (
        "| network | runtime | prec | thr | shape | p50 ms | p90 ms | GMACs | GMAC/s | efficiency | file MB | "
        "peak RSS Δ MB |"
    )
    lines = [head, "|---|---|---|---:|---|---:|---:|---:|---:|---:|---:|---:|"]

    def net_of(row):
        stem = Path(row["path"]).stem
        return next((n for n in sorted(networks, key=len, reverse=True) if stem.startswith(n)), stem)

    order = {"pytorch": 0, "onnxruntime": 1, "litert": 2}
    prec_order = {"fp32": 0, "fp16": 1, "int8": 2, "int8-dynamic": 3}
    rows = sorted(
        rows,
        key=lambda r: (
            r["shape"],
            r["threads"],
            networks.index(net_of(r)) if net_of(r) in networks else 9,
            order.get(r["backend"], 9),
            prec_order.get(r["precision"], 9),
        ),
    )
    for r in rows:
        if not r["ok"]:
            lines.append(
                f"| {net_of(r)} | {RUNTIME.get(r['backend'], r['backend'])} | {r['precision']} | {r['threads']} | "
                f"{r['shape']} | failed: {str(r['error'])[:120]} | | | | | | |"
            )
            continue
        achieved = r["achieved_gmacs_per_s"]
        eff = achieved / peaks[r["threads"]]["peak_gmacs_per_s"] if achieved else None
        lines.append(
            f"| {net_of(r)} | {RUNTIME.get(r['backend'], r['backend'])} | {r['precision']} | {r['threads']} | "
            f"{r['shape']} | {r['p50_ms']:.1f} | {r['p90_ms']:.1f} | {r['macs'] / 1e9:.3f} | {achieved:.1f} | "
            f"{100 * eff:.1f}% | {r['file_size_bytes'] / 2**20:.2f} | {(r['peak_rss_delta_bytes'] or 0) / 2**20:.0f} |"
        )
    return "\n".join(lines) + "\n"


def parse_args(argv=None) -> argparse.Namespace:
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
    p.add_argument("--no-litert", action="store_true", help="skip the TFLite exports and LiteRT")
    p.add_argument("--fresh", action="store_true", help="rebuild the exports even when present")
    return p.parse_args(argv)


def export_all(nets: dict, args: argparse.Namespace, out: Path) -> tuple[list[Path], list[str]]:
    """Every network's files, and the formats that are missing, with the reason."""
    models_dir = out / f"models_L{args.layers}_C{args.init_channels}"
    calibration = calibration_folder(out)
    files, missing = [], []
    for name, net in nets.items():
        print(f"exporting {name}", file=sys.stderr)
        try:
            f, m = export_network(name, net, models_dir, args.fresh, not args.no_litert, calibration)
        except Exception:
            traceback.print_exc()
            missing.append(f"{name}: export failed (see stderr)")
            continue
        files += f
        missing += m
    return files, missing


def markdown(report: dict) -> str:
    """The Markdown summary (peak MAC rates, load average, the matrix, what was not measured), then the harness's
    per-file report."""
    settings = report["settings"]
    peaks = {int(t): v for t, v in report["peak_fp32_mac_rate"].items()}
    peak_lines = "\n".join(
        f"- {t} thread(s): {v['peak_gmacs_per_s']:.1f} GMAC/s (torch.mm {MM_SIZE}x{MM_SIZE}, best of 7 in each of two "
        f"bursts, before and after the matrix: {', '.join(f'{b:.1f}' for b in v['bursts_gmacs_per_s'])})"
        for t, v in peaks.items()
    )
    loads = [row.get("load_average") for row in report["results"] if row.get("load_average")]
    if loads:
        peak_lines += (
            f"\n\n1-minute load average during the measurements: {min(x[0] for x in loads):.2f} to "
            f"{max(x[0] for x in loads):.2f} on {report['machine']['logical_cores']} logical CPUs"
        )
    table = matrix_table(report["results"], peaks, list(report["networks"]))
    text = (
        f"{'Quick: ' if settings['quick'] else ''}{settings['runs']} runs after {settings['warmup']} warm-up; every "
        f"network {settings['layers']} cells, C={settings['init_channels']}. This run took "
        f"{report['seconds']['total']:.0f} s, {report['seconds']['export']:.0f} s of them exporting (files exported by "
        f"an earlier run into the same folder are reused).\n\nPeak fp32 multiply-add rate:\n{peak_lines}\n\n{table}"
    )
    if report["missing_formats"]:
        text += "\nNot measured:\n" + "\n".join(f"- {m}" for m in report["missing_formats"]) + "\n"
    return text + "\n" + markdown_report(report)


def first_peaks(threads: tuple[int, ...]) -> dict[int, dict]:
    peaks = {}
    for t in threads:
        peaks[t] = peak_macs_per_s(t)
        print(
            f"peak fp32 MAC rate, torch.mm {MM_SIZE}x{MM_SIZE}, {t} thread(s): {peaks[t]['peak_gmacs_per_s']:.1f} "
            f"GMAC/s (median {peaks[t]['median_gmacs_per_s']:.1f})",
            file=sys.stderr,
        )
    return peaks


def best_of_both_bursts(peaks: dict[int, dict]) -> dict[int, dict]:
    """Measured again after the matrix: on a shared machine the first burst may have been slowed down; the peak
    is the best of both bursts."""
    both = {}
    for t, first in peaks.items():
        again = peak_macs_per_s(t)
        both[t] = dict(
            max(first, again, key=lambda v: v["peak_gmacs_per_s"]),
            bursts_gmacs_per_s=[first["peak_gmacs_per_s"], again["peak_gmacs_per_s"]],
        )
    return both


def annotate(report: dict, peaks: dict[int, dict], missing: list[str], nets: dict) -> None:
    """The peaks, what is missing, the networks and each row's efficiency, into the report."""
    report["peak_fp32_mac_rate"] = {str(t): v for t, v in peaks.items()}
    report["missing_formats"] = missing
    report["networks"] = {
        n: {
            "variant": m.variant,
            "genotype": m.config.genotype_name,
            "layers": m.config.layers,
            "init_channels": m.config.init_channels,
        }
        for n, m in nets.items()
    }
    for row in report["results"]:
        if row["ok"] and row["achieved_gmacs_per_s"]:
            row["efficiency"] = row["achieved_gmacs_per_s"] / peaks[row["threads"]]["peak_gmacs_per_s"]


def main(argv=None) -> int:
    args = parse_args(argv)
    threads, shapes = parse_threads(args.threads), parse_shapes(args.shapes, "--shapes")
    runs = args.runs if args.runs is not None or args.min_seconds is not None else (10 if args.quick else 30)
    warmup = args.warmup if args.warmup is not None else (2 if args.quick else 5)
    out = Path(args.out)
    t_start = time.time()

    print(f"machine: {json.dumps(machine_info())}", file=sys.stderr)
    peaks = first_peaks(threads)
    nets = build_networks(args.layers, args.init_channels, args.genotype)
    files, missing = export_all(nets, args, out)
    t_export = time.time() - t_start

    settings = BenchSettings(
        threads=threads, shapes=shapes, runs=runs, min_seconds=args.min_seconds, warmup=warmup, timeout_s=900
    )
    report = run_benchmark(files, settings, progress=lambda line: print(line, file=sys.stderr))
    peaks = best_of_both_bursts(peaks)
    annotate(report, peaks, missing, nets)
    report["settings"] = {
        "quick": args.quick,
        "runs": runs,
        "warmup": warmup,
        "layers": args.layers,
        "init_channels": args.init_channels,
    }
    report["seconds"] = {"export": round(t_export), "total": round(time.time() - t_start)}
    out.mkdir(parents=True, exist_ok=True)
    print(save_result(report, out, "latency_matrix", markdown))
    write_plots(report, out / "plots")
    return 0


if __name__ == "__main__":
    sys.exit(main())
