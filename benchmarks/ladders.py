"""Do models rank quality on photos they never saw? Quality ladders scored by any model, artifact and by BRISQUE.

    .venv/bin/python benchmarks/ladders.py --data runs/pool/data --photos user \\
        --model demo=demo_out/train/aestheticnet_star/last.safetensors --brisque --out runs/ladders/demo

For every source photo chosen by ``--photos`` (the pristine crops of a synthetic dataset, ``groups.csv``), four
ladders of five rungs (:mod:`aestheticnet.data.ladders`: blur, JPEG, noise, down-and-up resampling; rung 0 the
pristine crop) are written as PNGs and scored through ``Scorer`` by every ``--model NAME=PATH`` (a checkpoint or
an exported artifact). The figure is Spearman's rho between rung and predicted mean score, sign flipped (1 = more
distortion scored lower), per ladder averaged over photos, and the mean of the four.

``--photos``: ``user`` the dataset's non-built-in photos (none of them is in the demo's training data), ``val``
the validation photos of ``--split-of CKPT`` (the split that checkpoint was trained with), ``own`` each model's own
validation photos (models trained with different seeds were split differently), ``all`` every photo.

``--brisque`` adds BRISQUE (the ``brisque`` package 0.2.0 with OpenCV; with ``--photos own``, once on each model's
photos) as a reference, run in its own virtual environment (``--brisque-venv``, made on first use from the package
index; not a dependency of aestheticnet).

Writes ``ladders.json`` and ``ladders.md`` in ``--out`` and prints both.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from aestheticnet.bench import save_result
from aestheticnet.data import LADDERS, PHOTOS, LadderSet, ladder_report, reference_sources, write_ladders
from aestheticnet.pipeline import score_ladders, validation_sources

BRISQUE_PACKAGES = ["brisque==0.2.0", "opencv-python-headless", "scikit-image", "numpy", "scipy", "pillow"]


def _named(text: str) -> tuple[str, Path]:
    name, sep, path = text.partition("=")
    if not sep or not name or not Path(path).exists():
        raise argparse.ArgumentTypeError(f"--model {text!r}: expected NAME=PATH to an existing model file")
    return name, Path(path)


def photo_sets(args) -> list[tuple[str, dict, list[tuple[str, Path]]]]:
    """(label, source crops, the models scored on them): one set, or one per model with ``--photos own``."""
    if args.photos == "own":
        return [(name, validation_sources(path, str(args.data)), [(name, path)]) for name, path in args.model]
    if args.photos == "user":
        return [("", reference_sources(args.data, exclude_photos=set(PHOTOS)), args.model)]
    if args.photos == "val":
        if args.split_of is None:
            sys.exit("--photos val needs --split-of CKPT (the checkpoint whose validation split to use)")
        return [("", validation_sources(args.split_of, str(args.data)), args.model)]
    return [("", reference_sources(args.data), args.model)]


def score_set(label: str, crops: dict, models: list[tuple[str, Path]], args) -> list[dict]:
    ladders = write_ladders(crops, args.out / "images" / (label or "photos"), seed=args.seed)
    rows = []
    for name, path in models:
        t0 = time.perf_counter()
        rep = score_ladders(path, ladders, args.threads)
        rows.append({"name": name, "path": str(path), "seconds": round(time.perf_counter() - t0, 1), "report": rep})
    if args.brisque:
        t0 = time.perf_counter()
        rep = ladder_report(ladders, brisque_scores(ladders, args.brisque_venv))
        name = f"BRISQUE on {label}'s photos" if label else "BRISQUE"
        rows.append(
            {"name": name, "path": "brisque 0.2.0", "seconds": round(time.perf_counter() - t0, 1), "report": rep}
        )
    return rows


def brisque_scores(ladders: LadderSet, venv: Path) -> dict[str, float]:
    python = venv / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "--quiet", *BRISQUE_PACKAGES], check=True)
    with tempfile.TemporaryDirectory() as tmp:
        paths = [str(p) for p in ladders.paths()]
        (Path(tmp) / "paths.json").write_text(json.dumps(paths))
        helper = Path(__file__).with_name("brisque_scores.py")
        subprocess.run([str(python), str(helper), f"{tmp}/paths.json", f"{tmp}/scores.json"], check=True)
        raw = json.loads((Path(tmp) / "scores.json").read_text())
    # BRISQUE is lower-is-better: its negation orders like a quality score.
    return {image.path: -raw[str(p)] for image, p in zip(ladders.images, ladders.paths())}


def markdown(result: dict) -> str:
    rows, names = result["rows"], list(LADDERS)
    lines = ["| model | " + " | ".join(names) + " | mean | pristine crops |", "|---|" + "---:|" * (len(names) + 2)]
    for row in rows:
        rep = row["report"]
        cells = [f"{rep['per_ladder'].get(n, float('nan')):.2f}" for n in names]
        lines.append(f"| {row['name']} | " + " | ".join(cells) + f" | **{rep['mean']:.2f}** | {rep['photos']} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, required=True, help="a synthetic dataset (aestheticnet data synth)")
    ap.add_argument("--model", type=_named, action="append", default=[], metavar="NAME=PATH")
    ap.add_argument("--photos", choices=("user", "val", "own", "all"), default="user")
    ap.add_argument("--split-of", type=Path, default=None, metavar="CKPT")
    ap.add_argument("--brisque", action="store_true")
    ap.add_argument("--brisque-venv", type=Path, default=Path.home() / ".cache/aestheticnet/brisque-venv")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0, help="seed of the noise ladders' fields")
    ap.add_argument("--out", type=Path, default=Path("runs/ladders"))
    args = ap.parse_args()
    if not args.model and not args.brisque:
        ap.error("give at least one --model NAME=PATH or --brisque")

    if args.photos == "own" and not args.model:
        ap.error("--photos own scores each --model on its own validation photos: give at least one --model")
    rows = [row for label, crops, models in photo_sets(args) for row in score_set(label, crops, models, args)]
    result = {
        "data": str(args.data),
        "photos": args.photos,
        "split_of": str(args.split_of or ""),
        "ladders": {n: {"strengths": list(l.strengths), "unit": l.unit} for n, l in LADDERS.items()},
        "rows": rows,
    }
    text = save_result(result, args.out, "ladders", markdown)
    print(
        json.dumps(
            [{"name": r["name"], **{k: r["report"][k] for k in ("per_ladder", "mean", "photos")}} for r in rows],
            indent=1,
        )
    )
    print(text)


if __name__ == "__main__":
    main()
