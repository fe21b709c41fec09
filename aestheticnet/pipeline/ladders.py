"""The pipeline's ranking check: quality ladders of the validation photos, scored by each trained model.

SROCC on the validation split says whether a model fits the raters; the ladders (:mod:`aestheticnet.data.ladders`)
say whether it ranks quality at all on photos it never trained on: blur, JPEG, noise and resampling, each in four
steps from the pristine crop, where more distortion must score lower. They need pristine references, which the
synthetic datasets have (``groups.csv``); for other datasets the check is skipped and the report says so.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aestheticnet.data.ladders import LadderSet, ladder_report, reference_sources, write_ladders
from aestheticnet.io import atomic_write_json
from aestheticnet.models.checkpoint import read_metadata
from aestheticnet.runtime import Scorer
from aestheticnet.train.data import split_ids

__all__ = ["ladder_check", "score_ladders", "validation_sources"]


def score_ladders(model: str | Path, ladders: LadderSet, threads: int | None = None) -> dict[str, Any]:
    """:func:`ladder_report` of ``model`` (a checkpoint or any exported artifact), scored through ``Scorer``."""
    scores = Scorer(model, threads=threads).score_paths(ladders.paths())
    return ladder_report(ladders, {image.path: s["mean"] for image, s in zip(ladders.images, scores)})


def validation_sources(checkpoint: str | Path, data: str) -> dict[str, Any]:
    """The pristine crops of the validation photos ``checkpoint`` was trained with (``reference_sources``)."""
    train_config = (read_metadata(checkpoint).get("extra") or {}).get("train_config") or {}
    return reference_sources(data, image_ids=split_ids(data, train_config))


def ladder_check(checkpoint: Path, data: str, out_dir: Path, threads: int | None = None) -> dict[str, Any] | None:
    """Ladder rho of ``checkpoint`` on the pristine crops of its validation photos, written to ``ladders.json``.

    None when ``data`` has no pristine references (not a synthetic dataset).
    """
    try:
        sources = validation_sources(checkpoint, data)
    except FileNotFoundError:
        return None
    if not sources:
        return None
    report = score_ladders(checkpoint, write_ladders(sources, out_dir / "images"), threads)
    atomic_write_json(out_dir / "ladders.json", report)
    return report
