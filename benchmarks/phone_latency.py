"""Phone latency: the default AestheticNet* (and any other network) against NIMA-MobileNetV2, side by side.

    python benchmarks/phone_latency.py [--out DIR] [--rounds 4] [--threads 1,2] [--runs 30] [--warmup 5]
                                       [--skip-int8] [--models nima_mobilenet_v2,aestheticnet_star]
                                       [--model NAME=CKPT ...] [--genotype NAME=GENOTYPE ...]
                                       [--calibration-samples 100] [--fresh]

NIMA-MobileNetV2 (``create_model("nima_mobilenet_v2")``: MobileNetV2 1.0 with NIMA's head) is the baseline a phone
user would otherwise pick. Every network, the registered variants of ``--models`` and the checkpoints of
``--model NAME=CKPT`` and the default AestheticNet* with each genotype of ``--genotype NAME=GENOTYPE`` (a registered
name or a ``genotype.json``, e.g. a latency-aware search's), goes the same way:

1. a checkpoint: a variant of ``--models`` or ``--genotype`` gets random weights (seed 0) with randomised BN
   statistics, as
   ``benchmarks/export_parity.py`` does, so that the int8 calibration ranges are not degenerate; latency does not
   depend on the weights. A ``--model`` checkpoint is used as it is;
2. ``aestheticnet.export.export_checkpoint`` to ONNX and TFLite, fp32 and int8 (int8 calibrated on the synthetic
   default dataset, ``aestheticnet.data.synthetic.ensure_synthetic()``), cached in ``--out``/models and reused
   while the checkpoint's sha256 is unchanged (``--fresh`` rebuilds);
3. ``verify_artifact`` of every file at 224x224 against its checkpoint (int8 values are reported, not gated);
4. timing with the package's harness (``aestheticnet.bench.run_benchmark``: each measurement a fresh process,
   warm-up, then ``--runs`` timed runs) on ONNX Runtime and LiteRT (XNNPACK), every ``--threads`` count, 224x224,
   batch 1. The whole set is measured ``--rounds`` times, interleaved: in each round the files of one runtime and
   precision run back to back, the networks in an order rotated every round, so that a change of machine load
   falls on all networks alike. Each cell is the median over rounds of the per-round p50.

Writes ``phone_latency.json`` and ``phone_latency.md`` in ``--out``: params and MACs (224x224, the package's
counter), p50 per runtime x threads x precision with the ratio to NIMA-MobileNetV2 in the same runtime, threads and
precision, and int8 over fp32 per network. On a shared machine the numbers are indicative only.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from aestheticnet.artifacts import Format, Precision
from aestheticnet.bench import (
    BenchSettings,
    interleaved_rounds,
    machine_info,
    parse_threads,
    profile_model,
    run_benchmark,
    save_result,
    summarize_rounds,
    untrained_checkpoint,
)
from aestheticnet.data import ensure_synthetic
from aestheticnet.export import ExportFailed, ExportOptions, VerifyOptions, export_checkpoint, verify_artifact
from aestheticnet.io import atomic_write_json, sha256_file
from aestheticnet.models import list_models, load
from aestheticnet.sizes import Shape

BASELINE = "nima_mobilenet_v2"
SIZE = (224, 224)
FORMATS = (Format.ONNX, Format.TFLITE)
RUNTIME_NAMES = {"onnxruntime": "ONNX Runtime", "litert": "LiteRT"}
RANDOM_WEIGHTS = "random (seed 0), BN statistics randomised: timing only, the scores mean nothing"


@dataclass
class Network:
    name: str
    checkpoint: Path
    weights: str
    params: int = 0
    macs: int = 0
    files: list[Path] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    verify: dict[str, dict] = field(default_factory=dict)


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default="runs/phone_latency", help="checkpoints, exports, JSON and Markdown go here")
    p.add_argument("--rounds", type=int, default=4, help="interleaved rounds; each cell is the median over them")
    p.add_argument("--warmup-rounds", type=int, default=0, help="rounds run first and dropped")
    p.add_argument("--threads", default="1,2", help="runtime thread counts, comma-separated")
    p.add_argument("--runs", type=int, default=30, help="timed runs per measurement")
    p.add_argument("--warmup", type=int, default=5, help="warm-up runs per measurement")
    p.add_argument("--skip-int8", action="store_true", help="fp32 only (no calibration, no int8 exports)")
    p.add_argument(
        "--models",
        default=f"{BASELINE},aestheticnet_star",
        help="registered variants, comma-separated (random weights)",
    )
    p.add_argument(
        "--model",
        action="append",
        default=[],
        metavar="NAME=CKPT",
        help="a checkpoint to add under NAME (repeatable), e.g. a latency-searched AestheticNet*",
    )
    p.add_argument(
        "--genotype",
        action="append",
        default=[],
        metavar="NAME=GENOTYPE",
        help="the default AestheticNet* with this genotype (name or genotype.json), random weights",
    )
    p.add_argument("--calibration-samples", type=int, default=100, help="int8 calibration images")
    p.add_argument("--fresh", action="store_true", help="rebuild the exports even when cached")
    args = p.parse_args(argv)
    if args.rounds < 1 or args.runs < 1 or args.warmup < 0 or args.warmup_rounds < 0:
        p.error("--rounds and --runs need at least 1, --warmup and --warmup-rounds 0 or more")
    return args


def networks_from_args(args: argparse.Namespace, folder: Path) -> list[Network]:
    """The variants of ``--models`` (saved here with random weights) and the checkpoints of ``--model``."""
    names = [n.strip() for n in args.models.split(",") if n.strip()]
    unknown = [n for n in names if n not in list_models()]
    if unknown:
        raise SystemExit(f"--models: unknown variant(s) {unknown}; registered: {', '.join(list_models())}")
    folder.mkdir(parents=True, exist_ok=True)
    nets = [Network(name, random_checkpoint(name, folder), RANDOM_WEIGHTS) for name in names]
    for spec in args.model:
        name, sep, path = spec.partition("=")
        if not sep or not name or not path:
            raise SystemExit(f"--model {spec!r}: expected NAME=CKPT, e.g. searched=runs/train/best.safetensors")
        if not Path(path).is_file():
            raise SystemExit(f"--model {spec!r}: {path} is not a file")
        nets.append(Network(name, Path(path), f"from {path}"))
    for spec in args.genotype:
        name, sep, genotype = spec.partition("=")
        if not sep or not name or not genotype:
            raise SystemExit(f"--genotype {spec!r}: expected NAME=GENOTYPE, e.g. searched=runs/s/genotype.json")
        try:
            ckpt = random_checkpoint("aestheticnet_star", folder, genotype=genotype, name=name)
        except (KeyError, ValueError, OSError) as exc:
            raise SystemExit(f"--genotype {spec!r}: {exc}") from None
        nets.append(Network(name, ckpt, f"{RANDOM_WEIGHTS}; genotype {genotype}"))
    taken = [n.name for n in nets]
    if len(set(taken)) != len(taken):
        raise SystemExit(f"network names must differ, got {taken}")
    return nets


def random_checkpoint(variant: str, folder: Path, genotype: str | None = None, name: str | None = None) -> Path:
    overrides = {"genotype": genotype} if genotype else {}
    return untrained_checkpoint(folder / f"{name or variant}.safetensors", variant, **overrides)


def export_network(net: Network, folder: Path, precisions: list[Precision], args, data: Path | None) -> None:
    """``export_checkpoint`` into ``folder``; reuses the files of an earlier export of the same checkpoint."""
    record = folder / f"{net.name}.export.json"
    want = {
        "sha256": sha256_file(net.checkpoint),
        "formats": [f.value for f in FORMATS],
        "precisions": [p.value for p in precisions],
        "calibration_samples": args.calibration_samples,
    }
    cached = json.loads(record.read_text()) if record.is_file() and not args.fresh else {}
    if {k: cached.get(k) for k in want} != want or not all(Path(f).exists() for f in cached["files"]):
        t0 = time.time()
        try:
            report = export_checkpoint(
                net.checkpoint,
                FORMATS,
                precisions,
                folder,
                ExportOptions(data=data, calibration_samples=args.calibration_samples),
                name=net.name,
                log=say,
            )
        except ExportFailed as exc:
            report = exc.report
        say(f"{net.name}: exported in {time.time() - t0:.0f} s")
        cached = {
            **want,
            "files": [a.path for a in report.artifacts],
            "missing": [f"{net.name} {k}: {v}" for k, v in report.failures.items()],
        }
        atomic_write_json(record, cached)
    net.files, net.missing = [Path(f) for f in cached["files"]], list(cached["missing"])


def check_network(net: Network) -> None:
    """Params and MACs at 224x224 from the checkpoint, and ``verify`` of every exported file."""
    profile = profile_model(load(net.checkpoint), SIZE)
    net.params, net.macs = profile["params"], profile["macs"]
    for path in net.files:
        report = verify_artifact(path, net.checkpoint, VerifyOptions([Shape(*SIZE)], threads=1))
        net.verify[path.name] = {
            "passed": report.passed,
            "notes": report.notes,
            "mismatches": [str(m) for m in report.mismatches],
        }
        say(f"verify {path.name}: {'passed' if report.passed else 'FAILED'}")


def measure(nets: list[Network], args, threads: tuple[int, ...]) -> list[dict]:
    """Every file x threads in ``--rounds`` interleaved rounds (after ``--warmup-rounds`` dropped ones): the files of
    one format and precision back to back, the networks rotated every round. One row per measurement, tagged with
    its network and round."""
    settings = BenchSettings(threads=threads, shapes=(Shape(*SIZE),), runs=args.runs, warmup=args.warmup, timeout_s=900)

    def kind(case: tuple[str, Path]) -> str:
        name, path = case
        return path.name.removeprefix(name)

    # sorted() is stable: within a format and precision the networks keep their order.
    cases = sorted(((net.name, path) for net in nets for path in net.files), key=kind)
    say(f"{len(cases)} files x {len(threads)} thread counts, {args.rounds} rounds")
    results = interleaved_rounds(
        cases,
        lambda case: run_benchmark([case[1]], settings, progress=say)["results"],
        args.rounds,
        warmup_rounds=args.warmup_rounds,
        group=kind,
        progress=lambda label, case, _: say(f"{label}: {case[1].name} measured"),
    )
    return [
        {**row, "network": name, "round": index}
        for (name, _), per_round in results.items()
        for index, rows in enumerate(per_round)
        for row in rows
    ]


def summarise(rows: list[dict], nets: list[Network]) -> list[dict]:
    """One cell per network x runtime x threads x precision: median over rounds of the p50, ratios."""
    cells: dict[tuple, dict] = {}
    for row in rows:
        key = (row["network"], row["backend"], row["threads"], row["precision"])
        cell = cells.setdefault(
            key,
            {
                "network": key[0],
                "runtime": key[1],
                "threads": key[2],
                "precision": key[3],
                "round_p50_ms": [],
                "errors": [],
            },
        )
        if row["ok"]:
            cell["round_p50_ms"].append(row["p50_ms"])
        else:
            cell["errors"].append(f"round {row['round']}: {row['error']}")
    for cell in cells.values():
        spread = summarize_rounds(cell["round_p50_ms"]) if cell["round_p50_ms"] else None
        cell["p50_ms"] = spread["median"] if spread else None
        cell["spread_ms"] = [spread["min"], spread["max"]] if spread else None
    for (name, runtime, threads, precision), cell in cells.items():
        base = cells.get((BASELINE, runtime, threads, precision), {}).get("p50_ms")
        fp32 = cells.get((name, runtime, threads, "fp32"), {}).get("p50_ms")
        own = cell["p50_ms"]
        cell["ratio_to_baseline"] = own / base if own and base else None
        cell["over_own_fp32"] = own / fp32 if own and fp32 else None
    order = {n.name: i for i, n in enumerate(nets)}
    runtimes = list(RUNTIME_NAMES)
    return sorted(
        cells.values(),
        key=lambda c: (
            runtimes.index(c["runtime"]) if c["runtime"] in runtimes else 9,
            c["threads"],
            c["precision"],
            order[c["network"]],
        ),
    )


def markdown(report: dict) -> str:
    nets = report["networks"]
    names = list(nets)
    s = report["settings"]
    lines = [
        (
            f"224x224, batch 1; {s['rounds']} interleaved rounds of {s['runs']} timed runs after {s['warmup']} "
            "warm-up, each measurement a fresh process; each cell is the median over rounds of the p50. Ratio: "
            f"to {report['baseline']} in the same runtime, threads and precision. 1-minute load average during the "
            f"measurements: {report['load_average']}."
        ),
        "",
        "| network | weights | params | MACs |",
        "|---|---|---:|---:|",
    ]
    lines += [
        f"| {name} | {n['weights']} | {n['params'] / 1e6:.2f} M | {n['macs'] / 1e9:.3f} G |" for name, n in nets.items()
    ]
    lines += [
        "",
        "| runtime | threads | precision | " + " | ".join(names) + " |",
        "|---|---:|---|" + "---:|" * len(names),
    ]
    by_key: dict[tuple, dict[str, dict]] = {}
    for c in report["summary"]:
        by_key.setdefault((c["runtime"], c["threads"], c["precision"]), {})[c["network"]] = c
    for (runtime, threads, precision), row in by_key.items():
        cells = [_cell(row.get(name), "ratio_to_baseline") for name in names]
        lines.append(f"| {RUNTIME_NAMES.get(runtime, runtime)} | {threads} | {precision} | " + " | ".join(cells) + " |")
    int8 = [(k, row) for k, row in by_key.items() if k[2] == "int8"]
    if int8:
        lines += [
            "",
            "int8 latency over the same network's fp32:",
            "",
            "| runtime | threads | " + " | ".join(names) + " |",
            "|---|---:|" + "---:|" * len(names),
        ]
        for (runtime, threads, _), row in int8:
            cells = [_ratio(row.get(name, {}).get("over_own_fp32")) for name in names]
            lines.append(f"| {RUNTIME_NAMES.get(runtime, runtime)} | {threads} | " + " | ".join(cells) + " |")
    notes = [m for n in nets.values() for m in n["missing"]] + [
        f"{name} {f}: verify failed" for name, n in nets.items() for f, v in n["verify"].items() if not v["passed"]
    ]
    return "\n".join(lines + (["", "Problems:"] + [f"- {m}" for m in notes] if notes else [])) + "\n"


def _cell(cell: dict | None, ratio_key: str) -> str:
    if cell is None:
        return "–"
    if cell["p50_ms"] is None:
        return "failed"
    return f"{cell['p50_ms']:.1f} ms ({_ratio(cell[ratio_key])})"


def _ratio(value: float | None) -> str:
    return f"{value:.2f}x" if value is not None else "–"


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def network_records(nets: list[Network]) -> dict[str, dict]:
    return {
        n.name: {
            "checkpoint": str(n.checkpoint),
            "weights": n.weights,
            "params": n.params,
            "macs": n.macs,
            "macs_size": list(SIZE),
            "files": [str(f) for f in n.files],
            "missing": n.missing,
            "verify": n.verify,
        }
        for n in nets
    }


def main(argv=None) -> int:
    args = parse_args(argv)
    threads = parse_threads(args.threads)
    out = Path(args.out)
    folder = out / "models"
    precisions = [Precision.FP32] + ([] if args.skip_int8 else [Precision.INT8])
    nets = networks_from_args(args, folder)
    data = None if args.skip_int8 else ensure_synthetic(progress=False)
    t0 = time.time()
    for net in nets:
        say(f"exporting {net.name}")
        export_network(net, folder, precisions, args, data)
        check_network(net)
    t_export = time.time() - t0
    rows = measure(nets, args, threads)
    loads = [r["load_average"][0] for r in rows if r.get("load_average")]
    meta = {
        "schema": "aestheticnet.phone_latency/1",
        "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "settings": {
            "rounds": args.rounds,
            "warmup_rounds": args.warmup_rounds,
            "threads": list(threads),
            "runs": args.runs,
            "warmup": args.warmup,
            "size": list(SIZE),
            "batch": 1,
            "precisions": [p.value for p in precisions],
            "calibration": str(data) if data else None,
            "calibration_samples": args.calibration_samples,
        },
        "machine": machine_info(),
        "load_average": [min(loads), max(loads)] if loads else None,
        "seconds": {"export_and_verify": round(t_export), "total": round(time.time() - t0)},
    }
    summary = summarise(rows, nets)
    report = {**meta, "baseline": BASELINE, "networks": network_records(nets), "summary": summary, "rows": rows}
    print(save_result(report, out, "phone_latency", markdown))
    return 0


if __name__ == "__main__":
    sys.exit(main())
