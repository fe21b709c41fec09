"""Images for int8 calibration and for ``verify``'s real-image checks, through the checkpoint's preprocessing.

``--data`` may be any dataset :func:`aestheticnet.data.detect.open_dataset` recognises (AVA, TID2013, CSV,
KonIQ; the synthetic dataset is written in the AVA layout) or a plain folder of image files. Samples are spread
evenly over the dataset (deterministic), so a small ``N`` still covers every distortion type and level.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from aestheticnet.data.images import IMAGE_SUFFIXES
from aestheticnet.data.preprocess import Preprocess, file_tensor

__all__ = ["CalibrationError", "load_images"]


class CalibrationError(ValueError):
    pass


def _spread(n_total: int, n: int) -> list[int]:
    if n >= n_total:
        return list(range(n_total))
    return sorted({int(i) for i in np.linspace(0, n_total - 1, n).round()})


def load_images(
    data: str | os.PathLike, preprocess: Preprocess | dict, samples: int
) -> tuple[list[np.ndarray], list[str], dict]:
    """Up to ``samples`` preprocessed images (CHW float32), their names, and a description for the manifest."""
    if samples < 1:
        raise CalibrationError(f"the number of samples must be >= 1, got {samples}")
    pre = preprocess if isinstance(preprocess, Preprocess) else Preprocess.from_dict(dict(preprocess))
    root = Path(data)
    if not root.exists():
        raise CalibrationError(f"--data {root}: no such file or folder; expected a dataset or a folder of images")
    try:
        from aestheticnet.data.detect import open_dataset

        dataset = open_dataset(root, preprocess=pre)
    except (ValueError, FileNotFoundError):
        dataset = None
    if dataset is not None and len(dataset) > 0:
        picked = _spread(len(dataset), samples)
        images, names = [], []
        for i in picked:
            x, _, item_id = dataset[i]
            images.append(x.numpy().astype(np.float32, copy=False))
            names.append(str(item_id))
        kind = type(dataset).__name__
    else:
        files = sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise CalibrationError(
                f"--data {root}: neither a known dataset nor a folder with images ({', '.join(sorted(IMAGE_SUFFIXES))})"
            )
        picked = _spread(len(files), samples)
        # The scoring path's decoding (draft JPEG decoding, the pixel limit): calibration sees what `score` sees.
        images = [file_tensor(files[i], pre).numpy() for i in picked]
        names = [str(files[i].relative_to(root)) for i in picked]
        kind = "image folder"
    info = {
        "source": str(root),
        "kind": kind,
        "samples": len(images),
        "policy": pre.policy,
        "shapes": sorted({f"{x.shape[1]}x{x.shape[2]}" for x in images}),
    }
    return images, names, info


def save_npz(images: list[np.ndarray], path: str | os.PathLike) -> Path:
    """Images of different shapes in one ``.npz`` (keys ``img_0``, ``img_1``...), for a worker process."""
    np.savez(path, **{f"img_{i}": x for i, x in enumerate(images)})
    return Path(path)
