"""Source photos, crops and parametric image distortions for the synthetic default dataset.

The built-in photos are the CC0 / public-domain ones that ship inside the scikit-image wheel;
they are read straight from its ``skimage/data`` folder, never through its downloader.  A build
can add (or use only) the user's own photos: :mod:`aestheticnet.data.user_photos`.

Every distortion maps ``(image, strength, context) -> image`` where ``image`` is a
``float32`` array ``H x W x C`` (C = 1 for grey photos, 3 for colour) in 0..255 and
``strength`` is a distortion-specific physical parameter (blur sigma in pixels, JPEG
quality, noise sigma, ...).  :func:`strength` maps a level ``1..levels`` onto a
monotone schedule between a mild and a severe value, so any number of levels works.

The two noise distortions are random, but their randomness is drawn once per
reference image (:class:`NoiseContext`) and *scaled* by the level: the Gaussian field
is multiplied by sigma, and impulse noise hits the pixels whose uniform draw falls
under the level's fraction, so the corrupted pixel sets are nested.  That makes every
distortion, including the noisy ones, monotone in its level for each reference.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
from PIL import Image
from scipy import ndimage

# Luma weights (ITU-R BT.601), used for desaturation and the contrast pivot.
_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)


# The photos: name, file inside skimage/data, colour or grey, licence as stated in skimage's docstring. All these
# files ship in the wheel itself; nothing here goes through skimage's downloader.
_PHOTO_TABLE = """\
astronaut             astronaut.png          colour  NASA Great Images; public domain, no known copyright restrictions
chelsea               chelsea.png            colour  CC0, photographer Stefan van der Walt
coffee                coffee.png             colour  CC0, photographer Rachel Michetti
rocket                rocket.jpg             colour  SpaceX; released into the public domain
hubble_deep_field     hubble_deep_field.jpg  colour  NASA/HubbleSite; public domain
retina                retina.jpg             colour  Mikael Haggstrom, Wikimedia Commons; CC0 1.0
immunohistochemistry  ihc.png                colour  CMMI; no known copyright restrictions
camera                camera.png             grey    CC0, photographer Lav Varshney
clock                 clock_motion.png       grey    public domain, photographer Stefan van der Walt
coins                 coins.png              grey    Brooklyn Museum collection; no known copyright restrictions
brick                 brick.png              grey    CC0Textures Bricks25; CC0
grass                 grass.png              grey    DeviantArt linolafett Grass-01; CC0
gravel                gravel.png             grey    CC0Textures Gravel04; CC0
"""


def _photos(table: str) -> dict[str, tuple[str, bool, str]]:
    rows = (line.split(maxsplit=3) for line in table.splitlines())
    return {name: (file, kind == "grey", licence) for name, file, kind, licence in rows}


# name -> (file inside skimage/data, is grey, licence)
PHOTOS: dict[str, tuple[str, bool, str]] = _photos(_PHOTO_TABLE)


def load_photo(name: str) -> np.ndarray:
    """Photo ``name`` as uint8 H x W x C (C = 1 for grey), read straight from the wheel's files."""
    import skimage.data

    fname, grey, _ = PHOTOS[name]
    path = Path(skimage.data.__file__).parent / fname
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} is missing from the scikit-image install; the synthetic "
            "dataset only uses photos that ship inside the wheel"
        )
    with Image.open(path) as img:
        arr = np.asarray(img.convert("L" if grey else "RGB"))
    return arr[..., None] if grey else arr


def crop(name: str, size: tuple[int, int], scale: tuple[float, float], rng: np.random.Generator) -> np.ndarray:
    """Random crop of the built-in photo ``name``; see :func:`crop_photo`."""
    return crop_photo(load_photo(name), size, scale, rng)


def fits_crop(width: int, height: int, size: tuple[int, int]) -> bool:
    """Whether a ``width`` x ``height`` photo holds a ``size``-aspect crop of ``size`` pixels without upsampling."""
    out_w, out_h = size
    return min(height, width * out_h / out_w) >= out_h


