"""The work of a synthetic build: one job per reference crop, rendered here or in a pool of spawned processes.

A job is a picklable dict (it reaches spawned worker processes) that :func:`synthetic_render.render_reference`
turns into the reference's rows and file digests; the output does not depend on the number of workers.
"""

from __future__ import annotations

import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

import numpy as np
from tqdm import tqdm

from aestheticnet.data import distortions, synthetic_render
from aestheticnet.data.distortions import PHOTOS
from aestheticnet.data.synthetic_config import SynthConfig
from aestheticnet.lifetime import bind_to_parent

__all__ = ["plan_jobs", "render_all"]


def plan_jobs(config: SynthConfig, root: Path, crops: dict[str, tuple[np.ndarray, ...]]) -> list[dict]:
    """One job per reference crop, numbered in order: references ``ref`` 1.. and image ids from 1, consecutive."""
    # (name, grey, random key, crops or None to crop in the worker), built-in photos first.
    sources = [(name, PHOTOS[name][1], synthetic_render.builtin_key(name), None) for name in config.photos]
    sources += [(p.name, p.grey, synthetic_render.user_key(p.sha256), crops[p.name]) for p in config.user_photos]
    jobs, next_id, ref = [], 1, 0
    for name, grey, key, pristine in sources:
        types = [d for d in config.distortions if not (grey and distortions.DISTORTIONS[d].colour_only)]
        for crop in range(config.n_crops_per_photo):
            ref += 1
            n = 1 + len(types) * config.levels
            jobs.append(
                {
                    "config": config,
                    "root": str(root),
                    "photo": name,
                    "key": key,
                    "crop": crop,
                    "pristine": None if pristine is None else pristine[crop],
                    "ref": ref,
                    "first_id": next_id,
                    "types": types,
                    "n": n,
                }
            )
            next_id += n
    return jobs


def render_all(
    root: Path, config: SynthConfig, crops: dict[str, tuple[np.ndarray, ...]], workers: int, progress: bool
) -> tuple[list[dict], dict[str, str]]:
    """Render every job into ``root``: the rows of all images in id order, and the sha256 of every image file."""
    jobs = plan_jobs(config, root, crops)
    rows, hashes = [], {}
    bar = tqdm(total=sum(j["n"] for j in jobs), desc="synthetic dataset", unit="img", disable=not progress)
    try:
        if workers <= 1 or len(jobs) == 1:
            results = (synthetic_render.render_reference(j) for j in jobs)
            for r_rows, r_hashes in results:
                rows += r_rows
                hashes.update(r_hashes)
                bar.update(len(r_rows))
        else:
            # spawn, not fork: the caller may hold torch/OpenMP threads that fork would break.
            ctx = multiprocessing.get_context("spawn")
            pool = ProcessPoolExecutor(
                max_workers=min(workers, len(jobs)),
                mp_context=ctx,
                initializer=bind_to_parent,
                initargs=(os.getpid(),),
            )
            with pool as ex:
                try:
                    for fut in as_completed([ex.submit(synthetic_render.render_reference, j) for j in jobs]):
                        r_rows, r_hashes = fut.result()
                        rows += r_rows
                        hashes.update(r_hashes)
                        bar.update(len(r_rows))
                except BaseException:
                    # Fail fast: don't let the pool finish the remaining references first.
                    ex.shutdown(wait=True, cancel_futures=True)
                    raise
    finally:
        bar.close()
    rows.sort(key=lambda r: r["image_id"])
    return rows, hashes
