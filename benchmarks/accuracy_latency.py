"""Accuracy against latency: AestheticNet and its ablations beside NIMA-MobileNetV2's own width curve.

    .venv/bin/python benchmarks/accuracy_latency.py --data runs/pool/data --preset demo --seeds 0,1,2 --epochs 3 \\
        --crop 128 --monitor-val-items 128 --latency-genotype LATENCY_EPYC_W2 --out runs/accuracy_latency \\
        [--rows ROW,ROW] [--train-only] [--no-train] [--fresh-latency] [--skip-latency]

Every row of ``ROWS`` is trained with one recipe (``recipe()``: the photo pool of ``benchmarks/photo_pool.py``
split by photo, MSCN input, images at 192 (256 at most on the longer side) with ``--crop`` square training crops,
SGD ``--lr`` cosine for ``--epochs``, SW-EMD plus the within-photo ranking loss on batches of 4 photos; the network
size of ``--preset``) for every seed of ``--seeds``, from scratch. The metrics are the last epoch's (nothing is
selected on validation): SROCC, PLCC, accuracy and EMD on the validation photos' images, and the ladder rho on their
pristine crops (``aestheticnet.pipeline.ladder_check``); mean and std over seeds. A row changes the recipe by the
model options it names (``width``, ``genotype``, ``loss``, ``cbam``, ``dilation``, ``policy``, ``layers``,
``init_channels``). Each seed splits the photos its own way, so the row searched on the pool searches per seed, on
that seed's training photos only (``pool_genotype``, in ``OUT/search/seed<S>``), unless ``--searched-genotype NAME``
names one ("{seed}" in it is replaced). The latency-aware rows need ``--latency-genotype``, or are left out.

Latency: ``benchmarks/phone_latency.py`` on every row's seed-0 checkpoint (interleaved rounds of fresh processes,
medians; ONNX Runtime and LiteRT, 1 thread, 224x224, fp32 and int8): ratios to NIMA-MobileNetV2 1.0 in the same run.

Each (row, seed) trains and resumes in ``OUT/runs/<row>/seed<S>``, keeping its results (``result.json``): processes
with disjoint ``--rows`` train at once (``--train-only``); a last run measures latency and writes JSON, MD, PNG.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from aestheticnet.bench import TradeoffPoint, against_curve, plot_tradeoff, save_result, tradeoff_sentence
from aestheticnet.nas import SearchConfig
from aestheticnet.pipeline import RESULT_FILE, PipelineConfig, train_and_score
from aestheticnet.train import SEARCH_STATE_FILE, TrainConfig, run_search

BASELINE = "nima_mobilenet_v2"
METRICS = ("srocc", "plcc", "accuracy", "emd_r2")
PRESETS = {"demo": {"layers": 5, "init_channels": 16}, "default": {"layers": 20, "init_channels": 36}}
RUNTIMES = ("onnxruntime", "litert")
# The latency-searched cells at a size whose latency lies inside the baseline curve's range, where it is interpolated.
IN_CURVE_SIZE = {"layers": 14, "init_channels": 32}
# The recipe every row shares (recorded in the JSON); the rows differ only in their model options.
SHARED = (
    "data",
    "input_norm",
    "image_size",
    "max_side",
    "train_crop",
    "epochs",
    "batch_size",
    "lr",
    "rank_weight",
    "photos_per_batch",
    "val_fraction",
    "max_train_items",
)


@dataclass(frozen=True)
class Row:
    name: str
    variant: str
    kind: str  # "baseline", "network", "searched" or "ablation"
    options: dict = field(default_factory=dict)
    genotype_arg: str = ""  # the command-line option that gives this row's genotype


ROWS = (
    Row("nima_mobilenet_v2_050", BASELINE, "baseline", {"width": 0.5}),
    Row("nima_mobilenet_v2_075", BASELINE, "baseline", {"width": 0.75}),
    Row(BASELINE, BASELINE, "baseline", {"width": 1.0}),
    Row("aestheticnet", "aestheticnet", "network"),
    Row("aestheticnet_star", "aestheticnet_star", "network"),
    Row("star_searched", "aestheticnet_star", "searched", genotype_arg="searched_genotype"),
    Row("star_latency_searched", "aestheticnet_star", "searched", genotype_arg="latency_genotype"),
    Row("star_latency_searched_14c32", "aestheticnet_star", "searched", IN_CURVE_SIZE, "latency_genotype"),
    Row("star_emd", "aestheticnet_star", "ablation", {"loss": "emd"}),
    Row("star_no_cbam", "aestheticnet_star", "ablation", {"cbam": False}),
    Row("star_no_dilation", "aestheticnet_star", "ablation", {"dilation": 1}),
    Row("star_square", "aestheticnet_star", "ablation", {"policy": "fixed"}),
)


def recipe(args, row: Row, seed: int) -> TrainConfig:
    architecture = PRESETS[args.preset] if row.variant != BASELINE else {}
    options = {**architecture, **row.options}
    if row.genotype_arg == "searched_genotype" and not args.searched_genotype:
        options["genotype"] = str(pool_genotype(args, seed))
    elif row.genotype_arg:  # "{seed}" in it: each seed's own genotype, searched on that seed's training photos
        options["genotype"] = getattr(args, row.genotype_arg).format(seed=seed)
    return TrainConfig(
        data=str(args.data),
        variant=row.variant,
        input_norm="mscn",
        image_size=192,
        max_side=256,
        train_crop=args.crop,
        epochs=args.epochs,
        batch_size=32,
        lr=args.lr,
        rank_weight=3.0,
        photos_per_batch=4,
        group_by="challenge",
        val_fraction=args.val_fraction,
        max_train_items=args.max_train_items,
        max_val_items=args.monitor_val_items,
        seed=seed,
        num_workers=0,
        threads=args.threads,
        **options,
    )


def pool_genotype(args, seed: int) -> Path:
    """The genotype.json a P-DARTS search finds on the training photos of ``seed``'s split (the recipe's
    ``val_fraction``, grouped by photo), in ``OUT/search/seed<S>``; resumed there, and not run again once finished."""
    out = args.out / "search" / f"seed{seed}"
    found = out / "genotype.json"
    demo = PipelineConfig().search
    settings = {**demo.overrides, "proxy_fraction": args.search_proxy_fraction, "seed": seed}
    config = SearchConfig.from_preset(demo.preset, epochs_scale=args.search_epochs_scale, **settings)
    split = {"val_fraction": args.val_fraction, "group_by": "challenge"}
    resume = (out / SEARCH_STATE_FILE).exists()
    torch.set_num_threads(args.threads)  # as the trainings: one process per core, no oversubscribed threads
    # A finished search returns its genotype at once; one with other settings is refused, naming them.
    run_search(config, args.data, out, resume=resume, progress=not args.quiet, dataset_kwargs=split)
    return found


def run_seed(args, row: Row, seed: int) -> dict | None:
    """The results of ``row`` trained with ``seed``; None when they are not there and ``--no-train`` forbids it."""
    out = args.out / "runs" / row.name / f"seed{seed}"
    if args.no_train and not (out / RESULT_FILE).exists():
        return None
    result = {"row": row.name, "seed": seed, **train_and_score(recipe(args, row, seed), out, progress=not args.quiet)}
    print(f"{row.name} seed {seed}: SROCC {result['metrics']['srocc']:.3f}, ladder {result['ladders']['mean']:.2f}")
    return result


def spread(values: list[float]) -> dict:
    return {"mean": float(np.mean(values)), "std": float(np.std(values)), "values": values}


def accuracy(results: list[dict]) -> dict:
    summary = {k: spread([r["metrics"][k] for r in results]) for k in METRICS}
    summary["ladder"] = spread([r["ladders"]["mean"] for r in results])
    return summary


def measure_latency(args, rows: list[Row]) -> dict:
    """``phone_latency.py`` over the seed-0 checkpoints, 1 thread; returns its JSON. A measurement of the same
    checkpoints already in ``OUT/latency`` is reused unless ``--fresh-latency``."""
    folder = args.out / "latency"
    checkpoints = {row.name: args.out / "runs" / row.name / "seed0" / "last.safetensors" for row in rows}
    saved = folder / "phone_latency.json"
    if saved.exists() and not args.fresh_latency:
        report = json.loads(saved.read_text())
        if {n: v["checkpoint"] for n, v in report["networks"].items()} == {n: str(p) for n, p in checkpoints.items()}:
            return report
    models = [f"--model={name}={path}" for name, path in checkpoints.items()]
    script = Path(__file__).with_name("phone_latency.py")
    command = [sys.executable, str(script), "--models", "", *models, "--threads", "1", "--rounds", str(args.rounds)]
    subprocess.run([*command, "--out", str(folder)], check=True)
    return json.loads(saved.read_text())


def latency_cells(report: dict) -> dict[str, dict]:
    """``{row: {"onnxruntime fp32": {"ms": .., "ratio": ..}, ...}}`` at 1 thread; params and MACs."""
    cells: dict[str, dict] = {}
    for cell in report["summary"]:
        if cell["threads"] == 1:
            key = f"{cell['runtime']} {cell['precision']}"
            cells.setdefault(cell["network"], {})[key] = {"ms": cell["p50_ms"], "ratio": cell["ratio_to_baseline"]}
    for name, net in report["networks"].items():
        cells.setdefault(name, {})["size"] = {"params": net["params"], "macs": net["macs"]}
    return cells


def points(rows: list[dict], runtime: str, metric: str) -> list[TradeoffPoint]:
    return [
        TradeoffPoint(
            r["name"],
            r["latency"][f"{runtime} fp32"]["ms"],
            r["accuracy"][metric]["mean"],
            r["accuracy"][metric]["std"],
            baseline=r["kind"] == "baseline",
        )
        for r in rows
        if r.get("latency", {}).get(f"{runtime} fp32", {}).get("ms")
    ]


def curve_verdicts(rows: list[dict]) -> None:
    """Each other row's SROCC and ladder rho against the baseline curve at its own fp32 latency, per runtime."""
    for runtime in RUNTIMES:
        for metric in ("srocc", "ladder"):
            found = points(rows, runtime, metric)
            for point in (p for p in found if not p.baseline):
                v = against_curve(point, found)
                verdict = {"curve": v.curve, "own": point.accuracy, "above": v.above, "word": v.word}
                row = next(r for r in rows if r["name"] == point.name)
                row.setdefault("curve", {}).setdefault(runtime, {})[metric] = verdict | {"nearest": v.nearest.name}