def crop_photo(
    photo: np.ndarray, size: tuple[int, int], scale: tuple[float, float], rng: np.random.Generator
) -> np.ndarray:
    """Random 4:3 (``size`` aspect) crop of ``photo`` (uint8 H x W x C) resized to ``size`` = (width, height).

    The crop side is ``scale`` times the largest crop the photo allows, raised if needed
    so the crop is never upsampled (that would look soft before any distortion).
    """
    h, w = photo.shape[:2]
    out_w, out_h = size
    max_h = min(h, w * out_h / out_w)
    lo = min(1.0, max(scale[0], out_h / max_h))
    ch = max_h * rng.uniform(lo, max(lo, scale[1]))
    cw = ch * out_w / out_h
    x0, y0 = rng.uniform(0, w - cw), rng.uniform(0, h - ch)
    img = Image.fromarray(photo[..., 0] if photo.shape[2] == 1 else photo)
    res = img.resize((out_w, out_h), Image.Resampling.LANCZOS, box=(x0, y0, x0 + cw, y0 + ch))
    return np.asarray(res).reshape(out_h, out_w, photo.shape[2])


@dataclass(frozen=True)
class NoiseContext:
    """Per-reference random fields shared by all levels of one reference."""

    normal: np.ndarray  # H x W x C standard normal, for Gaussian noise
    uniform: np.ndarray  # H x W x C in [0, 1): which pixels impulse noise hits
    salt: np.ndarray  # H x W x C bool: salt (255) or pepper (0) for hit pixels
    motion_angle: float  # degrees, direction of the motion-blur streak

    @classmethod
    def draw(cls, shape: tuple[int, int, int], rng: np.random.Generator) -> "NoiseContext":
        return cls(
            normal=rng.standard_normal(shape, dtype=np.float32),
            uniform=rng.random(shape, dtype=np.float32),
            salt=rng.random(shape) < 0.5,
            motion_angle=float(rng.uniform(0.0, 180.0)),
        )


def luma(x: np.ndarray) -> np.ndarray:
    if x.shape[2] == 1:
        return x[..., 0]
    return x @ _LUMA


def _blur(x, sigma, ctx):
    return ndimage.gaussian_filter(x, sigma=(sigma, sigma, 0), mode="reflect")


def _jpeg(x, quality, ctx):
    img = to_pil(x)
    buf = io.BytesIO()
    # Default 4:2:0 chroma subsampling, like the JPEGs cameras and websites produce.
    img.save(buf, format="JPEG", quality=int(round(quality)))
    out = np.asarray(Image.open(io.BytesIO(buf.getvalue())), dtype=np.float32)
    return out.reshape(x.shape)


def _gaussian_noise(x, sigma, ctx):
    return x + sigma * ctx.normal


def _impulse_noise(x, fraction, ctx):
    hit = ctx.uniform < fraction
    return np.where(hit, np.where(ctx.salt, 255.0, 0.0), x).astype(np.float32)


def _brighten(x, delta, ctx):
    # Additive exposure shift; highlights clip, which is what makes it hurt.
    return x + 255.0 * delta


def _darken(x, factor, ctx):
    # Multiplicative exposure cut: shadows crush into the bottom quantisation steps.
    return x * factor


def _contrast(x, factor, ctx):
    pivot = float(luma(x).mean())
    return pivot + (x - pivot) * factor


def _saturation(x, factor, ctx):
    grey = luma(x)[..., None]
    return grey + (x - grey) * factor


def _pixelate(x, factor, ctx):
    h, w = x.shape[:2]
    small = (max(1, round(w / factor)), max(1, round(h / factor)))
    img = to_pil(x).resize(small, Image.Resampling.BOX).resize((w, h), Image.Resampling.NEAREST)
    return np.asarray(img, dtype=np.float32).reshape(x.shape)


def _resample(x, factor, ctx):
    # Digital zoom, thumbnails blown up: detail lost to the downscale, then interpolated back. Without it the
    # networks ranked resampled photos far worse than blurred ones, which lose detail the same way.
    h, w = x.shape[:2]
    small = (max(1, round(w / factor)), max(1, round(h / factor)))
    img = to_pil(x).resize(small, Image.Resampling.LANCZOS).resize((w, h), Image.Resampling.BICUBIC)
    return np.asarray(img, dtype=np.float32).reshape(x.shape)


