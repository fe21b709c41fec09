"""Time a full default build of the synthetic dataset (target: < 60 s on 2 cores).

    python benchmarks/synth_speed.py [--workers 2] [--seed 0] [--rounds 3] [--out runs/synth_speed]

Builds into a temporary directory (force=True, so the cache never answers) ``--rounds`` times and reports the
image count, per-image vote spread, each build's wall time, the median and the throughput. Writes
``synth_speed.json`` and ``synth_speed.md`` in ``--out`` and prints the Markdown.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from aestheticnet.bench import save_result
from aestheticnet.data import build_synthetic


def markdown(result: dict) -> str:
    median = statistics.median(result["seconds"])
    return (
        f"{result['images']} images ({result['references']} references, {result['distorted']} distorted), "
        f"{result['workers']} workers: {median:.1f} s, the median of {len(result['seconds'])} builds "
        f"({', '.join(f'{s:.1f}' for s in result['seconds'])} s), {result['images'] / median:.0f} images/s; mean "
        f"per-image vote std {result['mean_vote_std']:.3f}; digest {result['digest'][:12]}.\n"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--out", type=Path, default=Path("runs/synth_speed"))
    args = ap.parse_args()
    seconds = []
    for _ in range(args.rounds):
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            info = build_synthetic(
                Path(tmp) / "synth", seed=args.seed, workers=args.workers, force=True, progress=False
            )
            seconds.append(round(time.perf_counter() - t0, 2))
    result = {
        "images": info.n_images,
        "references": info.n_references,
        "distorted": info.n_distorted,
        "workers": args.workers,
        "seed": args.seed,
        "seconds": seconds,
        "mean_vote_std": info.mean_vote_std,
        "digest": info.digest,
    }
    print(save_result(result, args.out, "synth_speed", markdown))


if __name__ == "__main__":
    main()
