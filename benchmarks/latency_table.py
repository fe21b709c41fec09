"""How well a latency table predicts whole networks: predicted vs measured latency for a list of genotypes.

    python benchmarks/latency_table.py [--out DIR] [--genotypes DARTS_V2,PDARTS,...] [--runtime onnxruntime]
                                       [--threads 1] [--size 224x224] [--table T.json] [--rounds 4] [--runs 50]

Builds the latency table of the default AestheticNet* (``aestheticnet bench ops``'s
:func:`~aestheticnet.bench.ops_table.build_latency_table`; or loads ``--table``, which must be made for the same
runtime, thread count and network), builds one AestheticNet* per genotype (registered names or genotype JSON
files; ``synthetic:sep5`` and ``synthetic:pools`` are two extremes made here: every edge a 5x5 separable
convolution, and only pools and skips), exports each fp32 by ``export_checkpoint`` and times it with the device
runner (``run_benchmark``: a fresh process per measurement) in ``--rounds`` rounds, half of them before the table
is built and half after, all networks one after the other in each round, in an order rotated by the round
(``aestheticnet.bench.interleaved_rounds``). A network's latency is the median of its rounds' p50s (its rounds'
minimum is reported too: on a loaded machine a run as long as a network is more often interrupted than a probe a
few hundred microseconds long, so the p50 ratio then reads low).

Writes ``DIR/latency_table.json`` (the table), ``DIR/latency_table_check.json`` and ``.md``: per genotype the
predicted latency and its breakdown, the measured p50 and minimum, predicted / measured, and whether the table
ranks the genotypes in the measured order (Kendall's tau). Nothing is downloaded.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

from aestheticnet.artifacts import Format, Precision
from aestheticnet.bench import (
    BenchSettings,
    CopyRule,
    OpsBenchSettings,
    build_latency_table,
    interleaved_rounds,
    machine_info,
    run_benchmark,
    save_result,
)
from aestheticnet.export import export_checkpoint
from aestheticnet.models import create_model, get_entry, save
from aestheticnet.nas import Genotype, LatencyTable, NetworkSpec, TableRuntime, resolve_genotype
from aestheticnet.sizes import parse_shape

VARIANT = "aestheticnet_star"
DEFAULT_GENOTYPES = "DARTS_V1,DARTS_V2,PDARTS,synthetic:sep5,synthetic:pools"
_CONCAT = (2, 3, 4, 5)
SYNTHETIC = {
    "synthetic:sep5": Genotype.create(
        [("sep_conv_5x5", 0), ("sep_conv_5x5", 1)] * 4, _CONCAT, [("sep_conv_5x5", 0), ("sep_conv_5x5", 1)] * 4, _CONCAT
    ),
    # No two nodes alike: a runtime computes identical parameter-free nodes once.
    "synthetic:pools": Genotype.create(
        [
            ("max_pool_3x3", 0),
            ("skip_connect", 1),
            ("avg_pool_3x3", 2),
            ("skip_connect", 0),
            ("max_pool_3x3", 3),
            ("avg_pool_3x3", 1),
            ("skip_connect", 4),
            ("max_pool_3x3", 2),
        ],
        _CONCAT,
        [
            ("max_pool_3x3", 0),
            ("avg_pool_3x3", 1),
            ("skip_connect", 2),
            ("max_pool_3x3", 1),
            ("avg_pool_3x3", 3),
            ("skip_connect", 0),
            ("max_pool_3x3", 4),
            ("avg_pool_3x3", 2),
        ],
        _CONCAT,
    ),
}


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def genotype_of(name: str) -> Genotype:
    return SYNTHETIC[name] if name in SYNTHETIC else resolve_genotype(name)


def export_networks(names: list[str], folder: Path, runtime: TableRuntime) -> dict[str, Path]:
    """One fp32 file per genotype (reused when it is there)."""
    fmt = Format.ONNX if runtime == TableRuntime.ONNXRUNTIME else Format.TFLITE
    folder.mkdir(parents=True, exist_ok=True)
    files = {}
    for name in names:
        stem = name.replace(":", "_").replace("/", "_").removesuffix(".json")
        target = folder / f"{stem}.fp32{'.onnx' if fmt == Format.ONNX else '.tflite'}"
        if not target.is_file():
            torch.manual_seed(0)
            checkpoint = save(create_model(VARIANT, genotype=genotype_of(name)), folder / f"{stem}.safetensors")
            report = export_checkpoint(checkpoint, [fmt], [Precision.FP32], folder, name=stem, log=None)
            target = Path(report.artifacts[0].path)
        files[name] = target
    return files


def time_networks(files: dict[str, Path], rounds: int, args) -> dict[str, dict[str, list[float]]]:
    settings = BenchSettings(
        threads=(args.threads,),
        shapes=(parse_shape(args.size, "--size"),),
        runs=args.runs,
        warmup=args.warmup,
        timeout_s=900,
    )
    if rounds < 1:
        return {name: {"p50": [], "min": []} for name in files}

    def measure(name: str) -> dict[str, float]:
        report = run_benchmark([files[name]], settings)
        if report["errors"]:
            raise SystemExit(f"measuring {name} failed:\n" + "\n".join(report["errors"]))
        return {"p50": report["results"][0]["p50_ms"], "min": report["results"][0]["min_ms"]}

    def show(label: str, name: str, times: dict[str, float]) -> None:
        log(f"networks, {label}: {name} p50 {times['p50']:.2f} ms")

    results = interleaved_rounds(list(files), measure, rounds, progress=show)
    return {name: {key: [r[key] for r in rounds_] for key in ("p50", "min")} for name, rounds_ in results.items()}


def kendall_tau(a: list[float], b: list[float]) -> float:
    pairs = [(i, j) for i in range(len(a)) for j in range(i + 1, len(a))]
    if not pairs:
        return 1.0
    score = sum((a[i] - a[j]) * (b[i] - b[j]) > 0 for i, j in pairs) - sum(
        (a[i] - a[j]) * (b[i] - b[j]) < 0 for i, j in pairs
    )
    return score / len(pairs)


def compare(table: LatencyTable, names: list[str], times: dict) -> dict:
    rows = []
    for name in names:
        prediction = table.predict(genotype_of(name))
        p50, low = statistics.median(times[name]["p50"]), min(times[name]["min"])
        rows.append(
            {
                "genotype": name,
                "predicted_ms": prediction.total_ms,
                "parts_ms": prediction.parts,
                "measured_p50_ms": p50,
                "measured_min_ms": low,
                "ratio_p50": prediction.total_ms / p50,
                "ratio_min": prediction.total_ms / low,
                "rounds_p50_ms": times[name]["p50"],
            }
        )
    predicted = [r["predicted_ms"] for r in rows]
    measured = [r["measured_p50_ms"] for r in rows]
    order = sorted(range(len(rows)), key=lambda i: measured[i])
    return {
        "rows": rows,
        "kendall_tau": kendall_tau(predicted, measured),
        "same_order": sorted(range(len(rows)), key=lambda i: predicted[i]) == order,
        "measured_order": [rows[i]["genotype"] for i in order],
        "worst_p50_error": max(abs(r["ratio_p50"] - 1) for r in rows),
    }


def markdown(result: dict) -> str:
    c = result["comparison"]
    lines = [
        f"Latency table check, {result['created']}:",
        "",
        f"- table: {result['table']}",
        (
            f"- networks: {VARIANT}, measured {result['rounds']} rounds x "
            f"{result['runs']} runs, fresh processes; load average {result['load_before']} -> {result['load_after']}"
        ),
        (
            f"- Kendall's tau (predicted vs measured p50): {c['kendall_tau']:.2f}; same order: {c['same_order']}; "
            f"largest |predicted/measured - 1|: {c['worst_p50_error']:.1%}"
        ),
        "",
        "| genotype | predicted ms | measured p50 ms | predicted / p50 | measured min ms | predicted / min |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for r in c["rows"]:
        lines.append(
            f"| {r['genotype']} | {r['predicted_ms']:.2f} | {r['measured_p50_ms']:.2f} | "
            f"{r['ratio_p50']:.3f} | {r['measured_min_ms']:.2f} | {r['ratio_min']:.3f} |"
        )
    return "\n".join(lines) + "\n"


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default="runs/latency_table", help="networks, probes, table, JSON and Markdown go here")
    p.add_argument("--genotypes", default=DEFAULT_GENOTYPES)
    p.add_argument("--runtime", choices=[r.value for r in TableRuntime], default="onnxruntime")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--size", default="224x224")
    p.add_argument("--table", default=None, help="use this table instead of building one")
    p.add_argument("--rounds", type=int, default=4, help="rounds of the networks")
    p.add_argument("--runs", type=int, default=50)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--table-rounds", type=int, default=3)
    p.add_argument("--copies", type=int, default=8, help="least copies of an operation in its probe")
    p.add_argument("--weights-mb", type=float, default=4.0, help="and enough copies for this much weight data")
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(1)
    out, runtime = Path(args.out), TableRuntime(args.runtime)
    names = [n.strip() for n in args.genotypes.split(",") if n.strip()]
    size = parse_shape(args.size, "--size").size
    spec = NetworkSpec.of(VARIANT, get_entry(VARIANT).config_cls(), size)
    load_before = machine_info()["load_average"]
    files = export_networks(names, out / "networks", runtime)
    before = args.rounds if args.table else (args.rounds + 1) // 2
    times = time_networks(files, before, args)
    if args.table:
        table = LatencyTable.load(args.table, runtime=runtime, threads=args.threads)
        table.check_network(spec, "the benchmark's network")
        table_path = args.table
    else:
        t0 = time.time()
        rule = CopyRule(args.copies, int(args.weights_mb * 2**20))
        settings = OpsBenchSettings(runtime, args.threads, rounds=args.table_rounds, copies=rule)
        table = build_latency_table(spec, settings, models_dir=out / "probes", progress=None)
        table_path = str(table.save(out / "latency_table.json"))
        log(f"latency table built in {time.time() - t0:.0f} s: {table_path}")
        for name, more in time_networks(files, args.rounds - before, args).items():
            for key in ("p50", "min"):
                times[name][key] += more[key]
    result = {
        "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "table": table_path,
        "target": table.describe(),
        "rounds": args.rounds,
        "runs": args.runs,
        "machine": machine_info(),
        "load_before": load_before,
        "load_after": machine_info()["load_average"],
        "comparison": compare(table, names, times),
    }
    print(save_result(result, out, "latency_table_check", markdown))
    return 0


if __name__ == "__main__":
    sys.exit(main())