def options_of(args, row: Row, results: list[dict]) -> dict:
    """The row's change to the recipe; a genotype searched per seed is named by where it came from, and the
    genotypes themselves are kept under ``genotypes``."""
    first = results[0]["config"]
    options = {k: first[k] for k in [*row.options, *(["genotype"] if row.genotype_arg else [])]}
    if row.genotype_arg == "searched_genotype" and not args.searched_genotype:
        options["genotype"] = "searched on each seed's training photos (OUT/search/seed<S>)"
        search = {"search_epochs_scale": args.search_epochs_scale, "search_proxy_fraction": args.search_proxy_fraction}
        options |= search
        options["genotypes"] = {r["seed"]: json.loads(Path(r["config"]["genotype"]).read_text()) for r in results}
    return options


def build_report(args, rows: list[Row], results: dict[str, list[dict]], latency: dict | None) -> dict:
    cells = latency_cells(latency) if latency else {}
    table = [
        {
            "name": row.name,
            "variant": row.variant,
            "kind": row.kind,
            "options": options_of(args, row, results[row.name]),
            "seeds": [r["seed"] for r in results[row.name]],
            "train_seconds": [r["train_seconds"] for r in results[row.name]],
            "items": results[row.name][0]["items"],
            "ladder_photos": results[row.name][0]["ladders"]["photos"],
            "accuracy": accuracy(results[row.name]),
            "per_seed": [
                {"seed": r["seed"], "metrics": r["metrics"], "ladders": r["ladders"]["per_ladder"]}
                for r in results[row.name]
            ],
            **({"latency": cells[row.name]} if row.name in cells else {}),
        }
        for row in rows
    ]
    curve_verdicts(table)
    recipe_fields = recipe(args, rows[0], 0).to_dict()
    shared = {k: recipe_fields[k] for k in SHARED}
    return {
        "schema": "aestheticnet.accuracy_latency/1",
        "preset": args.preset,
        "recipe": shared,
        "rows": table,
        "left_out": [
            f"{r.name}: no --{r.genotype_arg.replace('_', '-')}"
            for r in ROWS
            if r.genotype_arg == "latency_genotype" and not args.latency_genotype
        ],
        "latency_settings": latency["settings"] if latency else None,
        "latency_load_average": latency.get("load_average") if latency else None,
    }