def _motion_kernel(length: float, angle_deg: float) -> np.ndarray:
    """Normalised line kernel of ``length`` pixels; bilinear splatting allows fractional lengths."""
    half = int(math.ceil(length / 2.0)) + 1
    k = np.zeros((2 * half + 1, 2 * half + 1), dtype=np.float64)
    theta = math.radians(angle_deg)
    for t in np.linspace(-length / 2.0, length / 2.0, int(4 * math.ceil(length)) + 1):
        cx, cy = half + t * math.cos(theta), half + t * math.sin(theta)
        x0, y0 = int(math.floor(cx)), int(math.floor(cy))
        fx, fy = cx - x0, cy - y0
        k[y0, x0] += (1 - fx) * (1 - fy)
        k[y0, x0 + 1] += fx * (1 - fy)
        k[y0 + 1, x0] += (1 - fx) * fy
        k[y0 + 1, x0 + 1] += fx * fy
    return (k / k.sum()).astype(np.float32)


def _motion_blur(x, length, ctx):
    k = _motion_kernel(length, ctx.motion_angle)
    out = np.empty_like(x)
    for c in range(x.shape[2]):
        out[..., c] = ndimage.convolve(x[..., c], k, mode="reflect")
    return out


def to_pil(x: np.ndarray) -> Image.Image:
    u8 = to_uint8(x)
    return Image.fromarray(u8[..., 0] if u8.shape[2] == 1 else u8)


def to_uint8(x: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(x), 0, 255).astype(np.uint8)


@dataclass(frozen=True)
class Distortion:
    name: str
    code: int  # fixed TID-style type number, stable whatever subset is built
    fn: Callable[[np.ndarray, float, NoiseContext], np.ndarray]
    mild: float  # strength at level 1
    severe: float  # strength at the last level
    geometric: bool  # interpolate in log space (quality factors, sizes)
    colour_only: bool = False


# Schedules were tuned so that the full-reference score spreads over the quality range
# with each type covering a similar band; the order of this table fixes the type codes.
DISTORTIONS: dict[str, Distortion] = {
    d.name: d
    for d in (
        Distortion("blur", 1, _blur, 0.7, 4.5, True),
        Distortion("jpeg", 2, _jpeg, 35.0, 3.0, True),
        Distortion("gaussian_noise", 3, _gaussian_noise, 5.0, 36.0, True),
        Distortion("impulse_noise", 4, _impulse_noise, 0.006, 0.12, True),
        Distortion("brighten", 5, _brighten, 0.06, 0.42, False),
        Distortion("darken", 6, _darken, 0.85, 0.35, False),
        Distortion("contrast", 7, _contrast, 0.75, 0.18, False),
        Distortion("saturation", 8, _saturation, 0.6, 0.0, False, colour_only=True),
        Distortion("pixelate", 9, _pixelate, 1.8, 10.0, True),
        Distortion("motion_blur", 10, _motion_blur, 3.0, 22.0, True),
        Distortion("resample", 11, _resample, 1.5, 6.0, True),
    )
}


def strength(dist: Distortion, level: int, levels: int) -> float:
    """Parameter of ``dist`` at ``level`` (1 = mildest, ``levels`` = most severe)."""
    if not 1 <= level <= levels:
        raise ValueError(f"level {level} outside 1..{levels}")
    t = 0.0 if levels == 1 else (level - 1) / (levels - 1)
    if dist.geometric:
        return float(math.exp(math.log(dist.mild) + t * (math.log(dist.severe) - math.log(dist.mild))))
    return float(dist.mild + t * (dist.severe - dist.mild))


def apply(name: str, x: np.ndarray, level: int, levels: int, ctx: NoiseContext) -> np.ndarray:
    """Distort ``x`` (H x W x C, any numeric dtype) and return a uint8 array of the same shape."""
    dist = DISTORTIONS[name]
    return to_uint8(dist.fn(x.astype(np.float32), strength(dist, level, levels), ctx))
