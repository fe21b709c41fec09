#!/usr/bin/env python3
"""Render the results pages and the README's results table from the benchmarks' JSON under ``results/``.

    .venv/bin/python scripts/render_results.py           # write docs/results/*.md and the README's table
    .venv/bin/python scripts/render_results.py --check   # exit 1, naming them, when any is not what the JSON gives

Each ``results/<name>.json`` is a benchmark script's output, copied here after a run. Its page is that script's own
``markdown(result)`` under a header naming the script, the JSON and the machine it ran on; the README's table
between its ``results`` markers is made here from the same files. Nothing on these pages is typed by hand: change a
JSON, run this, commit both (``tests/test_results.py`` fails otherwise).
"""

from __future__ import annotations

import argparse
import functools
import importlib.util
import json
import statistics
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
BEGIN, END = "<!-- results: rendered by scripts/render_results.py -->", "<!-- /results -->"


@dataclass(frozen=True)
class Page:
    json: str  # under results/
    script: str  # the benchmark that wrote it (its markdown(result) renders it)
    page: str  # under docs/results/
    title: str
    command: str


PAGES = (
    Page(
        "export_time.json",
        "benchmarks/export_time.py",
        "export-time.md",
        "Export time of the default network: three formats against all four",
        "benchmarks/export_time.py --rounds 3 --warmup-rounds 1",
    ),
    Page(
        "latency_table.json",
        "benchmarks/latency_table.py",
        "latency-table.md",
        "The latency table's predictions against measured networks",
        "benchmarks/latency_table.py --genotypes PDARTS,DARTS_V2,DARTS_V1 --rounds 8",
    ),
    Page(
        "parity_by_isa.json",
        "benchmarks/parity_by_isa.py",
        "parity-by-isa.md",
        "Parity by ISA: the demo's model on x86 and on an emulated ARM64 CPU",
        'benchmarks/parity_by_isa.py --checkpoint CKPT --device "$AESTHETICNET_BOARD" --samples 40',
    ),
    Page(
        "phone_runtimes.json",
        "benchmarks/phone_runtimes.py",
        "phone-runtimes.md",
        "The phone runtimes side by side: the demo's model and the default network",
        "benchmarks/phone_runtimes.py --demo CKPT --default CKPT --data DIR --threads 1,2 --rounds 3",
    ),
    Page(
        "phone_runtimes_widths.json",
        "benchmarks/phone_runtimes.py",
        "int8-by-width.md",
        "Where int8 starts to pay: the demo's architecture at 16, 32 and 48 channels",
        "benchmarks/phone_runtimes.py --models demo,demo-raw,demo-c32,demo-c48 --threads 1 --shapes 224x224 "
        "--samples 0",
    ),
    Page(
        "photo_pool.json",
        "benchmarks/photo_pool.py",
        "photo-pool.md",
        "The photo pool: Debian's wallpapers and the built-in photos",
        "benchmarks/photo_pool.py --out runs/pool",
    ),
    Page(
        "demo_seeds.json",
        "benchmarks/demo_seeds.py",
        "demo-seeds.md",
        "The demo over three seeds, and its models on photos they never saw",
        "benchmarks/demo_seeds.py --seeds 0,1,2 --pool runs/pool/data --brisque",
    ),
    Page(
        "train_pool_demo.json",
        "benchmarks/train_pool.py",
        "demo-network.md",
        "The demo's 5-cell AestheticNet* trained on the photo pool",
        "benchmarks/train_pool.py --data runs/pool/data --preset demo --seeds 0,1,2 --epochs 8 --threads 1",
    ),
    Page(
        "train_pool_demo_v3.json",
        "benchmarks/train_pool.py",
        "demo-network-v3.md",
        "The demo's network on the photo pool before the resample distortion (synthetic generator v3)",
        "benchmarks/train_pool.py --data runs/pool/data --preset demo --seeds 0,1,2 --epochs 8 --threads 1 "
        "(a pool built by generator v3)",
    ),
    Page(
        "ladders_default.json",
        "benchmarks/ladders.py",
        "ladders-default.md",
        "Ladders of the default network and BRISQUE on the pool's validation photos",
        "benchmarks/ladders.py --data runs/pool/data --photos own --model default_seed0=CKPT0 --model "
        "default_seed1=CKPT1 --model default_seed2=CKPT2 --brisque",
    ),
    Page(
        "train_pool_default.json",
        "benchmarks/train_pool.py",
        "default-network.md",
        "The default 20-cell AestheticNet* trained on the photo pool",
        "benchmarks/train_pool.py --data runs/pool/data --preset default --seeds 0,1,2 --epochs 6 --threads 1 --int8",
    ),
    Page(
        "synth_speed.json",
        "benchmarks/synth_speed.py",
        "synth-speed.md",
        "Building the synthetic default dataset",
        "benchmarks/synth_speed.py --workers 1 --rounds 3",
    ),
    Page(
        "search_throughput.json",
        "benchmarks/search_throughput.py",
        "search-throughput.md",
        "Supernet training throughput and peak memory per P-DARTS stage",
        "benchmarks/search_throughput.py --threads 1 --json OUT.json",
    ),
    Page(
        "int8_table.json",
        "benchmarks/int8_table.py",
        "int8-table.md",
        "int8 against PyTorch by recipe: the demo's model and three seeds of the default network",
        "benchmarks/int8_table.py --model demo=CKPT --model default_seed0=CKPT --model default_seed1=CKPT "
        "--model default_seed2=CKPT --data runs/pool/data --recipes default,tail-cut,equalisation --precisions int8",
    ),
    Page(
        "int8_speed.json",
        "benchmarks/int8_speed.py",
        "int8-speed.md",
        "int8 against fp32 of the default network: latency, where the time goes, ranking",
        "benchmarks/int8_speed.py --checkpoint CKPT --data runs/pool/data --rounds 7",
    ),
    Page(
        "int8_depth.json",
        "benchmarks/int8_depth.py",
        "int8-depth.md",
        "int8 noise along the depth of the default network",
        "benchmarks/int8_depth.py star.fp32.onnx before.int8.onnx --data runs/pool/data --images 8 (the files of "
        "int8_speed.py)",
    ),
    Page(
        "runtime_profiles.json",
        "benchmarks/runtime_profiles.py",
        "runtime-profiles.md",
        "Where the time goes: each runtime's own profile of the default network's files",
        "benchmarks/runtime_profiles.py ART.onnx ART.tflite ART.pte ...",
    ),
    Page(
        "train_default.json",
        "benchmarks/train_default.py",
        "train-default.md",
        "A 5-cell AestheticNet* trained on the built-in synthetic data",
        "benchmarks/train_default.py --threads 1",
    ),
    Page(
        "export_parity.json",
        "benchmarks/export_parity.py",
        "export-parity.md",
        "Every format and precision of the trained default network against PyTorch",
        "benchmarks/export_parity.py --start CKPT --fit-steps 0 --data runs/pool/data --samples 200 "
        "--formats onnx,tflite,coreml,executorch --skip-timing --threads 1",
    ),
    Page(
        "experiments.json",
        "benchmarks/experiments.py",
        "experiments.md",
        "The paper's comparisons: loss, CBAM, pooling, AestheticNet against AestheticNet*",
        "benchmarks/experiments.py --experiment all --seeds 3",
    ),
    Page(
        "latency_search.json",
        "benchmarks/latency_search.py",
        "latency-search.md",
        "A latency-aware search and what its genotype costs in accuracy",
        "benchmarks/latency_search.py --table T.json --weights 2 --seeds 0,1,2 (T: this machine's ONNX Runtime table)",
    ),
    Page(
        "phone_latency.json",
        "benchmarks/phone_latency.py",
        "phone-latency.md",
        "The default AestheticNet* against NIMA-MobileNetV2: latency side by side",
        "benchmarks/phone_latency.py --threads 1,2 --rounds 4",
    ),
    Page(
        "accuracy_latency.json",
        "benchmarks/accuracy_latency.py",
        "accuracy-latency.md",
        "Accuracy against latency: AestheticNet beside NIMA-MobileNetV2 at three widths",
        "benchmarks/accuracy_latency.py --data runs/pool/data --preset demo --seeds 0,1,2 --epochs 3 --crop 128 "
        "--monitor-val-items 128 --latency-genotype LATENCY_EPYC_W2 (trained by two --train-only processes with "
        "disjoint --rows or seeds, one per core; then the same command with --fresh-latency measured the latency on "
        "the idle machine)",
    ),
    Page(
        "latency_matrix.json",
        "benchmarks/latency_matrix.py",
        "latency-matrix.md",
        "Latency matrix: AestheticNet, AestheticNet* and the DARTS cells in every runtime and precision",
        "benchmarks/latency_matrix.py --quick",
    ),
)


