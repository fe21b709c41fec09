"""Quality ladders: one photo, one distortion, increasing strength; a model that ranks quality scores them in order.

A ladder's labels need no raters: more distortion is worse. Each ladder has five rungs, the pristine crop (rung 0)
and four strengths of one distortion. Four ladders per photo, chosen because they are the artifacts a phone camera
and its pipeline make and because a model can get them backwards (blur and resampling remove fine detail, which a
model that learned "high frequencies are noise" mistakes for cleaner images):

* ``blur``: Gaussian blur, sigma 0.8 to 3.5 pixels;
* ``jpeg``: JPEG at quality 60 to 7 (4:2:0 chroma);
* ``noise``: additive Gaussian noise, sigma 4 to 28 grey levels (one seeded field per photo, scaled);
* ``resample``: downscaled by 1.6x to 4x (box filter) and back up to the size (bicubic).

The strengths differ from the synthetic dataset's schedules on purpose, and so do the resampling filters (the
dataset's ``resample`` downscales with Lanczos, 1.5x to 6x): the ladders test what a model learned about quality,
not whether it memorised the training distortions' exact parameters.

:func:`write_ladders` writes every rung as a lossless PNG, so any scorer (``Scorer``, the ``score`` command, a
reference model in another process) reads the same pixels; :func:`ladder_report` turns the scores into Spearman's
rho per photo and ladder (1 = perfectly ordered, -1 = backwards) and their means.
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from aestheticnet.data import distortions
from aestheticnet.io import atomic_path, atomic_write_json
from aestheticnet.metrics import srocc

__all__ = [
    "LADDERS",
    "Ladder",
    "LadderImage",
    "LadderSet",
    "ladder_report",
    "ladder_rungs",
    "read_ladders",
    "reference_sources",
    "write_ladders",
]

INDEX_FILE = "ladders.json"


def _resample(x: np.ndarray, factor: float, ctx: distortions.NoiseContext) -> np.ndarray:
    h, w = x.shape[:2]
    small = (max(1, round(w / factor)), max(1, round(h / factor)))
    img = distortions.to_pil(x).resize(small, Image.Resampling.BOX).resize((w, h), Image.Resampling.BICUBIC)
    return np.asarray(img, dtype=np.float32).reshape(x.shape)


@dataclass(frozen=True)
class Ladder:
    name: str
    distort: Callable[[np.ndarray, float, distortions.NoiseContext], np.ndarray]
    strengths: tuple[float, ...]  # rungs 1..4; rung 0 is the pristine image
    unit: str


LADDERS: dict[str, Ladder] = {
    ladder.name: ladder
    for ladder in (
        Ladder("blur", distortions.DISTORTIONS["blur"].fn, (0.8, 1.4, 2.2, 3.5), "sigma, pixels"),
        Ladder("jpeg", distortions.DISTORTIONS["jpeg"].fn, (60.0, 30.0, 15.0, 7.0), "quality"),
        Ladder("noise", distortions.DISTORTIONS["gaussian_noise"].fn, (4.0, 9.0, 16.0, 28.0), "sigma, grey levels"),
        Ladder("resample", _resample, (1.6, 2.2, 3.0, 4.0), "down-and-up factor"),
    )
}


def ladder_rungs(pristine: np.ndarray, ladder: Ladder, seed: int | tuple[int, ...] = 0) -> list[np.ndarray]:
    """The rungs of ``ladder`` for ``pristine`` (uint8 H x W x C): the pristine image, then each strength."""
    ctx = distortions.NoiseContext.draw(pristine.shape, np.random.default_rng(seed))
    x = pristine.astype(np.float32)
    return [pristine] + [distortions.to_uint8(ladder.distort(x, s, ctx)) for s in ladder.strengths]


@dataclass(frozen=True)
class LadderImage:
    photo: str
    ladder: str
    rung: int
    path: str  # relative to the ladder folder


@dataclass(frozen=True)
class LadderSet:
    root: Path
    images: tuple[LadderImage, ...]

    def paths(self) -> list[Path]:
        return [self.root / image.path for image in self.images]


def _safe_name(photo: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in photo)


def write_ladders(sources: Mapping[str, np.ndarray], out_dir: str | os.PathLike, seed: int = 0) -> LadderSet:
    """Write every ladder of every source photo (name -> uint8 H x W x C) as PNGs under ``out_dir``.

    The noise field of photo ``k`` (in the mapping's order) is drawn from ``[seed, k]``, so a rerun writes the same
    files. ``ladders.json`` lists them.
    """
    root = Path(out_dir)
    images = []
    for k, (photo, pixels) in enumerate(sources.items()):
        folder = root / f"{k:03d}_{_safe_name(photo)}"
        folder.mkdir(parents=True, exist_ok=True)
        rgb = np.repeat(pixels, 3, axis=2) if pixels.shape[2] == 1 else pixels
        for ladder in LADDERS.values():
            for rung, img in enumerate(ladder_rungs(rgb, ladder, seed=(seed, k))):
                rel = f"{folder.name}/{ladder.name}_{rung}.png"
                with atomic_path(root / rel) as tmp:
                    Image.fromarray(img).save(tmp, format="PNG")
                images.append(LadderImage(photo, ladder.name, rung, rel))
    atomic_write_json(root / INDEX_FILE, {"seed": seed, "images": [asdict(i) for i in images]})
    return LadderSet(root, tuple(images))


def read_ladders(out_dir: str | os.PathLike) -> LadderSet:
    root = Path(out_dir)
    try:
        data = json.loads((root / INDEX_FILE).read_text())
        return LadderSet(root, tuple(LadderImage(**i) for i in data["images"]))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"{root / INDEX_FILE}: not a ladder index ({exc}); write it with write_ladders") from None


def ladder_report(ladders: LadderSet, scores: Mapping[str, float]) -> dict:
    """Spearman's rho between rung and score, sign flipped so that 1 means "more distortion scored lower".

    ``scores`` maps each image's relative path (``LadderImage.path``) to its predicted mean score. A ladder whose
    scores are all equal (rho undefined) counts as 0: the model does not order it. Returns the mean per ladder over
    source images, their mean (``mean``), the per-source values and the number of sources (``photos``: one per
    pristine crop, as :func:`reference_sources` names them, ``photo#crop``).
    """
    rungs: dict[tuple[str, str], list[tuple[int, float]]] = {}
    for image in ladders.images:
        if image.path not in scores:
            raise KeyError(f"no score for ladder image {image.path}")
        rungs.setdefault((image.photo, image.ladder), []).append((image.rung, float(scores[image.path])))
    per_photo: dict[str, dict[str, float]] = {}
    for (photo, name), pairs in rungs.items():
        level, score = np.array(pairs).T
        rho = -srocc(level, score)
        per_photo.setdefault(photo, {})[name] = 0.0 if np.isnan(rho) else float(rho)
    names = [n for n in LADDERS if any(n in v for v in per_photo.values())]
    per_ladder = {n: float(np.mean([v[n] for v in per_photo.values() if n in v])) for n in names}
    return {
        "per_ladder": per_ladder,
        "mean": float(np.mean(list(per_ladder.values()))),
        "photos": len(per_photo),
        "per_photo": per_photo,
    }


def reference_sources(
    data_dir: str | os.PathLike,
    image_ids: set[str] | None = None,
    exclude_photos: set[str] = frozenset(),
) -> dict[str, np.ndarray]:
    """The pristine crops of a synthetic dataset (``groups.csv``), keyed ``photo#crop``.

    ``image_ids`` keeps the references whose AVA image id is in it (a split's ids); ``exclude_photos`` leaves those
    source photos out. Raises ``FileNotFoundError`` for a folder without ``groups.csv`` (not a synthetic dataset).
    """
    root = Path(data_dir)
    table = root / "groups.csv"
    if not table.is_file():
        raise FileNotFoundError(f"{table}: no such file; ladders need a synthetic dataset's pristine references")
    sources = {}
    with table.open(newline="") as f:
        for row in csv.DictReader(f):
            if row["distortion"] != "reference":
                continue
            if image_ids is not None and row["image_id"] not in image_ids:
                continue
            if row["photo"] in exclude_photos:
                continue
            with Image.open(root / row["tid_file"]) as img:
                sources[f"{row['photo']}#{row['crop']}"] = np.asarray(img.convert("RGB"))
    return sources
