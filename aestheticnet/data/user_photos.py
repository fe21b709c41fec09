"""The user's own photos as sources of the synthetic dataset (``aestheticnet data synth --photos DIR``).

The folder is searched recursively for image files (by suffix; hidden files and folders are left out). Each file
is decoded with the package's one decoder, :func:`aestheticnet.data.images.load_image` (EXIF orientation applied,
any mode to 8-bit RGB), and cropped right away, so every photo is decoded once and only its small crops are kept.
A file is skipped, with its reason, when it cannot be decoded, when it is too small for a crop without upsampling,
when it is a byte-for-byte copy of another file (a copy on both sides of the split by photo would leak), or when its
crops are flat: a near-blank image (a plain colour, a smooth gradient, flat vector shapes) looks the same blurred,
resampled or compressed, so its labels would teach that these distortions cost nothing.

Grey photos are recognised by their pixels (the three channels equal, up to JPEG rounding) and handled as the
built-in grey photos are: one channel, no saturation distortion (it would change nothing).
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import ndimage

from aestheticnet.data import distortions, synthetic_render
from aestheticnet.data.images import IMAGE_SUFFIXES, ImageDecodeError, load_image

__all__ = [
    "MIN_PHOTOS",
    "MIN_TEXTURE",
    "PhotoScan",
    "SkippedFile",
    "SourcePhoto",
    "TooFewPhotosError",
    "UserPhoto",
    "check_enough",
    "scan_photos",
    "texture_fraction",
]

# The dataset is split by source photo, so a build needs one photo to train on and one to validate on.
MIN_PHOTOS = 2

# A crop is textured where the luma's 7x7 local standard deviation reaches 2 grey levels (sensor noise alone comes
# close; flat fills and smooth gradients stay far below). Measured on Debian's wallpapers: photographs 0.2-1.0 of
# their pixels, an empty sky 0.25, dark near-blank images and flat vector art 0.0-0.14.
MIN_TEXTURE = 0.15
_TEXTURE_STD = 2.0
_TEXTURE_WINDOW = 7

# Largest channel difference still called grey: a grey photo saved as a colour JPEG decodes a level or two apart.
_GREY_TOLERANCE = 2


@dataclass(frozen=True)
class SourcePhoto:
    """A user photo as the build's config records it: its name in the folder, file digest and kind."""

    name: str  # path relative to the folder, with "/" separators
    sha256: str
    grey: bool


@dataclass(frozen=True)
class UserPhoto:
    source: SourcePhoto
    crops: tuple[np.ndarray, ...]  # uint8 H x W x C pristine crops (C = 1 when grey), one per crop index


@dataclass(frozen=True)
class SkippedFile:
    name: str
    reason: str


@dataclass(frozen=True)
class PhotoScan:
    folder: Path
    photos: tuple[UserPhoto, ...]
    skipped: tuple[SkippedFile, ...]


class TooFewPhotosError(ValueError):
    """The folder holds too few usable photos for a dataset; nothing was written."""


def _candidates(folder: Path, exclude: Path | None) -> list[Path]:
    found = []
    for dirpath, dirnames, filenames in os.walk(folder):
        here = Path(dirpath)
        # Hidden folders and the output folder (a build may be written inside the photo folder) are not photos.
        dirnames[:] = sorted(
            d for d in dirnames if not d.startswith(".") and (exclude is None or (here / d).absolute() != exclude)
        )
        found += [here / f for f in filenames if not f.startswith(".") and Path(f).suffix.lower() in IMAGE_SUFFIXES]
    return sorted(found, key=lambda p: p.relative_to(folder).as_posix())


def _decode(path: Path) -> np.ndarray:
    """uint8 H x W x C, C = 1 for a grey photo."""
    with load_image(path) as img:
        rgb = np.asarray(img)
        spread = max(int(np.abs(rgb[..., 0].astype(np.int16) - rgb[..., c]).max()) for c in (1, 2))
        if spread <= _GREY_TOLERANCE:
            return np.asarray(img.convert("L"))[..., None]
    return rgb


