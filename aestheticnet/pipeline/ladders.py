"""The pipeline's ranking check: quality ladders of the validation photos, scored by each trained model.

SROCC on the validation split says whether a model fits the raters; the ladders (:mod:`aestheticnet.data.ladders`)
say whether it ranks quality at all on photos it never trained on: blur, JPEG, noise and resampling, each in four
steps from the pristine crop, where more distortion must score lower. They need pristine references, which the
synthetic datasets have (``groups.csv``); for other datasets the check is skipped and the report says so.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aestheticnet.data.ladders import ladder_report, reference_sources, write_ladders
from aestheticnet.io import atomic_write_json
from aestheticnet.models.checkpoint import read_metadata
from aestheticnet.runtime import Scorer
from aestheticnet.train.data import split_ids

__all__ = ["ladder_check"]


def ladder_check(checkpoint: Path, data: str, out_dir: Path, threads: int | None = None) -> dict[str, Any] | None:
    """Ladder rho of ``checkpoint`` on the pristine crops of its validation photos, written to ``ladders.json``.

    None when ``data`` has no pristine references (not a synthetic dataset).
    """
    train_config = (read_metadata(checkpoint).get("extra") or {}).get("train_config") or {}
    try:
        sources = reference_sources(data, image_ids=split_ids(data, train_config))
    except FileNotFoundError:
        return None
    if not sources:
        return None
    ladders = write_ladders(sources, out_dir / "images")
    scores = Scorer(checkpoint, threads=threads).score_paths(ladders.paths())
    report = ladder_report(ladders, {image.path: s["mean"] for image, s in zip(ladders.images, scores)})
    atomic_write_json(out_dir / "ladders.json", report)
    return report
