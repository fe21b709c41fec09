"""Synthetic default dataset: lets a newcomer run the whole pipeline with no download.

Crops of the free photos that ship inside the scikit-image wheel (and/or of the user's own photos,
:func:`build_from_photos`) are distorted by 10
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

import csv
import dataclasses
import hashlib
import io
import json
import multiprocessing
import os
import shutil
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from aestheticnet.data import distortions, synthetic_readme, synthetic_render
from aestheticnet.data.distortions import PHOTOS
from aestheticnet.data.user_photos import MIN_PHOTOS, PhotoScan, SourcePhoto, check_enough, scan_photos
from aestheticnet.lifetime import bind_to_parent, remove_stale, temp_name

GENERATOR_VERSION = 3  # bump when output for a given config changes; invalidates caches
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
    # Share of the label that follows the distortion level whatever the content (raters.with_severity says why).
    severity_weight: float = 0.5
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
    # The user's own photos (after the built-in ``photos``); their digests key the cache like every other field.
    user_photos: tuple[SourcePhoto, ...] = ()

    @property
    def photo_names(self) -> tuple[str, ...]:
        """Every source photo, built-in first, in the order of the AVA challenge column (1-based)."""
        return self.photos + tuple(p.name for p in self.user_photos)

    def validate(self) -> None:
        unknown = [p for p in self.photos if p not in PHOTOS]
        unknown += [d for d in self.distortions if d not in distortions.DISTORTIONS]
        if unknown:
            raise ValueError(f"unknown photos/distortions: {unknown}")
        if len(set(self.photo_names)) != len(self.photo_names):
            raise ValueError(f"photo names must be unique: {self.photo_names}")
        if len(self.photo_names) < MIN_PHOTOS:
            raise ValueError(f"need at least {MIN_PHOTOS} photos: the dataset is split by source photo")
        if not self.distortions or self.n_crops_per_photo < 1 or self.levels < 1:
            raise ValueError("need at least one crop, distortion and level")
        if self.votes_range[1] > self.n_raters or not 1 <= self.votes_range[0] <= self.votes_range[1]:
            raise ValueError(f"votes_range {self.votes_range} must fit in 1..n_raters={self.n_raters}")
        if not 0.0 <= self.severity_weight <= 1.0:
            raise ValueError(f"severity_weight {self.severity_weight} must be in [0, 1]")
        if self.tid_ext not in ("png", "bmp"):
            raise ValueError("tid_ext must be 'png' or 'bmp' (lossless)")
        if self.size[0] < 16 or self.size[1] < 16:
            raise ValueError(f"size {self.size} too small for SSIM's 7x7 window and the distortions")

    def to_json(self) -> dict:
        return {"generator_version": GENERATOR_VERSION, **dataclasses.asdict(self)}

    @classmethod
    def from_json(cls, data: dict) -> "SynthConfig":
        """Inverse of :meth:`to_json` (JSON lists back to tuples); TypeError/KeyError on another layout."""
        fields = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items() if k != "generator_version"}
        fields["user_photos"] = tuple(SourcePhoto(**p) for p in fields.get("user_photos", ()))
        return cls(**fields)

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


def default_synthetic_dir(seed: int = 0, photo_set: str | None = None) -> Path:
    """Cache location: ``$AESTHETICNET_CACHE/synthetic-v<GENERATOR_VERSION>/seed<seed>`` (else ~/.cache/aestheticnet).

    ``photo_set`` (see :func:`photo_set_id`) puts a build from the user's photos in ``photos-<id>/seed<seed>``
    there instead, so it never replaces the built-in one.
    """
    root = os.environ.get("AESTHETICNET_CACHE")
    if root:
        base = Path(root)
    else:
        base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "aestheticnet"
    base = base / f"synthetic-v{GENERATOR_VERSION}"
    return (base / f"photos-{photo_set}" if photo_set else base) / f"seed{seed}"


def photo_set_id(config: SynthConfig) -> str:
    """Short digest of a config's source photos (names and, for user photos, file digests)."""
    lines = [f"builtin\t{n}\n" for n in config.photos] + [f"{p.name}\t{p.sha256}\n" for p in config.user_photos]
    return hashlib.sha256("".join(lines).encode()).hexdigest()[:16]


