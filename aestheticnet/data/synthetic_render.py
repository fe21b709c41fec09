"""The worker of a synthetic build: one reference crop, all its distortions and levels, stored and labelled.

``config`` arguments are :class:`aestheticnet.data.synthetic_config.SynthConfig` values; a job is one dict made
by :func:`aestheticnet.data.synthetic_jobs.plan_jobs` (picklable, so it reaches spawned worker processes):
``key`` is the photo's random key (:func:`builtin_key` or :func:`user_key`), ``pristine`` the crop of a user
photo or None for a built-in one.
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
from PIL import Image

from aestheticnet.data import distortions, raters

__all__ = ["builtin_key", "crop_of", "crop_user_photo", "render_reference", "user_key"]

# User photos' random keys start here, above every built-in photo's index.
_USER_KEY_BASE = 2**64


def _rng(config, stream: int, *keys: int) -> np.random.Generator:
    # Independent stream per purpose and item: results do not depend on work order or on which other photos
    # are in the build (keys are the built-in photo's global index, or a user photo's content digest).
    return np.random.default_rng([config.seed, stream, *keys])


def builtin_key(name: str) -> int:
    return list(distortions.PHOTOS).index(name)


def user_key(sha256: str) -> int:
    """Random key of a user photo: from its file digest, so renaming or adding other photos changes nothing."""
    return _USER_KEY_BASE + int(sha256[:16], 16)


def crop_of(config, name: str, crop: int) -> np.ndarray:
    rng = _rng(config, 1, builtin_key(name), crop)
    return distortions.crop(name, config.size, config.crop_scale, rng)


def crop_user_photo(config, photo: np.ndarray, sha256: str, crop: int) -> np.ndarray:
    rng = _rng(config, 1, user_key(sha256), crop)
    return distortions.crop_photo(photo, config.size, config.crop_scale, rng)


def _store(
    x: np.ndarray, root: Path, jpg_rel: str, tid_rel: str, quality: int, tid_exact: bool = False
) -> tuple[np.ndarray, dict]:
    """Write the AVA JPEG and the TID lossless file; return the JPEG's decoded pixels.

    The TID file holds those decoded pixels, or ``x`` itself when ``tid_exact`` (references:
    TID2013's reference images are the pristine originals).
    """
    rgb = np.repeat(x, 3, axis=2) if x.shape[2] == 1 else x  # grey photos stay 3-channel grey
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="JPEG", quality=quality, subsampling=0)
    jpg = buf.getvalue()
    decoded = np.asarray(Image.open(io.BytesIO(jpg)).convert("RGB"))
    buf = io.BytesIO()
    # compress_level=1: zlib level 6 made PNG writing the slowest step for ~8% smaller files.
    Image.fromarray(rgb if tid_exact else decoded).save(
        buf, format="PNG" if tid_rel.endswith("png") else "BMP", compress_level=1
    )
    (root / jpg_rel).write_bytes(jpg)
    (root / tid_rel).write_bytes(buf.getvalue())
    hashes = {jpg_rel: hashlib.sha256(jpg).hexdigest(), tid_rel: hashlib.sha256(buf.getvalue()).hexdigest()}
    # Grey JPEGs decode with R == G == B exactly (chroma stays at 128), so one channel suffices.
    return (decoded[..., :1] if x.shape[2] == 1 else decoded), hashes


class _Variant(NamedTuple):
    """One image of a reference: the pristine crop itself or one distortion at one level."""

    distortion: str  # "reference" for the pristine crop
    code: int
    level: int
    strength: float
    image: np.ndarray
    tid_file: str


def _variants(job: dict, pristine: np.ndarray, ctx: distortions.NoiseContext) -> list[_Variant]:
    """The reference and every distortion type at every level, in image id order."""
    config, ref = job["config"], job["ref"]
    # The pristine crop is the TID reference (exact pixels); its AVA image is the q95 copy.
    variants = [_Variant("reference", 0, 0, 0.0, pristine, f"reference_images/I{ref:02d}.{config.tid_ext}")]
    for dname in job["types"]:
        d = distortions.DISTORTIONS[dname]
        for level in range(1, config.levels + 1):
            img = distortions.apply(dname, pristine, level, config.levels, ctx)
            variants.append(
                _Variant(
                    dname,
                    d.code,
                    level,
                    distortions.strength(d, level, config.levels),
                    img,
                    f"distorted_images/i{ref:02d}_{d.code:02d}_{level}.{config.tid_ext}",
                )
            )
    return variants


@dataclass(frozen=True)
class _Panel:
    """The simulated raters of one reference crop, who compare what they see with the pristine crop."""

    config: Any
    pool: raters.RaterPool
    pristine: np.ndarray
    top: float  # latent score of the pristine crop, on the 1..10 vote scale
    photo_key: tuple[int, int]  # (photo's random key, crop)

    def label(self, seen: np.ndarray, code: int, level: int) -> dict:
        """Full-reference quality of the stored pixels ``seen``, mixed with the severity, and the votes it draws."""
        config = self.config
        q, ssim, psnr = raters.fr_quality(self.pristine, seen, config.ssim_weight, config.psnr_range)
        mixed = raters.with_severity(q, level, config.levels, config.severity_weight, config.q_floor)
        latent = raters.latent_quality(mixed, self.top, config.q_floor, config.gamma)
        vrng = _rng(config, 4, *self.photo_key, code, level)
        n = raters.draw_vote_count(vrng, config.votes_median, config.votes_log_sd, *config.votes_range)
        hist = raters.sample_votes(latent, self.pool, vrng, n)
        mean, std = raters.hist_mean_std(hist)
        return {
            "fr_quality": q,
            "ssim": ssim,
            "psnr": psnr,
            "latent": latent,
            "hist": hist.tolist(),
            "n_votes": n,
            "mean": mean,
            "std": std,
        }


def render_reference(job: dict) -> tuple[list[dict], dict]:
    """Worker: one reference crop, all its distortions and levels, labels included."""
    config = job["config"]
    root, ref, name = Path(job["root"]), job["ref"], job["photo"]
    photo_key = (job["key"], job["crop"])
    pool = raters.RaterPool.draw(config.n_raters, config.bias_sd, config.noise_sd, _rng(config, 0))
    # User photos arrive as crops made while their folder was checked; built-in ones are cropped here.
    pristine = job["pristine"] if job["pristine"] is not None else crop_of(config, name, job["crop"])
    ctx = distortions.NoiseContext.draw(pristine.shape, _rng(config, 2, *photo_key))
    top = config.ref_quality + config.ref_spread * _rng(config, 3, *photo_key).standard_normal()
    panel = _Panel(config, pool, pristine, top, photo_key)

    rows, hashes = [], {}
    for k, variant in enumerate(_variants(job, pristine, ctx)):
        image_id = job["first_id"] + k
        jpg_rel = f"images/{image_id}.jpg"
        exact = variant.distortion == "reference"
        seen, h = _store(variant.image, root, jpg_rel, variant.tid_file, config.storage_jpeg_quality, tid_exact=exact)
        hashes.update(h)
        rows.append(
            {
                "image_id": image_id,
                "photo": name,
                "crop": job["crop"],
                "ref_id": f"I{ref:02d}",
                "distortion": variant.distortion,
                "type": variant.code,
                "level": variant.level,
                "strength": variant.strength,
                **panel.label(seen, variant.code, variant.level),
                "ava_file": jpg_rel,
                "tid_file": variant.tid_file,
            }
        )
    return rows, hashes
