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

The pieces: :mod:`~aestheticnet.data.synthetic_config` (the knobs), :mod:`~aestheticnet.data.synthetic_jobs`
(the work and its process pool), :mod:`~aestheticnet.data.synthetic_render` (one reference per job),
:mod:`~aestheticnet.data.synthetic_tables` (the text files); this module builds, caches and reuses.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from aestheticnet.data import synthetic_jobs, synthetic_tables
from aestheticnet.data.distortions import PHOTOS
from aestheticnet.data.synthetic_config import GENERATOR_VERSION, SynthConfig
from aestheticnet.data.synthetic_tables import CONFIG_FILE
from aestheticnet.data.user_photos import PhotoScan, check_enough, scan_photos
from aestheticnet.lifetime import remove_stale, temp_name

__all__ = [
    "CONFIG_FILE",
    "GENERATOR_VERSION",
    "MARKER",
    "PhotosBuild",
    "SynthConfig",
    "SynthInfo",
    "build_from_config",
    "build_from_photos",
    "build_synthetic",
    "default_synthetic_dir",
    "ensure_synthetic",
    "photo_set_id",
    "read_info",
]

MARKER = "COMPLETE"


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
    _build_into_place(out, config, crops, workers, progress)
    info = read_info(out)
    if info is None:
        raise RuntimeError(f"synthetic build in {out} did not complete")
    return dataclasses.replace(info, reused=False)


def _build_into_place(
    out: Path, config: SynthConfig, crops: dict[str, tuple[np.ndarray, ...]], workers: int, progress: bool
) -> None:
    """Build in a temporary sibling of ``out``, mark it complete, then rename it to ``out``."""
    chash = config.digest()
    start = time.perf_counter()
    out.parent.mkdir(parents=True, exist_ok=True)
    remove_stale(out.parent, out.name)  # what a killed build left
    tmp = out.parent / temp_name(out.name)
    tmp.mkdir()
    try:
        for sub in ("reference_images", "distorted_images", "images"):
            (tmp / sub).mkdir()
        rows, file_hashes = synthetic_jobs.render_all(tmp, config, crops, workers, progress)
        file_hashes.update(synthetic_tables.write_tables(tmp, config, rows))
        meta = _completion(chash, rows, file_hashes, time.perf_counter() - start)
        # Written last: its presence (with a matching hash) is what "complete" means.
        (tmp / MARKER).write_text(json.dumps(meta, indent=1) + "\n")
        _swap_into_place(tmp, out, chash)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def _completion(chash: str, rows: list[dict], file_hashes: dict[str, str], seconds: float) -> dict:
    """What the ``COMPLETE`` marker holds: the config hash, the digest of every data file and the counts."""
    digest = hashlib.sha256("".join(f"{p}\t{h}\n" for p, h in sorted(file_hashes.items())).encode()).hexdigest()
    n_ref = sum(r["distortion"] == "reference" for r in rows)
    return {
        "config_hash": chash,
        "digest": digest,
        "n_images": len(rows),
        "n_references": n_ref,
        "n_distorted": len(rows) - n_ref,
        "mean_vote_std": float(np.mean([r["std"] for r in rows])),
        "build_seconds": round(seconds, 3),
    }


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