def ensure_synthetic(
    out_dir: str | os.PathLike | None = None, seed: int = 0, *, workers: int = 2, progress: bool = True
) -> Path:
    """Build the default synthetic dataset unless a complete one is already there; return its path."""
    path = Path(out_dir) if out_dir is not None else default_synthetic_dir(seed)
    return build_synthetic(path, seed=seed, workers=workers, progress=progress).path


def build_synthetic(
    out_dir: str | os.PathLike,
    seed: int = 0,
    n_crops_per_photo: int = 2,
    size: tuple[int, int] = (256, 192),
    levels: int = 5,
    workers: int = 2,
    force: bool = False,
    *,
    progress: bool = True,
    **knobs,
) -> SynthInfo:
    """Build (or reuse) the synthetic dataset in ``out_dir``.

    ``knobs`` are any other :class:`SynthConfig` fields (``photos=``, ``distortions=``, ...).
    ``workers`` processes share the work; the output does not depend on it.
    """
    config = SynthConfig(seed=seed, n_crops_per_photo=n_crops_per_photo, size=tuple(size), levels=levels, **knobs)
    return build_from_config(out_dir, config, workers=workers, force=force, progress=progress)


@dataclass(frozen=True)
class PhotosBuild:
    info: SynthInfo
    scan: PhotoScan  # the photos used and the files skipped, with reasons


def build_from_photos(
    photos_dir: str | os.PathLike,
    out_dir: str | os.PathLike | None = None,
    *,
    with_builtin: bool = False,
    seed: int = 0,
    n_crops_per_photo: int = 2,
    workers: int = 2,
    force: bool = False,
    progress: bool = True,
    **knobs,
) -> PhotosBuild:
    """Build (or reuse) the synthetic dataset from the photos in ``photos_dir``, plus the built-in ones if asked.

    Unreadable, too small and duplicate files are skipped (``scan.skipped`` says why). Too few usable photos
    raises :class:`aestheticnet.data.user_photos.TooFewPhotosError` before anything is written. ``out_dir``
    None is the cache folder of this photo set. ``knobs`` are other :class:`SynthConfig` fields.
    """
    base = SynthConfig(
        seed=seed, n_crops_per_photo=n_crops_per_photo, photos=tuple(PHOTOS) if with_builtin else (), **knobs
    )
    scan = scan_photos(photos_dir, base, exclude=out_dir)
    check_enough(scan, len(base.photos))
    config = dataclasses.replace(base, user_photos=tuple(p.source for p in scan.photos))
    out = out_dir if out_dir is not None else default_synthetic_dir(seed, photo_set_id(config))
    crops = {p.source.name: p.crops for p in scan.photos}
    info = build_from_config(out, config, workers=workers, force=force, progress=progress, crops=crops)
    return PhotosBuild(info, scan)


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
    try:
        config = SynthConfig.from_json(cfg)
        if config.digest() != meta.get("config_hash"):
            return None
        return SynthInfo(
            path=path,
            config=config,
            config_hash=meta["config_hash"],
            n_images=meta["n_images"],
            n_references=meta["n_references"],
            n_distorted=meta["n_distorted"],
            mean_vote_std=meta["mean_vote_std"],
            build_seconds=meta["build_seconds"],
            digest=meta["digest"],
            reused=True,
        )
    except (TypeError, KeyError):
        return None  # another generator version, or a damaged marker: not reusable


