"""AVA (Murray et al. 2012): ``AVA.txt`` vote histograms and ``images/<id>.jpg``.

``AVA.txt`` has 15 space-separated columns per row: index, image id, the number of votes for scores 1..10,
two semantic tag ids (0 = none) and the challenge id. Circulating copies miss about 20 images and hold a few
dozen corrupt ones, so rows with all-zero votes, missing images or ids in ``corrupt_ids`` are skipped and counted
(reported once, never fatal). A row with the wrong number of columns means the file is not AVA.txt (or is
damaged) and is an error naming the file and line.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from aestheticnet.data.base import AestheticDataset, DirectoryIndex, Record, SkipReport, augments, text_rows
from aestheticnet.data.images import DEFAULT_MAX_PIXELS
from aestheticnet.data.labels import counts_to_distribution
from aestheticnet.data.preprocess import Preprocess
from aestheticnet.data.splits import assign_splits, check_split

__all__ = ["AVA", "read_ava_txt", "read_id_list"]

AVA_COLUMNS = 15
NUM_BUCKETS = 10


def read_ava_txt(path: str | os.PathLike) -> list[tuple[int, str, np.ndarray, str]]:
    """Parse AVA.txt into ``(line number, image id, counts[10], challenge id)`` rows; strict about the format."""
    rows = []
    for lineno, line, cols in text_rows(path):
        if len(cols) != AVA_COLUMNS:
            raise ValueError(
                f"{path}:{lineno}: expected {AVA_COLUMNS} space-separated columns (index, image id, "
                f"10 vote counts, 2 tag ids, challenge id), found {len(cols)}: {line.strip()[:120]!r}"
            )
        try:
            counts = np.array([int(c) for c in cols[2:12]], dtype=np.int64)
        except ValueError:
            message = f"{path}:{lineno}: vote counts (columns 3-12) must be integers, got {cols[2:12]}"
            raise ValueError(message) from None
        if (counts < 0).any():
            raise ValueError(f"{path}:{lineno}: negative vote count in {cols[2:12]}")
        rows.append((lineno, cols[1], counts, cols[14]))
    return rows


def read_id_list(path: str | os.PathLike) -> list[str]:
    """One image id per line (``generic_test.jpgl`` style); a ``.jpg`` suffix is tolerated."""
    ids = []
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            item = line.strip()
            if item:
                ids.append(item[:-4] if item.lower().endswith(".jpg") else item)
    return ids


def _corrupt_set(corrupt_ids: Iterable[str | int] | str | os.PathLike) -> set[str]:
    if isinstance(corrupt_ids, (str, os.PathLike)):  # a file of ids, one per line
        return set(read_id_list(corrupt_ids))
    return {str(i) for i in corrupt_ids}


class AVA(AestheticDataset):
    """The AVA dataset.

    Args:
        root: folder holding ``AVA.txt`` and ``images/``.
        split: ``all``, ``train``, ``val`` or ``test``.
        preprocess: the preprocessing policy (default fixed 224).
        train: augment; default: only for ``split="train"``.
        test_list: official test ids (``generic_test.jpgl``). ``"auto"`` uses ``root/generic_test.jpgl`` when
            present; ``None`` ignores it. With a list, ``test`` is exactly those ids and ``val_fraction`` of the
            rest (by group) is validation.
        val_fraction, test_fraction: seeded split sizes, by group; ``test_fraction`` only without a test list.
        seed: split and augmentation seed.
        corrupt_ids: ids to skip (an iterable, or a file with one id per line).
        group_by: ``"id"`` (each image its own group, as AVA's official split) or ``"challenge"`` (keeps a
            photo challenge, or a synthetic reference photo stored in that column, on one side of the split).
    """

    def __init__(
        self,
        root: str | os.PathLike,
        *,
        split: str = "all",
        preprocess: Preprocess | None = None,
        train: bool | None = None,
        test_list: str | os.PathLike | None = "auto",
        val_fraction: float = 0.05,
        test_fraction: float = 0.0,
        seed: int = 0,
        corrupt_ids: Iterable[str | int] | str | os.PathLike = (),
        group_by: str = "id",
        annotations: str = "AVA.txt",
        images_dir: str = "images",
        max_pixels: int | None = DEFAULT_MAX_PIXELS,
    ) -> None:
        root = Path(root)
        check_split(split, "AVA")
        if group_by not in ("id", "challenge"):
            raise ValueError(f"AVA: group_by={group_by!r} must be 'id' or 'challenge'")
        txt = root / annotations
        if not txt.is_file():
            raise FileNotFoundError(f"AVA: annotation file {txt} not found; root must hold {annotations}")
        if test_list == "auto":
            auto = root / "generic_test.jpgl"
            test_list = auto if auto.is_file() else None
        if test_list is not None and test_fraction > 0:
            raise ValueError(
                f"AVA: test_fraction={test_fraction} given together with the official test list {test_list}; "
                "pass test_list=None for a seeded test split, or test_fraction=0 to use the list"
            )
        rows = read_ava_txt(txt)
        test_ids = set(read_id_list(test_list)) if test_list is not None else set()
        if split == "test" and test_list is None and test_fraction == 0:
            raise ValueError(f"AVA: split='test' needs test_list (generic_test.jpgl) or test_fraction > 0 ({root})")
        self.test_list = test_list

        def group_of(image_id: str, challenge: str) -> str:
            return image_id if group_by == "id" else challenge

        # The split is computed from AVA.txt alone (before checking files), so missing images move nothing.
        free_groups = [group_of(i, c) for _, i, _, c in rows if i not in test_ids]
        groups = assign_splits(free_groups, val_fraction=val_fraction, test_fraction=test_fraction, seed=seed)

        corrupt = _corrupt_set(corrupt_ids)
        index = DirectoryIndex(root / images_dir)
        skipped = SkipReport(txt)
        records, seen = [], set()
        for _, image_id, counts, challenge in rows:
            if image_id in seen:
                skipped.add("duplicate id", image_id)
                continue
            seen.add(image_id)
            if image_id in corrupt:
                skipped.add("known corrupt", image_id)
                continue
            if counts.sum() == 0:
                skipped.add("all-zero votes", image_id)
                continue
            name = index.find(f"{image_id}.jpg")
            if name is None:
                skipped.add("missing image", image_id)
                continue
            group = group_of(image_id, challenge)
            row_split = "test" if image_id in test_ids else groups[group]
            if split in ("all", row_split):
                records.append(Record(image_id, f"{images_dir}/{name}", counts_to_distribution(counts), group))
        super().__init__(
            root,
            records,
            NUM_BUCKETS,
            preprocess=preprocess,
            train=augments(split, train),
            seed=seed,
            max_pixels=max_pixels,
            skipped=skipped,
        )
