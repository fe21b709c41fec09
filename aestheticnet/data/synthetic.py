"""Synthetic default dataset: lets a newcomer run the whole pipeline with no download.

Crops of the free photos that ship inside the scikit-image wheel are distorted by 10
parametric distortions x ``levels`` severities (:mod:`aestheticnet.data.distortions`),
scored with a full-reference SSIM/PSNR score and turned into AVA-like vote histograms by
simulated raters (:mod:`aestheticnet.data.raters`, whose docstring gives the formulas).
The result is written both in the TID2013 layout and as an AVA-style txt, so the real
loaders read it unchanged.  The labels are synthetic; ``README.txt`` in the output says so.

Pixel identity: every image is stored once as a quality-95 4:4:4 JPEG (``images/<id>.jpg``,
what the AVA loader reads); the TID PNGs hold exactly the decoded pixels of that JPEG, and
labels are computed from those decoded pixels against the pristine crop.  Both loaders
therefore see the very pixels each label was computed from.  (TID reference images are
the pristine crops, as in TID2013; they carry no TID label.)

Builds are deterministic (same config and library versions -> byte-identical files; the
``digest`` covers them), go to a temporary sibling directory renamed into place at the
end, and finish by writing ``COMPLETE`` holding the config hash: a directory with a
matching marker is reused as is.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import multiprocessing
import os
import shutil
import time
import uuid
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from aestheticnet.data import distortions, raters, synthetic_render
from aestheticnet.data.distortions import PHOTOS

GENERATOR_VERSION = 2  # bump when output for a given config changes; invalidates caches
MARKER = "COMPLETE"
CONFIG_FILE = "synth_config.json"


@dataclass(frozen=True)
class SynthConfig:
    """Every knob that changes the output; its hash keys the cache."""

    seed: int = 0
    photos: tuple[str, ...] = tuple(PHOTOS)
    # 13 photos x 2 crops = 26 references; with 10 types x 5 levels (9 for grey) that is
    # 1,240 distorted images + 26 references = 1,266, the nearest crop count to ~1,000.
    n_crops_per_photo: int = 2
    size: tuple[int, int] = (256, 192)  # (width, height), TID2013's 4:3 aspect
    levels: int = 5
    distortions: tuple[str, ...] = tuple(distortions.DISTORTIONS)
    crop_scale: tuple[float, float] = (0.45, 1.0)  # crop side / largest 4:3 side of the photo
    ssim_weight: float = 0.7
    psnr_range: tuple[float, float] = (10.0, 40.0)
    ref_quality: float = 8.0
    ref_spread: float = 0.3
    q_floor: float = 0.2
    gamma: float = 1.0
    n_raters: int = 1000
    bias_sd: float = 0.7
    noise_sd: float = 1.1
    votes_median: float = 210.0
    votes_log_sd: float = 0.45
    votes_range: tuple[int, int] = (78, 549)
    storage_jpeg_quality: int = 95
    tid_ext: str = "png"

    def validate(self) -> None:
        unknown = [p for p in self.photos if p not in PHOTOS]
        unknown += [d for d in self.distortions if d not in distortions.DISTORTIONS]
        if unknown:
            raise ValueError(f"unknown photos/distortions: {unknown}")
        if not self.photos or not self.distortions or self.n_crops_per_photo < 1 or self.levels < 1:
            raise ValueError("need at least one photo, crop, distortion and level")
        if self.votes_range[1] > self.n_raters or not 1 <= self.votes_range[0] <= self.votes_range[1]:
            raise ValueError(f"votes_range {self.votes_range} must fit in 1..n_raters={self.n_raters}")
        if self.tid_ext not in ("png", "bmp"):
            raise ValueError("tid_ext must be 'png' or 'bmp' (lossless)")
        if self.size[0] < 16 or self.size[1] < 16:
            raise ValueError(f"size {self.size} too small for SSIM's 7x7 window and the distortions")

    def to_json(self) -> dict:
        return {"generator_version": GENERATOR_VERSION, **dataclasses.asdict(self)}

    def digest(self) -> str:
        blob = json.dumps(self.to_json(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()


@dataclass(frozen=True)
class SynthInfo:
    path: Path
    config: SynthConfig
    config_hash: str
    n_images: int  # rows of AVA.txt: references + distorted
    n_references: int
    n_distorted: int  # rows of mos_with_names.txt
    mean_vote_std: float  # mean over images of the per-image std of votes (AVA ~1.4)
    build_seconds: float  # of the build that produced the files (not of a cache hit)
    digest: str  # sha256 over every data file, names included
    reused: bool  # True when an existing complete build was returned


def default_synthetic_dir(seed: int = 0) -> Path:
    """Cache location: ``$AESTHETICNET_CACHE/synthetic-v<GENERATOR_VERSION>/seed<seed>`` (else ~/.cache/aestheticnet)."""
    root = os.environ.get("AESTHETICNET_CACHE")
    if root:
        base = Path(root)
    else:
        base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "aestheticnet"
    return base / f"synthetic-v{GENERATOR_VERSION}" / f"seed{seed}"


def ensure_synthetic(out_dir: str | os.PathLike | None = None, seed: int = 0, *,
                     workers: int = 2, progress: bool = True) -> Path:
    """Build the default synthetic dataset unless a complete one is already there; return its path."""
    path = Path(out_dir) if out_dir is not None else default_synthetic_dir(seed)
    return build_synthetic(path, seed=seed, workers=workers, progress=progress).path


def build_synthetic(out_dir: str | os.PathLike, seed: int = 0, n_crops_per_photo: int = 2,
                    size: tuple[int, int] = (256, 192), levels: int = 5, workers: int = 2,
                    force: bool = False, *, progress: bool = True, **knobs) -> SynthInfo:
    """Build (or reuse) the synthetic dataset in ``out_dir``.

    ``knobs`` are any other :class:`SynthConfig` fields (``photos=``, ``distortions=``, ...).
    ``workers`` processes share the work; the output does not depend on it.
    """
    config = SynthConfig(seed=seed, n_crops_per_photo=n_crops_per_photo, size=tuple(size),
                         levels=levels, **knobs)
    return build_from_config(out_dir, config, workers=workers, force=force, progress=progress)


def read_info(out_dir: str | os.PathLike) -> SynthInfo | None:
    """Info of the complete build in ``out_dir``, or None when there is none."""
    path = Path(out_dir)
    try:
        meta = json.loads((path / MARKER).read_text())
        cfg = json.loads((path / CONFIG_FILE).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(meta, dict) or not isinstance(cfg, dict):
        return None
    cfg.pop("generator_version", None)
    try:
        config = SynthConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in cfg.items()})
        if config.digest() != meta.get("config_hash"):
            return None
        return SynthInfo(path=path, config=config, config_hash=meta["config_hash"],
                         n_images=meta["n_images"], n_references=meta["n_references"],
                         n_distorted=meta["n_distorted"], mean_vote_std=meta["mean_vote_std"],
                         build_seconds=meta["build_seconds"], digest=meta["digest"], reused=True)
    except (TypeError, KeyError):
        return None  # another generator version, or a damaged marker: not reusable


def build_from_config(out_dir: str | os.PathLike, config: SynthConfig, *, workers: int = 2,
                      force: bool = False, progress: bool = True) -> SynthInfo:
    """Like :func:`build_synthetic` with an explicit config; ``force`` rebuilds a matching cache."""
    config.validate()
    out = Path(out_dir).absolute()
    chash = config.digest()
    existing = read_info(out)
    if existing is not None and existing.config_hash == chash and not force:
        return existing
    if out.exists() and (not out.is_dir() or any(out.iterdir())) and not _looks_ours(out):
        # Never delete a directory we did not write, whatever `force` says.
        raise FileExistsError(f"{out} exists and is not a synthetic dataset; choose another directory")

    start = time.perf_counter()
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    try:
        for sub in ("reference_images", "distorted_images", "images"):
            (tmp / sub).mkdir()
        rows, file_hashes = _render_all(tmp, config, workers, progress)
        file_hashes.update(_write_tables(tmp, config, rows))
        digest = hashlib.sha256("".join(f"{p}\t{h}\n" for p, h in sorted(file_hashes.items()))
                                .encode()).hexdigest()
        n_ref = sum(r["distortion"] == "reference" for r in rows)
        meta = {"config_hash": chash, "digest": digest, "n_images": len(rows), "n_references": n_ref,
                "n_distorted": len(rows) - n_ref,
                "mean_vote_std": float(np.mean([r["std"] for r in rows])),
                "build_seconds": round(time.perf_counter() - start, 3)}
        # Written last: its presence (with a matching hash) is what "complete" means.
        (tmp / MARKER).write_text(json.dumps(meta, indent=1) + "\n")
        _swap_into_place(tmp, out, chash)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    info = read_info(out)
    if info is None:
        raise RuntimeError(f"synthetic build in {out} did not complete")
    return dataclasses.replace(info, reused=False)


def _looks_ours(path: Path) -> bool:
    return (path / CONFIG_FILE).is_file() or (path / MARKER).is_file()


def _swap_into_place(tmp: Path, out: Path, chash: str) -> None:
    old = None
    if out.exists():
        old = out.parent / f".{out.name}.old-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        os.rename(out, old)
    try:
        os.rename(tmp, out)
    except OSError:
        # Another process may have finished the same build meanwhile; theirs is as good.
        done = read_info(out)
        if done is None or done.config_hash != chash:
            raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _jobs(config: SynthConfig, root: Path) -> list[dict]:
    jobs, next_id, ref = [], 1, 0
    for name in config.photos:
        grey = PHOTOS[name][1]
        types = [d for d in config.distortions if not (grey and distortions.DISTORTIONS[d].colour_only)]
        for crop in range(config.n_crops_per_photo):
            ref += 1
            n = 1 + len(types) * config.levels
            jobs.append({"config": config, "root": str(root), "photo": name, "crop": crop,
                         "ref": ref, "first_id": next_id, "types": types, "n": n})
            next_id += n
    return jobs


def _render_all(tmp: Path, config: SynthConfig, workers: int, progress: bool):
    jobs = _jobs(config, tmp)
    rows, hashes = [], {}
    bar = tqdm(total=sum(j["n"] for j in jobs), desc="synthetic dataset", unit="img",
               disable=not progress)
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
            with ProcessPoolExecutor(max_workers=min(workers, len(jobs)), mp_context=ctx) as ex:
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


def _write_tables(root: Path, config: SynthConfig, rows: list[dict]) -> dict:
    texts = {}
    # The challenge column carries the source photo (1-based, in config order), so AVA's group_by="challenge"
    # splits by photo: crops and distortions of one photo never straddle train and validation.
    photo_index = {name: k for k, name in enumerate(config.photos, 1)}
    texts["AVA.txt"] = "".join(
        f"{i} {r['image_id']} {' '.join(map(str, r['hist']))} 0 0 {photo_index[r['photo']]}\n"
        for i, r in enumerate(rows, 1))
    dist = [r for r in rows if r["distortion"] != "reference"]  # TID2013 lists distorted images only
    texts["mos_with_names.txt"] = "".join(f"{r['mean'] - 1:.5f} {Path(r['tid_file']).name}\n" for r in dist)
    # As in TID2013, mos_std is the uncertainty of the mean, not the raters' spread (groups.csv has that).
    texts["mos_std.txt"] = "".join(f"{r['std'] / np.sqrt(r['n_votes']):.5f}\n" for r in dist)
    cols = ["image_id", "photo", "ref_id", "crop", "distortion", "type", "level", "strength",
            "fr_quality", "ssim", "psnr", "latent", "n_votes", "mean", "std", "ava_file", "tid_file"]
    lines = [",".join(cols)]
    for r in rows:
        lines.append(",".join(f"{r[c]:.6g}" if isinstance(r[c], float) else str(r[c]) for c in cols))
    texts["groups.csv"] = "\n".join(lines) + "\n"
    texts[CONFIG_FILE] = json.dumps(config.to_json(), indent=1, sort_keys=True) + "\n"
    texts["README.txt"] = _readme(config, len(rows), len(dist))
    hashes = {}
    for name, text in texts.items():
        data = text.encode()
        (root / name).write_bytes(data)
        hashes[name] = hashlib.sha256(data).hexdigest()
    return hashes


def _readme(config: SynthConfig, n_images: int, n_distorted: int) -> str:
    import textwrap

    licences = "\n".join(f"  {p:<22}{PHOTOS[p][2]}" for p in config.photos)
    return f"""\
