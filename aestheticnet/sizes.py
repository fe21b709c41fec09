"""Image sizes: one grammar for every command, config file and programmatic API.

A size is ``HxW`` (batch 1) or ``NxHxW``: decimal integers joined by ``x`` (case-insensitive, spaces around the
whole item ignored); a list is comma-separated. Height and width must be positive multiples of
:data:`SIZE_MULTIPLE`: the networks have a total stride of 32 (ImageNet-style stem and two reductions), and the
two-branch factorized reduction misaligns odd sizes, so any other size would either fail deep in a runtime or be
silently resized. Preprocessing rounds image sides to this multiple; an explicit size must already be one.

The device runner (``bench/runner.py``) runs on boards without this package and keeps a self-contained copy of
this grammar; a test feeds both the same strings.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

__all__ = ["MAX_BATCH", "MAX_SIDE", "SIZE_MULTIPLE", "Shape", "SizeError", "parse_shape", "parse_shapes"]

SIZE_MULTIPLE = 32
# The largest input the toolchain builds, exports (the dynamic dims' upper bounds) and measures: a larger one
# would only fail later, in an allocation deep inside a runtime.
MAX_SIDE = 2048
MAX_BATCH = 64
_ITEM = re.compile(r"(?:(\d+)x)?(\d+)x(\d+)")


class SizeError(ValueError):
    """A size string or value that does not follow the grammar; the message names where it came from."""


@dataclass(frozen=True)
class Shape:
    """An input shape: ``batch`` images of ``height`` x ``width`` pixels."""

    height: int
    width: int
    batch: int = 1

    def __post_init__(self) -> None:
        for name in ("height", "width", "batch"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise SizeError(f"Shape.{name} must be an integer, got {value!r}")
        if self.batch < 1:
            raise SizeError(f"{self}: the batch must be at least 1")
        if self.height < 1 or self.width < 1 or self.height % SIZE_MULTIPLE or self.width % SIZE_MULTIPLE:
            raise SizeError(f"{self}: height and width must be positive multiples of {SIZE_MULTIPLE}")
        if self.batch > MAX_BATCH or max(self.height, self.width) > MAX_SIDE:
            raise SizeError(
                f"{self}: at most a batch of {MAX_BATCH} and sides of {MAX_SIDE} (the largest input the models are "
                "exported for)"
            )

    @property
    def size(self) -> tuple[int, int]:
        """``(height, width)``."""
        return self.height, self.width

    @property
    def nchw(self) -> tuple[int, int, int, int]:
        return self.batch, 3, self.height, self.width

    def __str__(self) -> str:
        hw = f"{self.height}x{self.width}"
        return hw if self.batch == 1 else f"{self.batch}x{hw}"


def parse_shape(text: str, where: str = "size") -> Shape:
    """``"224x224"`` -> ``Shape(224, 224)``; ``"3x320x256"`` -> ``Shape(320, 256, batch=3)``.

    ``where`` names the option or key in the error message (``"--shapes"``, ``"verify.shapes"``).
    """
    item = str(text).strip().lower()
    match = _ITEM.fullmatch(item)
    if match is None:
        raise SizeError(f"{where} {text!r}: expected HxW or NxHxW with integers, e.g. 224x224 or 3x320x256")
    n, h, w = match.groups()
    try:
        return Shape(int(h), int(w), int(n) if n is not None else 1)
    except SizeError as exc:
        raise SizeError(f"{where} {text!r}: {str(exc).split(': ', 1)[-1]}") from None


def parse_shapes(value: str | Iterable[str], where: str = "sizes") -> tuple[Shape, ...]:
    """``"224x224,3x320x256"`` (or a list of items) -> shapes in order, duplicates dropped; empty is an error."""
    items = value.split(",") if isinstance(value, str) else [str(v) for v in value]
    shapes = [parse_shape(item, where) for item in items if item.strip()]
    if not shapes:
        raise SizeError(f"{where} is empty; expected e.g. 224x224 or 224x224,3x320x256")
    return tuple(dict.fromkeys(shapes))