def texture_fraction(pixels: np.ndarray) -> float:
    """Fraction of the pixels of ``pixels`` (uint8 H x W x C) whose 7x7 neighbourhood's luma std is >= 2 levels."""
    luma = distortions.luma(pixels.astype(np.float32))
    mean = ndimage.uniform_filter(luma, _TEXTURE_WINDOW)
    var = ndimage.uniform_filter((luma - mean) ** 2, _TEXTURE_WINDOW)
    return float((var >= _TEXTURE_STD**2).mean())


def _reason(exc: ImageDecodeError, path: Path) -> str:
    text = str(exc)
    for prefix in (f"{os.path.realpath(path)}: ", f"{path}: "):
        text = text.removeprefix(prefix)
    return text


def scan_photos(folder: str | os.PathLike, config, *, exclude: str | os.PathLike | None = None) -> PhotoScan:
    """Decode, check and crop every photo under ``folder`` for a build with ``config`` (a ``SynthConfig``).

    ``exclude`` is a folder left out of the search (the build's output). Raises ``FileNotFoundError`` /
    ``NotADirectoryError`` for a bad ``folder``; too few usable photos is for the caller to judge.
    """
    root = Path(folder)
    if not root.exists():
        raise FileNotFoundError(f"--photos {root}: no such folder")
    if not root.is_dir():
        raise NotADirectoryError(f"--photos {root}: not a folder")
    photos, skipped, seen = [], [], {}
    width, height = config.size
    for path in _candidates(root, Path(exclude).absolute() if exclude is not None else None):
        name = path.relative_to(root).as_posix()
        try:
            sha = hashlib.sha256(path.read_bytes()).hexdigest()
            if sha in seen:
                skipped.append(SkippedFile(name, f"same file as {seen[sha]}"))
                continue
            pixels = _decode(path)
        except ImageDecodeError as exc:
            skipped.append(SkippedFile(name, _reason(exc, path)))
            continue
        except OSError as exc:
            skipped.append(SkippedFile(name, f"cannot read ({exc.strerror or exc})"))
            continue
        h, w = pixels.shape[:2]
        if not distortions.fits_crop(w, h, config.size):
            skipped.append(
                SkippedFile(
                    name,
                    f"too small: {w}x{h}; a crop needs a {width}:{height} area of at least {width}x{height} pixels",
                )
            )
            continue
        seen[sha] = name
        crops = tuple(synthetic_render.crop_user_photo(config, pixels, sha, k) for k in range(config.n_crops_per_photo))
        texture = float(np.mean([texture_fraction(c) for c in crops]))
        if texture < MIN_TEXTURE:
            skipped.append(
                SkippedFile(
                    name,
                    f"flat or near-blank: {texture:.0%} of its crops' pixels are textured "
                    f"(at least {MIN_TEXTURE:.0%} needed); it has no quality to rank",
                )
            )
            continue
        photos.append(UserPhoto(SourcePhoto(name, sha, pixels.shape[2] == 1), crops))
    return PhotoScan(root, tuple(photos), tuple(skipped))


def check_enough(scan: PhotoScan, n_builtin: int) -> None:
    """Raise :class:`TooFewPhotosError` unless the scan gives a usable dataset together with ``n_builtin`` photos."""
    n_user = len(scan.photos)
    if n_user >= 1 and n_user + n_builtin >= MIN_PHOTOS:
        return
    found = f"{n_user} usable photo{'' if n_user == 1 else 's'}"
    if n_builtin:
        need = "it needs at least 1 of its own next to the built-in ones"
    else:
        need = (
            f"the dataset is split by source photo, so it needs at least {MIN_PHOTOS} (one to train on, one to "
            "validate on); add photos or include the built-in ones (--with-builtin)"
        )
    skipped = "".join(f"\n  skipped {s.name}: {s.reason}" for s in scan.skipped)
    raise TooFewPhotosError(f"--photos {scan.folder}: {found}; {need}. Nothing was written.{skipped}")
