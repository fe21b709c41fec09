"""``Scorer``: image files -> mean score, std and distribution, with any backend and the model's own preprocessing.

This is the one scoring path: the ``aestheticnet score`` command and library callers both use it. Files are decoded
as the datasets decode them (size from the header, JPEGs at reduced scale in draft mode when the model input is
smaller), so a file scores the same here as in evaluation.

The preprocessing policy (resize rule, multiple of 32, mean/std) comes from the artifact's manifest, or from
the checkpoint metadata for ``.safetensors``; so an ``.onnx`` or ``.tflite`` scores exactly like the checkpoint it
was exported from. Images whose preprocessed shapes are equal are batched together (the aspect policy gives a
handful of shapes per dataset); results come back in input order.
"""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from aestheticnet.metrics import mean_score, score_std
from aestheticnet.runtime.backends import Backend, ModelFileError
from aestheticnet.runtime.loading import load
from aestheticnet.runtime.scoring import ScoreResult

__all__ = ["Scorer"]


class Scorer:
    def __init__(
        self,
        model_path: str | os.PathLike | Backend,
        threads: int | None = None,
        batch_size: int = 8,
        preprocess: dict[str, Any] | None = None,
    ):
        from aestheticnet.data.preprocess import Preprocess

        self.backend = model_path if isinstance(model_path, Backend) else load(model_path, threads=threads)
        pre = dict(preprocess if preprocess is not None else self.backend.preprocess)
        if not pre:
            raise ModelFileError(
                f"{self.backend.path}: no preprocessing recorded (no manifest next to the model); "
                "pass preprocess={...} or re-export with `aestheticnet export`"
            )
        self.preprocess = Preprocess.from_dict(pre)
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        # An ExecuTorch program takes one image per call by default (its memory is planned for its largest batch).
        largest = self.backend.manifest.input.upper_bound("batch") if self.backend.manifest is not None else None
        self.batch_size = min(int(batch_size), largest or int(batch_size))
        self.scores = np.asarray(self.backend.score_buckets, dtype=np.float64)

    def _summaries(self, dists: np.ndarray) -> list[tuple[float, float]]:
        d = dists.astype(np.float64)
        return list(zip(mean_score(d, self.scores).tolist(), score_std(d, self.scores).tolist()))

    def score_arrays(self, images: Sequence[np.ndarray]) -> list[dict[str, Any]]:
        """Preprocessed CHW float32 arrays -> results (``path`` is the index)."""
        groups: dict[tuple, list[int]] = defaultdict(list)
        for i, x in enumerate(images):
            groups[tuple(x.shape)].append(i)
        results: list[dict[str, Any] | None] = [None] * len(images)
        for indices in groups.values():
            for start in range(0, len(indices), self.batch_size):
                chunk = indices[start : start + self.batch_size]
                dists = self.backend.run(np.stack([images[i] for i in chunk]).astype(np.float32, copy=False))
                for i, dist, (mean, std) in zip(chunk, dists, self._summaries(dists)):
                    results[i] = {"path": i, "mean": mean, "std": std, "distribution": dist.tolist()}
        return results  # type: ignore[return-value]

    def image(self, path: str | os.PathLike) -> np.ndarray:
        """One file decoded and preprocessed (CHW float32) exactly as the datasets do for evaluation."""
        from aestheticnet.data.preprocess import file_tensor

        return file_tensor(path, self.preprocess).numpy()

    def score_paths(self, paths: Iterable[str | os.PathLike], chunk: int = 256) -> list[dict[str, Any]]:
        """``[{path, mean, std, distribution}]`` in input order; unreadable images raise ``ImageDecodeError``, a
        NaN or infinite output ``ModelFileError``."""
        return self.score_files(paths, chunk=chunk, skip_unreadable=False).scores

    def score_files(
        self,
        paths: Iterable[str | os.PathLike],
        *,
        chunk: int = 256,
        skip_unreadable: bool = True,
        progress: bool = False,
    ) -> ScoreResult:
        """Scores of the readable files in input order, and the ones not scored with the reason (unreadable, or a
        NaN or infinite output)."""
        from tqdm import tqdm

        paths = [Path(p) for p in paths]
        result = ScoreResult()
        with tqdm(total=len(paths), desc="scoring", unit="img", disable=not progress) as bar:
            for start in range(0, len(paths), chunk):  # bounded memory for long lists
                kept, arrays = [], []
                for p in paths[start : start + chunk]:
                    try:
                        arrays.append(self.image(p))
                        kept.append(p)
                    except (OSError, ValueError) as exc:  # ImageDecodeError is a ValueError
                        if not skip_unreadable:
                            raise
                        result.failures.append({"path": str(p), "error": str(exc)})
                    bar.update(1)
                for p, res in zip(kept, self.score_arrays(arrays)):
                    res["path"] = str(p)
                    if np.isfinite(res["distribution"]).all():
                        result.scores.append(res)
                        continue
                    error = (
                        f"{self.backend.path}: the model's output for {p} is NaN or infinite; the model file is "
                        "broken (check it with `aestheticnet verify`)"
                    )
                    if not skip_unreadable:
                        raise ModelFileError(error)
                    result.failures.append({"path": str(p), "error": error})
        return result