def markdown(result: dict) -> str:
    """The comparison table of ``accuracy_latency.json``: accuracy over seeds, size, latency ratios, the curve."""
    recipe_text = ", ".join(f"{k} {v}" for k, v in result["recipe"].items() if k != "data")
    first = result["rows"][0]
    lines = [
        (
            f"Every row trained from scratch with one recipe ({recipe_text}; network size `{result['preset']}`), "
            f"the seeds of each row, last epoch; {first['items']} validation images, ladders on "
            f"{first['ladder_photos']} crops. Latency: 224x224, batch 1, 1 thread, as a multiple of "
            "NIMA-MobileNetV2 1.0 in the same run."
        ),
        "",
        (
            "| row | seeds | SROCC | PLCC | accuracy | EMD r=2 | ladder rho | params M | MMACs | ORT fp32 | ORT int8 "
            "| LiteRT fp32 | LiteRT int8 |"
        ),
        "|---|---|" + "---:|" * 11,
    ]
    for row in result["rows"]:
        acc, lat = row["accuracy"], row.get("latency", {})
        cells = [f"{acc[k]['mean']:.3f} ± {acc[k]['std']:.3f}" for k in (*METRICS, "ladder")]
        size = lat.get("size")
        cells += [f"{size['params'] / 1e6:.2f}", f"{size['macs'] / 1e6:.0f}"] if size else ["", ""]
        for key in ("onnxruntime fp32", "onnxruntime int8", "litert fp32", "litert int8"):
            cell = lat.get(key) or {}
            cells.append(f"{cell['ms']:.2f} ms ({cell['ratio']:.2f}x)" if cell.get("ms") and cell.get("ratio") else "")
        seeds = ",".join(map(str, row["seeds"]))
        lines.append(f"| {row['name']} | {seeds} | " + " | ".join(cells) + " |")
    options = [
        f"{row['name']}: " + ", ".join(f"{k} {v}" for k, v in row["options"].items() if k != "genotypes")
        for row in result["rows"]
        if row["options"]
    ]
    lines += ["", "What each row changes: " + "; ".join(options) + ".", "", *curve_lines(result)]
    if result["left_out"]:
        lines += ["", "Left out: " + "; ".join(result["left_out"]) + "."]
    return "\n".join(lines) + "\n"


