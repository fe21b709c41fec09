"""The one image decoder every path uses (datasets, scoring, export calibration, runtime).

Every image enters the project through :func:`load_image` so that training, evaluation and deployment see the
same pixels: EXIF orientation applied, every Pillow mode turned into 8-bit RGB the same way, the same
decompression-bomb limit, and one error type for anything that cannot be decoded.

Choices worth knowing:

* Transparent images (``LA``, ``PA``, ``RGBA``, ``P`` with a transparency entry) are composited over a white
  background, which is how viewers and browsers show them; dropping the alpha channel instead would expose
  whatever colour the encoder left under fully transparent pixels (often black).
* 16-bit and 32-bit integer images are scaled by their bit depth (65535 -> 255), never clipped: clipping turns a
  normal 16-bit photo almost entirely white.
* ``CMYK`` uses Pillow's conversion (Adobe-inverted JPEGs are handled by Pillow's JPEG reader); ICC profiles are
  not applied, as for every other mode, so the runtime can reproduce the pixels without a colour-management stack.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from PIL import Image

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "IMAGE_SUFFIXES",
    "DecompressionBombError",
    "ImageDecodeError",
    "PathOutsideRootError",
    "image_size",
    "load_image",
    "resolve_inside",
    "to_rgb",
]

# The file suffixes taken for images wherever a folder is searched (scoring, calibration, photo pools).
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm"})

# Pillow's own default warning threshold (about 89 megapixels, 9459 x 9459). Real photos in AVA, TID2013 and
# KonIQ are far below it; a file claiming more is almost always hostile or broken.
DEFAULT_MAX_PIXELS = 89_478_485

# EXIF orientations 5..8 include a transpose, so the displayed width and height are swapped.
_EXIF_ORIENTATION = 0x0112
_SWAPPING_ORIENTATIONS = {5, 6, 7, 8}
_WHITE = (255, 255, 255)
# The same table as PIL.ImageOps.exif_transpose; applied after the RGB conversion because that is a cheap,
# well-supported mode for transposes (16-bit and palette modes are not) and the orientation is read beforehand.
_TRANSPOSE = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}


class ImageDecodeError(ValueError):
    """A file could not be read or decoded as an image (missing, empty, truncated, not an image, too large)."""


class DecompressionBombError(ImageDecodeError):
    """The header claims more pixels than the configured ``max_pixels`` limit."""


class PathOutsideRootError(ValueError):
    """A path resolves (after following symlinks) to a location outside the dataset root."""


def resolve_inside(path: str | os.PathLike, root: str | os.PathLike | None) -> Path:
    """Return the fully resolved ``path``; when ``root`` is given, refuse anything that resolves outside it.

    A relative ``path`` is taken relative to ``root``. Symlinks are resolved before the check, so a link inside
    the dataset that points elsewhere is refused just like ``../..`` or an absolute path.
    """
    path = Path(path)
    if root is None:
        return Path(os.path.realpath(path))
    real_root = Path(os.path.realpath(root))
    real = Path(os.path.realpath(Path(root) / path))  # an absolute `path` replaces root here, then is checked
    if not real.is_relative_to(real_root):
        raise PathOutsideRootError(
            f"{str(path)!r} resolves to {str(real)!r}, outside the dataset root {str(real_root)!r}; "
            "dataset files must lie inside the root (no '..', absolute paths or symlinks leading out)"
        )
    return real


def _open(real: Path, fileobj, max_pixels: int | None) -> Image.Image:
    """Open the header, enforcing our pixel limit instead of Pillow's global warning/exception."""
    with warnings.catch_warnings():
        # Pillow warns above MAX_IMAGE_PIXELS and raises above twice that; we apply our own limit below and
        # turn Pillow's exception into ours, so callers see one error type and no stray warnings.
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            img = Image.open(fileobj)
        except Image.DecompressionBombError as exc:
            raise DecompressionBombError(f"{real}: {exc}") from exc
    w, h = img.size
    if max_pixels is not None and w * h > max_pixels:
        raise DecompressionBombError(
            f"{real}: {w}x{h} = {w * h} pixels exceeds the limit of {max_pixels} "
            "(possible decompression bomb); raise max_pixels if the file is trusted"
        )
    return img


def _orientation(img: Image.Image) -> int:
    try:
        return int(img.getexif().get(_EXIF_ORIENTATION, 1))
    except Exception:  # a broken EXIF block must not make an otherwise valid image unreadable
        return 1


def image_size(
    path: str | os.PathLike, root: str | os.PathLike | None = None, *, max_pixels: int | None = DEFAULT_MAX_PIXELS
) -> tuple[int, int]:
    """Displayed ``(width, height)`` from the header only (no pixel decoding), EXIF orientation included."""
    real = resolve_inside(path, root)
    with _named_errors(real, "cannot read image header"), open(real, "rb") as fh:
        img = _open(real, fh, max_pixels)
        w, h = img.size
        return (h, w) if _orientation(img) in _SWAPPING_ORIENTATIONS else (w, h)