def build_from_config(
    out_dir: str | os.PathLike,
    config: SynthConfig,
    *,
    workers: int = 2,
    force: bool = False,
    progress: bool = True,
    crops: dict[str, tuple[np.ndarray, ...]] | None = None,
) -> SynthInfo:
    """Like :func:`build_synthetic` with an explicit config; ``force`` rebuilds a matching cache.

    ``crops`` maps each user photo's name to its pristine crops (what :func:`scan_photos` made).
    """
    config.validate()
    crops = crops or {}
    missing = [p.name for p in config.user_photos if len(crops.get(p.name, ())) != config.n_crops_per_photo]
    if missing:
        raise ValueError(f"no crops given for user photos {missing}; build from a folder with build_from_photos")
    out = Path(out_dir).absolute()
    blocking = next((p for p in (out, *out.parents) if p.exists() and not p.is_dir()), None)
    if blocking is not None:
        raise ValueError(f"{out}: {blocking} is a file, not a folder; choose another output folder")
    chash = config.digest()
    existing = read_info(out)
    if existing is not None and existing.config_hash == chash and not force:
        return existing
    if out.exists() and (not out.is_dir() or any(out.iterdir())) and not _looks_ours(out):
        # Never delete a directory we did not write, whatever `force` says.
        raise ValueError(
            f"{out} holds files that are not a synthetic dataset (nothing was changed); choose an empty or new folder"
        )

    start = time.perf_counter()
    out.parent.mkdir(parents=True, exist_ok=True)
    remove_stale(out.parent, out.name)  # what a killed build left
    tmp = out.parent / temp_name(out.name)
    tmp.mkdir()
    try:
        for sub in ("reference_images", "distorted_images", "images"):
            (tmp / sub).mkdir()
        rows, file_hashes = _render_all(tmp, config, crops, workers, progress)
        file_hashes.update(_write_tables(tmp, config, rows))
        digest = hashlib.sha256("".join(f"{p}\t{h}\n" for p, h in sorted(file_hashes.items())).encode()).hexdigest()
        n_ref = sum(r["distortion"] == "reference" for r in rows)
        meta = {
            "config_hash": chash,
            "digest": digest,
            "n_images": len(rows),
            "n_references": n_ref,
            "n_distorted": len(rows) - n_ref,
            "mean_vote_std": float(np.mean([r["std"] for r in rows])),
            "build_seconds": round(time.perf_counter() - start, 3),
        }
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
        old = out.parent / temp_name(out.name, "old")
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


def _jobs(config: SynthConfig, root: Path, crops: dict[str, tuple[np.ndarray, ...]]) -> list[dict]:
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


def _render_all(tmp: Path, config: SynthConfig, crops: dict, workers: int, progress: bool):
    jobs = _jobs(config, tmp, crops)
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


def _write_tables(root: Path, config: SynthConfig, rows: list[dict]) -> dict:
    texts = {}
    # The challenge column carries the source photo (1-based, in config order), so AVA's group_by="challenge"
    # splits by photo: crops and distortions of one photo never straddle train and validation.
    photo_index = {name: k for k, name in enumerate(config.photo_names, 1)}
    texts["AVA.txt"] = "".join(
        f"{i} {r['image_id']} {' '.join(map(str, r['hist']))} 0 0 {photo_index[r['photo']]}\n"
        for i, r in enumerate(rows, 1)
    )
    dist = [r for r in rows if r["distortion"] != "reference"]  # TID2013 lists distorted images only
    texts["mos_with_names.txt"] = "".join(f"{r['mean'] - 1:.5f} {Path(r['tid_file']).name}\n" for r in dist)
    # As in TID2013, mos_std is the uncertainty of the mean, not the raters' spread (groups.csv has that).
    texts["mos_std.txt"] = "".join(f"{r['std'] / np.sqrt(r['n_votes']):.5f}\n" for r in dist)
    cols = [
        "image_id",
        "photo",
        "ref_id",
        "crop",
        "distortion",
        "type",
        "level",
        "strength",
        "fr_quality",
        "ssim",
        "psnr",
        "latent",
        "n_votes",
        "mean",
        "std",
        "ava_file",
        "tid_file",
    ]
    table = io.StringIO()
    writer = csv.writer(table, lineterminator="\n")  # quotes a user photo's name that holds a comma
    writer.writerow(cols)
    writer.writerows([f"{r[c]:.6g}" if isinstance(r[c], float) else str(r[c]) for c in cols] for r in rows)
    texts["groups.csv"] = table.getvalue()
    texts[CONFIG_FILE] = json.dumps(config.to_json(), indent=1, sort_keys=True) + "\n"
    texts["README.txt"] = synthetic_readme.readme(config, len(rows), len(dist), GENERATOR_VERSION, CONFIG_FILE)
    hashes = {}
    for name, text in texts.items():
        data = text.encode()
        (root / name).write_bytes(data)
        hashes[name] = hashlib.sha256(data).hexdigest()
    return hashes