@functools.cache  # a script renders several JSON files: load it once
def _script(script: str):
    spec = importlib.util.spec_from_file_location(Path(script).stem, ROOT / script)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # a script's dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def _script_markdown(script: str):
    return _script(script).markdown


def _drawing_pages() -> list[Page]:
    return [page for page in PAGES if hasattr(_script(page.script), "write_plot")]


def figure_paths() -> list[Path]:
    """Where each drawing page's figure goes: ``docs/results/<json name>.png``."""
    return [ROOT / "docs" / "results" / f"{Path(page.json).stem}.png" for page in _drawing_pages()]


def plots() -> list[Path]:
    """The figures of the pages whose script draws one (``write_plot(result, folder)``), drawn from the JSON. PNG
    bytes vary with the plotting library, so ``--check`` asks only that each exists."""
    drawn = []
    for page, path in zip(_drawing_pages(), figure_paths()):
        result = _result(page.json)
        drawn.append(_script(page.script).write_plot(result, path.parent))
        if drawn[-1] != path:
            raise SystemExit(f"{page.script}: write_plot wrote {drawn[-1]}, expected {path}")
    return drawn


def _result(name: str) -> dict:
    """A benchmark's JSON output, as copied into results/."""
    return json.loads((ROOT / "results" / name).read_text())