@contextmanager
def _named_errors(real: Path, failure: str) -> Iterator[None]:
    """Whatever reading ``real`` raises becomes an :class:`ImageDecodeError` that names the file."""
    try:
        yield
    except (ImageDecodeError, PathOutsideRootError):
        raise
    except FileNotFoundError as exc:
        raise ImageDecodeError(f"{real}: file not found") from exc
    except Exception as exc:  # Pillow's decoders raise OSError, SyntaxError, struct.error, EOFError, ...
        raise ImageDecodeError(f"{real}: {failure} ({type(exc).__name__}: {exc})") from exc


def load_image(
    path: str | os.PathLike,
    root: str | os.PathLike | None = None,
    *,
    min_size: tuple[int, int] | None = None,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
    background: tuple[int, int, int] = _WHITE,
) -> Image.Image:
    """Decode ``path`` into an upright 8-bit RGB image.

    Args:
        path: the image file; relative paths are taken relative to ``root`` when it is given.
        root: the dataset root. When given, the path (symlinks resolved) must lie inside it, else
            :class:`PathOutsideRootError`.
        min_size: ``(width, height)`` in displayed orientation that the caller will downscale to. JPEGs may
            then be decoded at 1/2, 1/4 or 1/8 scale (Pillow draft mode, much faster), never below this size.
            Leave ``None`` for full resolution.
        max_pixels: refuse images whose header claims more pixels (:class:`DecompressionBombError`).
            ``None`` disables our limit (Pillow's own hard limit still applies).
        background: colour that transparent pixels are composited over.

    Raises:
        ImageDecodeError: missing, empty, truncated, corrupt or over-limit file; the message names the file.
        PathOutsideRootError: ``path`` escapes ``root``.
    """
    real = resolve_inside(path, root)
    with _named_errors(real, "cannot decode image"):
        try:
            with open(real, "rb") as fh:
                img = _open(real, fh, max_pixels)
                orientation = _orientation(img)
                if min_size is not None and img.format == "JPEG":
                    want_w, want_h = (int(v) for v in min_size)
                    if orientation in _SWAPPING_ORIENTATIONS:  # draft works in stored orientation
                        want_w, want_h = want_h, want_w
                    if want_w > 0 and want_h > 0:
                        img.draft("RGB", (want_w, want_h))
                img.load()  # force the full decode here so truncated data fails inside this try
        except IsADirectoryError as exc:
            raise ImageDecodeError(f"{real}: is a directory, not an image file") from exc
        except Image.UnidentifiedImageError as exc:
            size = real.stat().st_size if real.exists() else 0
            what = "empty file (0 bytes)" if size == 0 else "not a recognised image format"
            raise ImageDecodeError(f"{real}: {what}") from exc
        return _upright(to_rgb(img, background), orientation)


def _upright(img: Image.Image, orientation: int) -> Image.Image:
    method = _TRANSPOSE.get(orientation)
    return img if method is None else img.transpose(method)


def _bit_depth(img: Image.Image, values: np.ndarray) -> int:
    """Bit depth of an integer image: 16 for I;16*, the declared depth when the format says it, else inferred."""
    if img.mode.startswith("I;16"):
        return 16
    if img.format == "PNG":  # Pillow only produces mode I from PNG for 16-bit greyscale
        return 16
    tags = getattr(img, "tag_v2", None)  # TIFF BitsPerSample
    if tags is not None and 258 in tags:
        bits = tags[258]
        bits = bits[0] if isinstance(bits, tuple) else bits
        if isinstance(bits, int) and 1 <= bits <= 32:
            return bits
    # Unknown source: the smallest common depth that holds the data (16-bit data stored in 32-bit containers
    # is by far the most common case; inferring 32 would make it black).
    peak = int(values.max(initial=0))
    return 8 if peak < 256 else 16 if peak < 65536 else 32


def _gray_to_rgb(gray8: np.ndarray) -> Image.Image:
    return Image.fromarray(np.repeat(gray8[..., None], 3, axis=2), "RGB")


def to_rgb(img: Image.Image, background: tuple[int, int, int] = _WHITE) -> Image.Image:
    """Convert any Pillow mode to 8-bit RGB (alpha composited over ``background``, high bit depths scaled)."""
    mode = img.mode
    if mode in ("P", "L", "RGB") and "transparency" in img.info:  # palette alpha or a PNG tRNS colour key
        img, mode = img.convert("RGBA"), "RGBA"
    if mode == "RGB":
        return img
    elif mode == "P":
        return img.convert("RGB")
    if mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = img.convert("RGBA")
        base = Image.new("RGBA", rgba.size, (*background, 255))
        return Image.alpha_composite(base, rgba).convert("RGB")
    if mode.startswith("I"):  # I, I;16, I;16B, I;16L, I;16N
        values = np.asarray(img).astype(np.int64)
        bits = _bit_depth(img, values)
        scaled = np.clip(values, 0, None) * 255.0 / float(2**bits - 1)
        return _gray_to_rgb(np.clip(np.rint(scaled), 0, 255).astype(np.uint8))
    if mode == "F":
        values = np.nan_to_num(np.asarray(img, dtype=np.float64))
        # Float images come either normalised to [0, 1] or on the 8-bit scale; tell them apart by the range.
        scale = 255.0 if values.max(initial=0.0) <= 1.0 else 1.0
        return _gray_to_rgb(np.clip(np.rint(values * scale), 0, 255).astype(np.uint8))
    return img.convert("RGB")  # 1, L, CMYK, YCbCr, LAB, HSV
