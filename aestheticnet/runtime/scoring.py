"""Image files in, score tables out: which files to score, and the CSV or JSON written from the results.

Decoding, preprocessing and prediction are :class:`~aestheticnet.runtime.scorer.Scorer`'s; this module only finds
the files and writes what it returns. Unreadable files never stop a run: they are collected with the reason.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aestheticnet.data.images import IMAGE_SUFFIXES
from aestheticnet.io import atomic_write_text

__all__ = ["IMAGE_SUFFIXES", "ScoreResult", "collect_images", "write_scores"]


@dataclass
class ScoreResult:
    scores: list[dict[str, Any]] = field(default_factory=list)  # {path, mean, std, distribution} in input order
    failures: list[dict[str, str]] = field(default_factory=list)  # {path, error} of the files that were not scored


def collect_images(paths: Iterable[str | Path]) -> list[Path]:
    """Files as given, folders searched recursively for image suffixes; sorted, without duplicates."""
    found: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            found.extend(sorted(q for q in p.rglob("*") if q.is_file() and q.suffix.lower() in IMAGE_SUFFIXES))
        elif p.exists():
            found.append(p)
        else:
            raise FileNotFoundError(f"{p}: no such file or folder")
    return list(dict.fromkeys(found))


def write_scores(result: ScoreResult, out: str | Path | None, fmt: str) -> str:
    """CSV or JSON text; written atomically to ``out`` when given."""
    if fmt == "json":
        text = json.dumps({"scores": result.scores, "failures": result.failures}, indent=2) + "\n"
    elif fmt == "csv":
        buf = io.StringIO()
        w = csv.writer(buf)
        n = len(result.scores[0]["distribution"]) if result.scores else 0
        w.writerow(["path", "mean", "std", *[f"p{k}" for k in range(1, n + 1)]])
        for r in result.scores:
            w.writerow([r["path"], f"{r['mean']:.4f}", f"{r['std']:.4f}", *[f"{v:.5f}" for v in r["distribution"]]])
        text = buf.getvalue()
    else:
        raise ValueError(f"--format {fmt!r}: use csv or json")
    if out is not None:
        atomic_write_text(out, text)
    return text