def _machine(result: dict, cores: bool = True) -> str:
    here = [v for k, v in (result.get("machine_details") or {}).items() if k.endswith("(this machine)")]
    m = result.get("machine") or (here[0] if here else {})
    if not m:
        return "not recorded in the JSON (a run before the scripts recorded it)"
    count = f", {m['logical_cores']} cores" if cores and m.get("logical_cores") else ""
    return f"{m.get('cpu_model')} ({m.get('machine')}){count}, {m.get('os')}"


def render_page(page: Page) -> str:
    result = _result(page.json)
    header = [
        f"# {page.title}",
        "",
        (
            f"Rendered by `scripts/render_results.py` from `results/{page.json}`, the output of `{page.command}`; "
            f"machine: {_machine(result)}. Do not edit: run the benchmark, copy its JSON here and render again."
        ),
        "",
    ]
    return "\n".join(header) + "\n" + _script_markdown(page.script)(result).rstrip() + "\n"


def _int8_ratio(rows: list[dict], artifact: str) -> str:
    ratios = [r["vs_own_fp32"] for r in rows if r["artifact"] == artifact and r["threads"] == 1]
    if not ratios:
        return "-"
    low, high = f"{min(ratios):.2f}", f"{max(ratios):.2f}"
    return f"{low}x" if low == high else f"{low}-{high}x"


def _ranking_lines() -> list[str]:
    """The default network's accuracy over seeds, and its ladders next to BRISQUE's on the same photos."""
    pool = _result("train_pool_default.json")["summary"]
    rows = _result("ladders_default.json")["rows"]

    def spread(values: list[float]) -> str:
        return f"{statistics.mean(values):.2f} ± {statistics.pstdev(values):.2f}"

    ours = [r["report"]["mean"] for r in rows if not r["name"].startswith("BRISQUE")]
    brisque = [r["report"]["mean"] for r in rows if r["name"].startswith("BRISQUE")]
    demo = _result("demo_seeds.json")
    shipped = [r["variants"]["aestheticnet_star"]["metrics"]["srocc"] for r in demo["runs"]]
    unseen = {r["name"]: r["report"] for r in demo["pool_ladders"]["rows"]}
    demo_ladders = [unseen[f"aestheticnet_star_seed{r['seed']}"] for r in demo["runs"]]
    weakest = min(min(report["per_ladder"].values()) for report in demo_ladders)
    return [
        "| photos never trained on, over seeds | validation SROCC | ladder rho (1 = ranks every distortion) |",
        "|---|---:|---:|",
        f"| default AestheticNet*, {len(ours)} seeds | {spread(pool['srocc']['values'])} | {spread(ours)} |",
        f"| BRISQUE (2012), the same photos | - | {spread(brisque)} |",
        (
            f"| `make demo`'s AestheticNet*, {len(shipped)} seeds (SROCC: its 3 validation photos; ladders: "
            f"{demo_ladders[0]['photos']} crops of the pool's wallpapers; weakest ladder {weakest:.2f}) "
            f"| {spread(shipped)} | {spread([report['mean'] for report in demo_ladders])} |"
        ),
        f"| BRISQUE (2012), the same wallpapers | - | {unseen['BRISQUE']['mean']:.2f} |",
        "",
    ]


