"""Preprocessing policies: image -> normalised CHW tensor, identical in training, export and runtime.

A :class:`Preprocess` is a small frozen value. Its :meth:`Preprocess.to_dict` is stored in checkpoint metadata
and read back with :meth:`Preprocess.from_dict` by export and runtime, so a deployed model resizes and normalises
exactly as it was trained.

Policies:

* ``fixed``: resize to ``size x size`` (the baseline; aspect ratio is not kept).
* ``aspect``: resize the shorter side to ``size`` keeping the aspect ratio; each side is rounded to the nearest
  multiple of ``multiple`` (32: the network's total stride), at least one multiple; when the
  longer side would exceed ``max_side`` the image is scaled down so the longer side equals ``max_side`` (rounded
  down to a multiple) before rounding the shorter one, which keeps the aspect as well as the grid allows.

Train-time augmentation (:meth:`Preprocess.augment`) resizes to ``train_scale`` times the target and takes a
random crop of the target size, then flips horizontally with probability 0.5; with ``train_crop`` it takes the patch
from the unresized image, at offsets on the JPEG grid (:data:`PATCH_GRID`). All randomness comes from the
generator the caller passes, so runs are reproducible.
"""

from __future__ import annotations

import dataclasses
import math
import operator
import os
from dataclasses import dataclass
from typing import Any, Union

import numpy as np
import torch
from PIL import Image

from aestheticnet.data.images import DEFAULT_MAX_PIXELS, image_size, load_image

# The bucketing sampler belongs with the aspect policy it serves; it lives in its own file and is re-exported.
from aestheticnet.data.sampler import ShapeBucketBatchSampler
from aestheticnet.imagenet import IMAGENET_MEAN, IMAGENET_STD

__all__ = [
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "PATCH_GRID",
    "POLICIES",
    "Preprocess",
    "RandomSource",
    "ShapeBucketBatchSampler",
    "file_tensor",
]

POLICIES = ("fixed", "aspect")

# A JPEG's blocks: 8x8 pixels, 16x16 for its 4:2:0 chroma. With patches at any offset the network had to learn
# blocking at every phase against its stride-8 stem: the demo-size AestheticNet* trained on the photo pool
# (3 epochs, seed 0) ranked its validation photos' JPEG ladders at rho 0.21 with free offsets, 0.72 on this grid.
PATCH_GRID = 16
_RESAMPLE = {
    "nearest": Image.Resampling.NEAREST,
    "bilinear": Image.Resampling.BILINEAR,
    "bicubic": Image.Resampling.BICUBIC,
    "lanczos": Image.Resampling.LANCZOS,
}

RandomSource = Union[torch.Generator, np.random.Generator, np.random.RandomState]


def _randint(rng: RandomSource, high: int) -> int:
    """A uniform integer in [0, high) from any of the supported generators."""
    if high <= 1:
        return 0
    if isinstance(rng, torch.Generator):
        return int(torch.randint(high, (1,), generator=rng).item())
    if isinstance(rng, np.random.Generator):
        return int(rng.integers(high))
    if isinstance(rng, np.random.RandomState):
        return int(rng.randint(high))
    raise TypeError(
        f"rng must be a torch.Generator, numpy Generator or RandomState, got {type(rng).__name__}; "
        "pass an explicitly seeded generator so augmentation is reproducible"
    )


def _round_to(value: float, multiple: int) -> int:
    """Nearest multiple (halves round up, not to even), never below one multiple."""
    return max(multiple, int(math.floor(value / multiple + 0.5)) * multiple)


