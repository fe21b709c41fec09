"""TID2013 (Ponomarenko et al.): ``mos_with_names.txt`` and ``distorted_images/``.

Labels. TID2013 gives one MOS per image on 0..9, not a vote histogram. It becomes a 10-bucket distribution by
this rule (configurable through ``sigma``): a Gaussian centred at ``MOS + 1`` (so 0..9 maps onto scores 1..10)
with standard deviation ``sigma``, integrated over the buckets 1..10 with open-ended outer buckets
(:func:`aestheticnet.data.labels.discretised_gaussian`). ``sigma`` defaults to 1.0, about the raters' spread
seen in AVA. ``mos_std.txt`` is *not* used as ``sigma``: it is the uncertainty of the mean (<= 0.3), not the
spread of individual ratings, and would give near one-hot targets. It is kept in ``mos_std`` for reference.

File names are matched case-insensitively (the list says ``i01_01_1.bmp``, disks hold ``I01_01_1.BMP``); splits
go by reference image (group ``I01`` ... ``I25``) so the distortions of one photo stay on one side.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from aestheticnet.data.base import AestheticDataset, DirectoryIndex, Record, SkipReport, text_rows
from aestheticnet.data.labels import discretised_gaussian
from aestheticnet.data.options import DatasetOptions
from aestheticnet.data.splits import assign_splits

__all__ = ["TID2013", "reference_id"]

NUM_BUCKETS = 10
DEFAULT_VAL_FRACTION = 0.2
MOS_RANGE = (0.0, 9.0)
_REF = re.compile(r"^(i\d+)(?:_|\.|$)", re.IGNORECASE)


def reference_id(filename: str) -> str:
    """``i01_01_1.bmp`` -> ``I01``; names that do not follow the pattern are their own group (upper-case stem)."""
    match = _REF.match(filename)
    return (match.group(1) if match else Path(filename).stem).upper()


def _read_mos(path: Path) -> list[tuple[int, float, str]]:
    rows = []
    for lineno, line, cols in text_rows(path):
        if len(cols) != 2:
            raise ValueError(f"{path}:{lineno}: expected 'MOS filename', found {len(cols)} columns: {line.strip()!r}")
        try:
            mos = float(cols[0])
        except ValueError:
            raise ValueError(f"{path}:{lineno}: MOS {cols[0]!r} is not a number") from None
        if not (math.isfinite(mos) and MOS_RANGE[0] <= mos <= MOS_RANGE[1]):
            raise ValueError(f"{path}:{lineno}: MOS {mos} outside TID2013's range {MOS_RANGE}")
        rows.append((lineno, mos, cols[1]))
    return rows


def _read_std(path: Path, expected: int) -> np.ndarray:
    values = []
    for lineno, line, cols in text_rows(path):
        try:
            values.append(float(cols[0]))
        except ValueError:
            raise ValueError(f"{path}:{lineno}: {line.strip()!r} is not a number") from None
    if len(values) != expected:
        raise ValueError(f"{path}: {len(values)} values but the MOS file has {expected} rows; they must align")
    return np.asarray(values, dtype=np.float64)


def _image_folders(root: Path, top: DirectoryIndex, images_dir: str) -> list[tuple[str, DirectoryIndex]]:
    """``(folder name as on disk, its index)``: the distorted images first, the references as a fallback."""
    folders = []
    for wanted in (images_dir, "reference_images"):
        real_dir = top.find(wanted)
        if real_dir is not None and (root / real_dir).is_dir():
            folders.append((real_dir, DirectoryIndex(root / real_dir)))
    if not folders:
        raise FileNotFoundError(f"TID2013: {root} holds neither {images_dir}/ nor reference_images/")
    return folders


def _found_rows(
    rows: list[tuple[int, float, str]], folders: list[tuple[str, DirectoryIndex]], skipped: SkipReport
) -> Iterator[tuple[int, float, str, str]]:
    """``(row index, MOS, name, path under the root)`` of every row whose image is on disk; the others go to
    ``skipped``."""
    seen = set()
    for i, (_, value, name) in enumerate(rows):
        key = name.lower()
        if key in seen:
            skipped.add("duplicate name", name)
            continue
        seen.add(key)
        found = next(((folder, real) for folder, index in folders if (real := index.find(name))), None)
        if found is None:
            skipped.add("missing image", name)
            continue
        yield i, value, name, f"{found[0]}/{found[1]}"


class TID2013(AestheticDataset):
    """The TID2013 dataset (also reads TID2008 and anything else in the same layout).

    Args:
        root: folder holding ``mos_with_names.txt`` (any case), ``distorted_images/`` and optionally
            ``mos_std.txt`` and ``reference_images/``.
        options: split, seeded split sizes, preprocessing, augmentation (:class:`DatasetOptions`); the split is
            by reference image, the default ``val_fraction`` 0.2, and ``split="test"`` needs a ``test_fraction``.
        sigma: spread of the Gaussian label in score units (see the module docstring).
        mos_file, std_file, images_dir: the annotation files and the image folder, relative to ``root``.
    """

    def __init__(
        self,
        root: str | os.PathLike,
        options: DatasetOptions | None = None,
        *,
        sigma: float = 1.0,
        mos_file: str = "mos_with_names.txt",
        std_file: str = "mos_std.txt",
        images_dir: str = "distorted_images",
    ) -> None:
        root = Path(root)
        options = options if options is not None else DatasetOptions()
        if not (math.isfinite(sigma) and sigma > 0):
            raise ValueError(f"TID2013: sigma={sigma} must be a positive number (the label spread in score units)")
        if options.split == "test" and options.test_fraction == 0:
            raise ValueError("TID2013: split='test' needs test_fraction > 0 (there is no official test list)")
        top = DirectoryIndex(root)
        mos_name = top.find(mos_file)
        if mos_name is None:
            raise FileNotFoundError(f"TID2013: {root} holds no {mos_file}")
        rows = _read_mos(root / mos_name)
        std_name = top.find(std_file)
        all_std = _read_std(root / std_name, len(rows)) if std_name else None
        groups = assign_splits(
            [reference_id(name) for _, _, name in rows],
            val_fraction=options.val_fraction_or(DEFAULT_VAL_FRACTION),
            test_fraction=options.test_fraction,
            seed=options.seed,
        )
        folders = _image_folders(root, top, images_dir)
        skipped = SkipReport(root / mos_name)
        kept = [
            (i, value, name, path)
            for i, value, name, path in _found_rows(rows, folders, skipped)
            if options.split in ("all", groups[reference_id(name)])
        ]
        records = [
            Record(name, path, discretised_gaussian(value + 1.0, sigma, NUM_BUCKETS, low=1.0), reference_id(name))
            for _, value, name, path in kept
        ]
        self.sigma = sigma
        self.mos = np.asarray([value for _, value, _, _ in kept], dtype=np.float64)  # aligned with records, on 0..9
        self.mos_std = (
            np.asarray([all_std[i] for i, _, _, _ in kept], dtype=np.float64) if all_std is not None else None
        )
        super().__init__(
            root,
            records,
            NUM_BUCKETS,
            preprocess=options.preprocess,
            train=options.augments,
            seed=options.seed,
            max_pixels=options.max_pixels,
            skipped=skipped,
        )
