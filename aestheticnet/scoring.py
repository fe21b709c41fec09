"""Score image files with any model: decode, preprocess as the model file says, batch by shape, predict.

Unreadable files never stop a run: they are collected with the reason and reported at the end.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np
from tqdm import tqdm

from aestheticnet.data.images import ImageDecodeError, load_image
from aestheticnet.data.preprocess import Preprocess
from aestheticnet.io import atomic_write_text
from aestheticnet.metrics import mean_score, score_std

__all__ = ["IMAGE_SUFFIXES", "collect_images", "ScoreResult", "score_files", "write_scores", "load_predictor"]

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm"}

Predictor = Callable[[np.ndarray], np.ndarray]  # NCHW float32 -> (N, buckets)


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
    seen, unique = set(), []
    for p in found:
        if p not in seen:
            seen.add(p)
            unique.append(p)
    return unique


def load_predictor(model_path: str | Path, threads: int | None = None) -> tuple[Predictor, Preprocess]:
    """A predict function and the preprocessing recorded with the model (checkpoint or exported artifact)."""
    path = Path(model_path)
    if path.suffix == ".safetensors":
        import torch

        from aestheticnet.models.checkpoint import load

        model = load(path)
        if threads:
            torch.set_num_threads(threads)

        def run(batch: np.ndarray) -> np.ndarray:
            with torch.no_grad():
                return model(torch.from_numpy(batch)).numpy()

        pre = model.metadata["preprocess"]
    else:
        from aestheticnet.runtime import load as load_backend  # ONNX Runtime, LiteRT, CoreML

        backend = load_backend(path, threads=threads)
        run, pre = backend.run, backend.metadata["preprocess"]
    return run, Preprocess.from_dict({k: tuple(v) if isinstance(v, list) else v for k, v in pre.items()})


@dataclass
class ScoreResult:
    scores: list[dict[str, Any]] = field(default_factory=list)
    failures: list[dict[str, str]] = field(default_factory=list)


def score_files(
    predictor: Predictor, preprocess: Preprocess, files: list[Path], batch_size: int = 16, progress: bool = True
) -> ScoreResult:
    result = ScoreResult()
    pending: dict[tuple[int, ...], list[tuple[Path, np.ndarray]]] = {}

    def flush(shape: tuple[int, ...]) -> None:
        items = pending.pop(shape, [])
        if not items:
            return
        dist = predictor(np.stack([a for _, a in items]).astype(np.float32))
        means, stds = mean_score(dist), score_std(dist)
        for (p, _), d, m, s in zip(items, dist, means, stds):
            result.scores.append({"path": str(p), "mean": float(m), "std": float(s),
                                  "distribution": [float(v) for v in d]})  # fmt: skip

    for path in tqdm(files, desc="scoring", unit="img", disable=not progress):
        try:
            img = load_image(path)
        except (ImageDecodeError, OSError, ValueError) as exc:
            result.failures.append({"path": str(path), "error": str(exc)})
            continue
        x = preprocess.apply(img).numpy()
        pending.setdefault(x.shape, []).append((path, x))
        if len(pending[x.shape]) >= batch_size:
            flush(x.shape)
    for shape in list(pending):
        flush(shape)
    order = {str(p): i for i, p in enumerate(files)}
    result.scores.sort(key=lambda r: order[r["path"]])
    return result


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