SYNTHETIC DATASET - THE LABELS ARE SYNTHETIC, NOT HUMAN OPINIONS.

Made by aestheticnet.data.synthetic (generator v{GENERATOR_VERSION}) so the pipeline can run
without downloading AVA or TID2013. No person rated these images: every vote was simulated
from a full-reference quality score. Do not report results on it as aesthetic or quality
benchmarks. Exact knobs: {CONFIG_FILE}.

{n_images} images = {n_images - n_distorted} reference crops ({config.size[0]}x{config.size[1]}) of
{len(config.photos)} photos x {config.n_crops_per_photo} crop(s) + {n_distorted} distorted versions:
{", ".join(config.distortions)} (saturation on colour photos only) x {config.levels} levels,
each distortion monotone in its level (higher level = stronger = lower quality).

How the labels were made
{textwrap.indent(textwrap.dedent(raters.__doc__.split(chr(10), 2)[2]).strip(), "  ")}

Files
  AVA.txt              AVA layout: index, image id, votes for scores 1..10, tag, tag, challenge (= source photo index, for splits by photo)
  images/<id>.jpg      every image, JPEG quality {config.storage_jpeg_quality} 4:4:4; labels were
                       computed from these decoded pixels
  reference_images/    TID2013 layout: pristine crops Ixx.{config.tid_ext}
  distorted_images/    ixx_tt_l.{config.tid_ext} (reference, type, level) = decoded pixels of images/<id>.jpg
  mos_with_names.txt   "MOS filename", MOS = mean vote - 1 (0..9), distorted images only
  mos_std.txt          standard error of that mean (std / sqrt(votes)), as in TID2013
  groups.csv           per image: photo (split on this: crops of one photo overlap), ref, type,
                       level, FR score, latent quality, votes, mean, std, both file names
  COMPLETE             written last; a build without it is incomplete

Source photos (shipped inside the scikit-image wheel; licences as stated by scikit-image):
{licences}
"""