def curve_lines(result: dict) -> list[str]:
    lines = [
        (
            "Against the NIMA-MobileNetV2 curve (widths 0.5, 0.75, 1.0) at each row's own fp32 latency ("
            "outside: the row's latency is outside the curve's range, where it is not extrapolated; the row is "
            "then better than, worse than, or a trade against the nearest width, by latency and accuracy together):"
        ),
        "",
        "| row | runtime | SROCC | curve | ladder | curve |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for row in result["rows"]:
        for runtime, verdict in row.get("curve", {}).items():
            cells = []
            for metric in ("srocc", "ladder"):
                v = verdict[metric]
                mark = "" if v["above"] is None else (" (above)" if v["above"] else " (below)")
                outside = f"outside: {v['word']} {v['nearest']}" if "word" in v else "outside"
                cells += [f"{v['own']:.3f}{mark}", outside if v["curve"] is None else f"{v['curve']:.3f}"]
            lines.append(f"| {row['name']} | {runtime} | " + " | ".join(cells) + " |")
    for runtime in RUNTIMES:
        found = points(result["rows"], runtime, "srocc")
        if found:
            lines += ["", f"{runtime}: {tradeoff_sentence(found)}"]
    return lines


def write_plot(result: dict, folder: Path) -> Path | None:
    found = points(result["rows"], "onnxruntime", "srocc")
    if not found:
        return None
    return plot_tradeoff(found, folder / "accuracy_latency.png", "ONNX Runtime fp32 latency, 1 thread, 224x224 (ms)")


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, required=True, help="the photo pool (benchmarks/photo_pool.py)")
    ap.add_argument("--preset", choices=sorted(PRESETS), default="demo", help="AestheticNet's cells and width")
    ap.add_argument("--rows", default="", help="comma-separated rows (default: all whose genotype is given)")
    ap.add_argument("--train-only", action="store_true", help="train and score, no latency and no report")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--epochs", type=int, default=3)
    # At 0.1 (the demo's rate) NIMA-MobileNetV2 from scratch collapses to one output within an epoch (width 0.5:
    # training loss flat at 2.4988 for three epochs, SROCC 0.15); at 0.05 width 1.0 does not learn in three epochs
    # of 1200 images (loss 2.39 -> 2.40) and at 0.02 it does (2.37 -> 2.18). AestheticNet* learns at all three.
    ap.add_argument("--lr", type=float, default=0.02, help="SGD learning rate of every row (cosine to 0)")
    ap.add_argument("--crop", type=int, default=192, help="training crop side (a multiple of 32) at evaluation scale")
    ap.add_argument("--max-train-items", type=int, default=None, help="train on the first N training images")
    ap.add_argument("--monitor-val-items", type=int, default=256, help="validated after each epoch (progress only)")
    ap.add_argument("--val-fraction", type=float, default=0.4)
    ap.add_argument("--searched-genotype", default="", help="a genotype for star_searched instead of searching")
    ap.add_argument("--search-epochs-scale", type=float, default=0.2, help="of the paper's epochs per stage")
    ap.add_argument("--search-proxy-fraction", type=float, default=0.5, help="of the training images")
    ap.add_argument("--latency-genotype", default="", help="genotype of a latency-aware search on this machine")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=3, help="interleaved latency rounds")
    ap.add_argument("--skip-latency", action="store_true")
    ap.add_argument("--fresh-latency", action="store_true", help="measure again even when OUT/latency has it")
    ap.add_argument("--no-train", action="store_true", help="report the trained (row, seed) pairs, train no more")
    ap.add_argument("--quiet", action="store_true")
    ap.add_argument("--out", type=Path, default=Path("runs/accuracy_latency"))
    return ap.parse_args()