@dataclass(frozen=True)
class Preprocess:
    """A preprocessing policy; see the module docstring for what each field does."""

    policy: str = "fixed"
    size: int = 224
    max_side: int = 640
    multiple: int = 32
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    # Part of the policy because the runtime must resample exactly as training did.
    resample: str = "bicubic"
    # Augmentation: resize to train_scale x the target before the random crop (256/224 as in ImageNet practice).
    train_scale: float = 8 / 7
    # > 0: train on random train_crop x train_crop patches of the image at its evaluation size (patch training,
    # as in image-quality work): artifacts stay at native scale and each step costs a fraction of a full image.
    train_crop: int = 0

    def __post_init__(self) -> None:
        def fail(field: str, why: str) -> None:
            raise ValueError(f"Preprocess.{field}={getattr(self, field)!r}: {why}")

        if self.policy not in POLICIES:
            fail("policy", f"must be one of {POLICIES}")
        for field in ("size", "max_side", "multiple"):
            value = getattr(self, field)
            try:  # accept numpy integers from configs, refuse floats and bools
                if isinstance(value, bool):
                    raise TypeError
                object.__setattr__(self, field, operator.index(value))
            except TypeError:
                fail(field, "must be a positive integer")
            if getattr(self, field) <= 0:
                fail(field, "must be a positive integer")
        if self.policy == "fixed" and self.size % self.multiple:
            fail("size", f"the fixed policy needs a multiple of {self.multiple} (the network's stride)")
        if self.max_side < self.multiple:
            fail("max_side", f"must be at least multiple={self.multiple}")
        # Normalise list inputs (from JSON) to tuples so the value stays hashable and comparable.
        for field in ("mean", "std"):
            value = tuple(float(v) for v in getattr(self, field))
            if len(value) != 3:
                fail(field, "needs exactly 3 values (R, G, B)")
            object.__setattr__(self, field, value)
        if any(s <= 0 for s in self.std):
            fail("std", "values must be positive")
        if self.resample not in _RESAMPLE:
            fail("resample", f"must be one of {tuple(_RESAMPLE)}")
        if self.train_crop < 0 or self.train_crop % self.multiple:
            fail("train_crop", f"must be 0 (off) or a positive multiple of {self.multiple}")
        if not self.train_scale >= 1.0:
            fail("train_scale", "must be >= 1 (the crop is taken from an image at least as large as the target)")

    # ---- metadata -------------------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict for checkpoint metadata."""
        out = dataclasses.asdict(self)
        out["mean"], out["std"] = list(self.mean), list(self.std)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Preprocess":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(
                f"Preprocess.from_dict: unknown keys {unknown}; known keys are {sorted(known)} "
                "(was the checkpoint written by a newer aestheticnet?)"
            )
        return cls(**data)

    # ---- geometry -------------------------------------------------------------------------------------------
    @property
    def longest_side(self) -> int:
        """The longest side :meth:`output_size` gives any image: ``size`` (fixed), else ``max_side`` rounded down to
        the multiple (at least one multiple). Exports that plan memory for their largest input are bounded by it."""
        if self.policy == "fixed":
            return self.size
        return max(self.multiple, self.max_side // self.multiple * self.multiple)

    def output_size(self, width: int, height: int) -> tuple[int, int]:
        """Network input ``(W, H)`` for an image of ``width x height``; both are multiples of ``multiple``."""
        if width <= 0 or height <= 0:
            raise ValueError(f"output_size: image size must be positive, got {width}x{height}")
        if self.policy == "fixed":
            return self.size, self.size
        m, cap = self.multiple, self.longest_side
        scale = self.size / min(width, height)
        if max(width, height) * scale > cap:
            scale = cap / max(width, height)
        return min(cap, _round_to(width * scale, m)), min(cap, _round_to(height * scale, m))

    def train_size(self, out_size: tuple[int, int]) -> tuple[int, int]:
        """``(W, H)`` of a training sample: the patch when ``train_crop`` is set, else ``out_size``."""
        if not self.train_crop:
            return out_size
        return min(self.train_crop, out_size[0]), min(self.train_crop, out_size[1])

    def resize_size(self, out_size: tuple[int, int], train: bool = False) -> tuple[int, int]:
        """The ``(W, H)`` the image is resized to before cropping (= ``out_size`` unless augmenting)."""
        w, h = out_size
        if not train or self.train_crop:  # patches come from the image at its evaluation size
            return w, h
        return max(w, math.ceil(w * self.train_scale)), max(h, math.ceil(h * self.train_scale))

    # ---- pixels ---------------------------------------------------------------------------------------------
    def normalize(self, rgb: np.ndarray) -> np.ndarray:
        """uint8 HWC RGB array -> float32 CHW, ``(x / 255 - mean) / std``. Usable without torch (runtime)."""
        if rgb.ndim != 3 or rgb.shape[2] != 3:
            raise ValueError(f"normalize: expected an HxWx3 RGB array, got shape {rgb.shape}")
        x = rgb.astype(np.float32) / np.float32(255.0)
        x = (x - np.asarray(self.mean, np.float32)) / np.asarray(self.std, np.float32)
        return np.ascontiguousarray(x.transpose(2, 0, 1))

    def _to_tensor(self, img: Image.Image) -> torch.Tensor:
        return torch.from_numpy(self.normalize(np.asarray(img.convert("RGB"), dtype=np.uint8)))

    def apply(self, img: Image.Image, size: tuple[int, int] | None = None) -> torch.Tensor:
        """Deterministic (evaluation / runtime) transform: resize to ``size`` or :meth:`output_size`, normalise.

        Datasets pass ``size`` computed from the file header so the result matches the bucketing shapes even
        when the decoder returned a reduced (JPEG draft) image.
        """
        size = size or self.output_size(*img.size)
        if img.size != tuple(size):
            img = img.resize(tuple(size), _RESAMPLE[self.resample])
        return self._to_tensor(img)

    __call__ = apply

    def augment(self, img: Image.Image, rng: RandomSource, size: tuple[int, int] | None = None) -> torch.Tensor:
        """Training transform: resize to ``train_scale`` x target, random crop to the target, random h-flip.

        The output shape is :meth:`train_size` of the target (the target itself unless ``train_crop`` is set).
        """
        full = size or self.output_size(*img.size)
        big_w, big_h = self.resize_size(full, train=True)
        out_w, out_h = self.train_size(full)
        if img.size != (big_w, big_h):
            img = img.resize((big_w, big_h), _RESAMPLE[self.resample])
        # Patches of an unresized image start on the JPEG grid, so blocking lies at the same phase against the
        # network's strides as when the whole image is scored (the whole image starts on the grid).
        grid = PATCH_GRID if self.train_crop else 1
        left = _randint(rng, (big_w - out_w) // grid + 1) * grid
        top = _randint(rng, (big_h - out_h) // grid + 1) * grid
        img = img.crop((left, top, left + out_w, top + out_h))
        if _randint(rng, 2):
            img = img.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        return self._to_tensor(img)


def file_tensor(
    path: str | os.PathLike,
    preprocess: Preprocess,
    root: str | os.PathLike | None = None,
    *,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
    size: tuple[int, int] | None = None,
    rng: RandomSource | None = None,
) -> torch.Tensor:
    """An image file as the model's input (CHW float32): the one path from a file to a tensor, for datasets,
    scoring and export calibration alike.

    The target ``(W, H)`` comes from the header (``size`` when the caller knows it already), so a JPEG may decode
    at reduced scale (draft mode) and still give exactly that size; the decoder applies EXIF orientation and the
    pixel limit. With ``rng`` the training augmentation runs instead of the evaluation transform.
    """
    target = size or preprocess.output_size(*image_size(path, root, max_pixels=max_pixels))
    img = load_image(path, root, min_size=preprocess.resize_size(target, rng is not None), max_pixels=max_pixels)
    if rng is not None:
        return preprocess.augment(img, rng, size=target)
    return preprocess.apply(img, size=target)
