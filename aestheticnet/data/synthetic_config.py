"""The knobs of a synthetic build (:class:`SynthConfig`): every value that changes the output, hashed to key the cache.

``GENERATOR_VERSION`` is part of the hash: bump it when the output for a given config changes.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass

from aestheticnet.data import distortions
from aestheticnet.data.distortions import PHOTOS
from aestheticnet.data.user_photos import MIN_PHOTOS, SourcePhoto

__all__ = ["GENERATOR_VERSION", "SynthConfig"]

GENERATOR_VERSION = 4  # bump when output for a given config changes; invalidates caches


@dataclass(frozen=True)
class SynthConfig:
    """Every knob that changes the output; its hash keys the cache."""

    seed: int = 0
    photos: tuple[str, ...] = tuple(PHOTOS)
    # 13 photos x 2 crops = 26 references; with 11 types x 5 levels (10 for grey) that is
    # 1,370 distorted images + 26 references = 1,396, the nearest crop count to ~1,000.
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