def _tradeoff_lines() -> list[str]:
    """Accuracy and latency of every row of the comparison, as multiples of NIMA-MobileNetV2 1.0, and the plot."""
    result = _result("accuracy_latency.json")
    lines = [
        (
            f"| trained alike on the photo pool ({result['preset']} size), {len(result['rows'][0]['seeds'])} seeds "
            "| SROCC | ladder rho | latency / NIMA-MobileNetV2 1.0: ONNX Runtime fp32, 1 thread | LiteRT fp32 |"
        ),
        "|---|---:|---:|---:|---:|",
    ]
    for row in result["rows"]:
        acc, lat = row["accuracy"], row.get("latency", {})
        ratios = [
            f"{lat[k]['ratio']:.2f}x" if lat.get(k, {}).get("ratio") else "-"
            for k in ("onnxruntime fp32", "litert fp32")
        ]
        lines.append(
            f"| {row['name']} | {acc['srocc']['mean']:.3f} ± {acc['srocc']['std']:.3f} | "
            f"{acc['ladder']['mean']:.2f} ± {acc['ladder']['std']:.2f} | " + " | ".join(ratios) + " |"
        )
    return [*lines, "", "![accuracy against latency](docs/results/accuracy_latency.png)", ""]


def readme_table() -> str:
    runtimes = _result("phone_runtimes.json")
    parity = _result("parity_by_isa.json")
    lines = [
        BEGIN,
        *_ranking_lines(),
        *_tradeoff_lines(),
        "| model | int8 / fp32, 1 thread: ONNX Runtime | LiteRT | ExecuTorch | files passing verify |",
        "|---|---:|---:|---:|---|",
    ]
    for name, model in runtimes["models"].items():
        rows = model["rows"]
        ratios = [_int8_ratio(rows, f"{fmt} int8") for fmt in ("onnx", "tflite", "executorch")]
        passed = sum(v.get("passed", False) for v in model["verify"].values())
        lines.append(f"| {name} | " + " | ".join(ratios) + f" | {passed} of {len(model['verify'])} |")
    machines = parity["machines"]
    ok = {m: sum(row["results"][m]["passed"] for row in parity["rows"]) for m in machines}
    lines += ["", "Parity by ISA: " + "; ".join(f"{m}: {n} of {len(parity['rows'])} files pass" for m, n in ok.items())]
    sources = {
        "train_pool_default.json": "benchmarks/train_pool.py",
        "ladders_default.json": "benchmarks/ladders.py",
        "accuracy_latency.json": "benchmarks/accuracy_latency.py",
        "phone_runtimes.json": "benchmarks/phone_runtimes.py",
        "parity_by_isa.json": "benchmarks/parity_by_isa.py",
    }
    # Some JSON record the core count and some do not: the README names each machine once.
    machines = sorted({_machine(_result(name), cores=False) for name in sources})
    lines += [
        "",
        f"From `{'`, `'.join(sources.values())}`; machine: {'; '.join(machines)}. "
        "(Pages: [docs/results](docs/results/index.md).)",
        END,
    ]
    return "\n".join(lines)


def expected_files() -> dict[Path, str]:
    files = {ROOT / "docs" / "results" / p.page: render_page(p) for p in PAGES}
    text = README.read_text()
    if BEGIN not in text or END not in text:
        raise SystemExit(f"{README}: no results markers ({BEGIN} ... {END})")
    before, rest = text.split(BEGIN, 1)
    files[README] = before + readme_table() + rest.split(END, 1)[1]
    return files


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--check", action="store_true", help="change nothing; exit 1 when a rendered file is stale")
    args = ap.parse_args()
    stale = []
    for path, text in expected_files().items():
        if not path.exists() or path.read_text() != text:
            stale.append(path)
            if not args.check:
                path.write_text(text)
    if args.check:
        stale += [p for p in figure_paths() if not p.exists()]
    else:
        for path in plots():
            print(f"drew {path.relative_to(ROOT)}")
    if args.check and stale:
        names = ", ".join(str(p.relative_to(ROOT)) for p in stale)
        print(f"stale, not rendered from results/*.json: {names}; run scripts/render_results.py", file=sys.stderr)
        return 1
    for path in stale:
        print(f"rendered {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
