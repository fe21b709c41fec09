"""A latency-aware search against a target's latency table, and what its genotype costs in accuracy.

    python benchmarks/latency_search.py --table T.json [--weights 2] [--target-ms MS] [--epochs-scale 0.12]
        [--proxy-fraction 0.25] [--seeds 0,1,2] [--search-seeds 0] [--baseline PDARTS]
        [--out runs/latency_search]

1. Search: P-DARTS (preset ``pdarts_paper``, 32 px, C=8, batch 32) on the synthetic default at a CPU budget
   (``--epochs-scale`` of the paper's epochs per stage, ``--proxy-fraction`` of the training photos), against the
   table ``T`` (``aestheticnet bench ops``), once per ``--weights`` value (``latency_weight``; ``--target-ms``
   sets ``latency_target_ms``) and ``--search-seeds`` value. Recorded: the genotype, the search's own (additive)
   estimate of its latency at the end of each stage, and the table's prediction (``LatencyTable.predict``, which
   counts shared ReLUs).
2. Train: AestheticNet* with each searched genotype and with ``--baseline``, with the demo's training settings
   (``PipelineConfig().train_config``: 5 cells, C=16, MSCN input, 8 epochs), once per ``--seeds`` value (the seed
   also draws the split); the runs go two at a time in spawned processes, one thread each. Recorded: the best
   and the last epoch's validation SROCC.

Writes ``latency_search.json`` and ``latency_search.md`` in ``--out``; searches and trainings already finished
there are reused (their folders resume). Latency itself is measured by ``benchmarks/phone_latency.py
--genotype NAME=OUT/search_w*/genotype.json``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import multiprocessing as mp
import statistics
from pathlib import Path

from aestheticnet.bench import save_result


def _tag(weight: float, target_ms: float | None, seed: int = 0) -> str:
    return f"w{weight:g}" + (f"_t{target_ms:g}" if target_ms else "") + (f"_seed{seed}" if seed else "")


def search(table: str, weight: float, seed: int, args, data: Path, predict) -> dict:
    import torch

    from aestheticnet.nas import SearchConfig
    from aestheticnet.train import run_search

    torch.set_num_threads(1)
    cfg = dataclasses.replace(
        SearchConfig.from_preset(
            "pdarts_paper",
            epochs_scale=args.epochs_scale,
            resolution=32,
            init_channels=8,
            batch_size=32,
            proxy_fraction=args.proxy_fraction,
        ),
        latency_table=table,
        latency_weight=weight,
        latency_target_ms=args.target_ms,
        seed=seed,
    )
    out = args.out / f"search_{_tag(weight, args.target_ms, seed)}"
    resume = (out / "search_state.safetensors").exists()
    result = run_search(cfg, data, out, resume=resume, progress=False)
    stages = json.loads((out / "arch_weights.json").read_text())["stages"]
    return {
        "weight": weight,
        "target_ms": args.target_ms,
        "search_seed": seed,
        "genotype_file": str(out / "genotype.json"),
        "genotype": result.genotype.to_dict(),
        "predicted_ms": round(predict(result.genotype).total_ms, 2),
        "predicted_ms_per_stage": [round(s["latency"]["genotype_ms"], 2) for s in stages],
    }


def _label(s: dict) -> str:
    target = f", target {s['target_ms']:g} ms" if s["target_ms"] else ""
    seed = f", search seed {s['search_seed']}" if s["search_seed"] else ""
    return f"searched (weight {s['weight']:g}{target}{seed})"


def train_one(job: tuple[str, str, int, str, str]) -> dict:
    """One training run in a spawned process: (label, genotype, seed, data, out)."""
    import torch

    from aestheticnet.pipeline import PipelineConfig
    from aestheticnet.train import train

    label, genotype, seed, data, out = job
    torch.set_num_threads(1)
    cfg = PipelineConfig().train_config("aestheticnet_star", data, genotype).replace(seed=seed, threads=1)
    resume = (Path(out) / "train_state.safetensors").exists()
    train(cfg, out, resume=resume, progress=False)
    rows = [json.loads(line) for line in (Path(out) / "metrics.jsonl").read_text().splitlines() if line.strip()]
    sroccs = [r["val"]["srocc"] for r in rows]
    print(f"{label} seed {seed}: best {max(sroccs):.3f}, last {sroccs[-1]:.3f}", flush=True)
    return {
        "label": label,
        "genotype": genotype,
        "seed": seed,
        "best_srocc": max(sroccs),
        "last_srocc": sroccs[-1],
        "epochs": len(rows),
    }


def _cell(genotype: dict, kind: str) -> str:
    return ", ".join(f"{op}<-{i}" for op, i in genotype[kind])


def _spread(values: list[float]) -> str:
    std = f" ± {statistics.stdev(values):.3f}" if len(values) > 1 else ""
    return f"{statistics.mean(values):.3f}{std}"


def markdown(result: dict) -> str:
    lines = [
        (
            f"Searches against the latency table `{Path(result['table']).name}` (P-DARTS at "
            f"{result['epochs_scale']:g} of the paper's epochs, {result['proxy_fraction']:g} of the training photos), "
            "then AestheticNet* trained with each genotype and the baseline's at the demo's settings; each training "
            "seed draws its own split of the built-in photos (3 validation photos)."
        ),
        "",
        (
            "| weight | target ms | search seed | search's estimate per stage | predicted ms | normal cell | "
            "reduction cell |"
        ),
        "|---:|---:|---:|---|---:|---|---|",
    ]
    for s in result["searches"]:
        stages = " / ".join(map(str, s["predicted_ms_per_stage"]))
        g = s["genotype"]
        lines.append(
            f"| {s['weight']:g} | {s['target_ms'] or '-'} | {s['search_seed']} | {stages} | "
            f"{s['predicted_ms']} | {_cell(g, 'normal')} | {_cell(g, 'reduce')} |"
        )
    lines += [
        "",
        "| network | seeds | best val SROCC | mean ± std | last-epoch val SROCC | mean ± std |",
        "|---|---|---|---:|---|---:|",
    ]
    for label in dict.fromkeys(r["label"] for r in result["trainings"]):
        rows = [r for r in result["trainings"] if r["label"] == label]
        best = [r["best_srocc"] for r in rows]
        last = [r["last_srocc"] for r in rows]
        seeds = " / ".join(str(r["seed"]) for r in rows)
        lines.append(
            f"| {label} | {seeds} | {' / '.join(f'{v:.3f}' for v in best)} | {_spread(best)} "
            f"| {' / '.join(f'{v:.3f}' for v in last)} | {_spread(last)} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--table", required=True, help="latency table JSON (aestheticnet bench ops)")
    ap.add_argument("--weights", default="2", help="latency weights, comma-separated")
    ap.add_argument("--target-ms", type=float, default=None)
    ap.add_argument("--epochs-scale", type=float, default=0.12)
    ap.add_argument("--proxy-fraction", type=float, default=0.25)
    ap.add_argument("--seeds", default="0,1,2", help="training seeds")
    ap.add_argument("--search-seeds", default="0", help="search seeds, comma-separated (one search per weight each)")
    ap.add_argument("--baseline", default="PDARTS", help="registered genotype or genotype.json")
    ap.add_argument("--out", type=Path, default=Path("runs/latency_search"))
    args = ap.parse_args()
    if not Path(args.table).is_file():
        ap.error(f"--table {args.table}: no such file (build one with `aestheticnet bench ops`)")
    from aestheticnet.data import ensure_synthetic

    data = ensure_synthetic(progress=False)
    args.out.mkdir(parents=True, exist_ok=True)
    from aestheticnet.nas import LatencyTable

    predict = LatencyTable.load(args.table).predict
    search_seeds = [int(s) for s in args.search_seeds.split(",") if s.strip()]
    searches = [
        search(args.table, float(w), seed, args, data, predict)
        for seed in search_seeds
        for w in args.weights.split(",")
        if w.strip()
    ]
    # (label, genotype, folder stem): folders are named by genotype, so a later run with other weights resumes
    genotypes = [(_label(s), s["genotype_file"], _tag(s["weight"], s["target_ms"], s["search_seed"])) for s in searches]
    genotypes.append((f"{args.baseline} (baseline)", args.baseline, Path(args.baseline).stem))
    seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    jobs = [
        (label, g, seed, str(data), str(args.out / f"train_{stem}_s{seed}"))
        for seed in seeds
        for label, g, stem in genotypes
    ]
    with mp.get_context("spawn").Pool(2) as pool:
        trainings = pool.map(train_one, jobs, chunksize=1)
    result = {
        "table": str(args.table),
        "epochs_scale": args.epochs_scale,
        "proxy_fraction": args.proxy_fraction,
        "searches": searches,
        "trainings": trainings,
    }
    print(save_result(result, args.out, "latency_search", markdown))


if __name__ == "__main__":
    main()