def main() -> None:
    args = parse_args()
    chosen = [n for n in args.rows.split(",") if n]
    unknown = sorted(set(chosen) - {r.name for r in ROWS})
    if unknown:
        raise SystemExit(f"--rows: unknown {unknown}; rows: {', '.join(r.name for r in ROWS)}")
    given = [r for r in ROWS if r.genotype_arg != "latency_genotype" or args.latency_genotype]
    rows = [r for r in given if r.name in (chosen or [r.name])]
    seeds = [int(s) for s in args.seeds.split(",")]
    # Seed by seed: every row's seed-0 checkpoint, which the latency phase exports and times, comes first.
    results: dict[str, list[dict]] = {r.name: [] for r in rows}
    missing = []
    for seed in seeds:
        for row in rows:
            try:  # a search or a training kept in OUT with other settings than these
                found = run_seed(args, row, seed)
            except ValueError as exc:
                raise SystemExit(f"{row.name} seed {seed}: {exc}") from None
            results[row.name] += [found] if found else []
            missing += [] if found else [f"{row.name} seed {seed}: not trained (--no-train)"]
    if args.train_only:
        return
    rows = [r for r in rows if results[r.name]]
    latency = None if args.skip_latency else measure_latency(args, rows)
    result = build_report(args, rows, results, latency)
    result["left_out"] += missing
    text = save_result(result, args.out, "accuracy_latency", markdown)
    plot = write_plot(result, args.out)
    print(text + (f"\nplot: {plot}" if plot else ""))


if __name__ == "__main__":
    main()
