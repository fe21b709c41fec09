"""Time a full default build of the synthetic dataset (target: < 60 s on 2 cores).

    python benchmarks/synth_speed.py [--workers 2] [--seed 0]

Builds into a temporary directory (force=True, so the cache never answers) and prints
image count, per-image vote spread, wall time and throughput.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from aestheticnet.data import build_synthetic


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        info = build_synthetic(Path(tmp) / "synth", seed=args.seed, workers=args.workers, force=True, progress=False)
        wall = time.perf_counter() - t0
    print(
        f"{info.n_images} images ({info.n_references} references, {info.n_distorted} distorted) "
        f"in {wall:.1f} s with {args.workers} workers = {info.n_images / wall:.0f} img/s; "
        f"mean per-image vote std {info.mean_vote_std:.3f}; digest {info.digest[:12]}"
    )


if __name__ == "__main__":
    main()
