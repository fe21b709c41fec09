"""``Scorer``: image files -> mean score, std and distribution, with any backend and the model's own preprocessing.

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

from aestheticnet.runtime.backends import Backend, ModelFileError, load

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
        self.batch_size = int(batch_size)
        self.scores = np.asarray(self.backend.score_buckets, dtype=np.float64)

    def _summaries(self, dists: np.ndarray) -> list[tuple[float, float]]:
        d = dists.astype(np.float64)
        mean = d @ self.scores
        var = (d * (self.scores[None, :] - mean[:, None]) ** 2).sum(axis=1)
        return list(zip(mean.tolist(), np.sqrt(np.clip(var, 0, None)).tolist()))

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

    def score_paths(self, paths: Iterable[str | os.PathLike], chunk: int = 256) -> list[dict[str, Any]]:
        """``[{path, mean, std, distribution}]`` in input order; unreadable images raise ``ImageDecodeError``."""
        from aestheticnet.data.images import image_size, load_image

        paths = [Path(p) for p in paths]
        out: list[dict[str, Any]] = []
        for start in range(0, len(paths), chunk):  # bounded memory for long lists
            part = paths[start : start + chunk]
            arrays = []
            for p in part:
                # Size from the header, as the datasets do: JPEGs may then decode at reduced scale (draft mode)
                # and still give exactly the training-time input size.
                size = self.preprocess.output_size(*image_size(p))
                img = load_image(p, min_size=size)
                arrays.append(self.preprocess.apply(img, size=size).numpy())
            for p, res in zip(part, self.score_arrays(arrays)):
                res["path"] = str(p)
                out.append(res)
        return out
