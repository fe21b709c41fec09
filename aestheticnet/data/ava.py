"""AVA (Murray et al. 2012): ``AVA.txt`` vote histograms and ``images/<id>.jpg``.

``AVA.txt`` has 15 space-separated columns per row: index, image id, the number of votes for scores 1..10,
two semantic tag ids (0 = none) and the challenge id. Circulating copies miss about 20 images and hold a few
dozen corrupt ones, so rows with all-zero votes, missing images or ids in ``corrupt_ids`` are skipped and counted
(reported once, never fatal). A row with the wrong number of columns means the file is not AVA.txt (or is
damaged) and is an error naming the file and line.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from aestheticnet.data.base import AestheticDataset, DirectoryIndex, Record, SkipReport, text_rows
from aestheticnet.data.labels import counts_to_distribution
from aestheticnet.data.options import DatasetOptions
from aestheticnet.data.splits import assign_splits

__all__ = ["AVA", "read_ava_txt", "read_id_list"]

AVA_COLUMNS = 15
NUM_BUCKETS = 10
DEFAULT_VAL_FRACTION = 0.05

# (line number, image id, vote counts for scores 1..10, challenge id)
AVARow = tuple[int, str, np.ndarray, str]


def read_ava_txt(path: str | os.PathLike) -> list[AVARow]:
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


@dataclass(frozen=True)
class _Grouping:
    """Which split each image falls in: the official test ids, the others by a seeded split of their groups."""

    by_challenge: bool
    test_ids: frozenset[str]
    groups: dict[str, str]

    @classmethod
    def draw(cls, rows: list[AVARow], group_by: str, test_ids: set[str], options: DatasetOptions) -> _Grouping:
        by_challenge = group_by == "challenge"
        # Drawn from AVA.txt alone (before checking files), so missing images move nothing.
        free = [challenge if by_challenge else i for _, i, _, challenge in rows if i not in test_ids]
        groups = assign_splits(
            free,
            val_fraction=options.val_fraction_or(DEFAULT_VAL_FRACTION),
            test_fraction=options.test_fraction,
            seed=options.seed,
        )
        return cls(by_challenge, frozenset(test_ids), groups)

    def group(self, image_id: str, challenge: str) -> str:
        return challenge if self.by_challenge else image_id

    def split_of(self, image_id: str, challenge: str) -> str:
        return "test" if image_id in self.test_ids else self.groups[self.group(image_id, challenge)]


def _loadable_rows(
    rows: list[AVARow], corrupt: set[str], images: DirectoryIndex, skipped: SkipReport
) -> Iterator[tuple[str, np.ndarray, str, str]]:
    """``(image id, counts, challenge, file name)`` of every row that can be loaded; the others go to ``skipped``."""
    seen = set()
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
        name = images.find(f"{image_id}.jpg")
        if name is None:
            skipped.add("missing image", image_id)
            continue
        yield image_id, counts, challenge, name


def _official_test_list(
    root: Path, test_list: str | os.PathLike | None, options: DatasetOptions
) -> str | os.PathLike | None:
    """The test list to use (``"auto"``: ``root/generic_test.jpgl`` when present); refuses one beside a test
    fraction, and a test split with neither."""
    if test_list == "auto":
        auto = root / "generic_test.jpgl"
        test_list = auto if auto.is_file() else None
    if test_list is not None and options.test_fraction > 0:
        raise ValueError(
            f"AVA: test_fraction={options.test_fraction} given together with the official test list {test_list}; "
            "pass test_list=None for a seeded test split, or test_fraction=0 to use the list"
        )
    return test_list


class AVA(AestheticDataset):
    """The AVA dataset.

    Args:
        root: folder holding ``AVA.txt`` and ``images/``.
        options: split, seeded split sizes, preprocessing, augmentation (:class:`DatasetOptions`); the default
            ``val_fraction`` is 0.05, by group; ``test_fraction`` only without a test list.
        test_list: official test ids (``generic_test.jpgl``). ``"auto"`` uses ``root/generic_test.jpgl`` when
            present; ``None`` ignores it. With a list, ``test`` is exactly those ids and ``val_fraction`` of the
            rest (by group) is validation.
        corrupt_ids: ids to skip (an iterable, or a file with one id per line).
        group_by: ``"id"`` (each image its own group, as AVA's official split) or ``"challenge"`` (keeps a
            photo challenge, or a synthetic reference photo stored in that column, on one side of the split).
        annotations, images_dir: the annotation file and the image folder, relative to ``root``.
    """

    def __init__(
        self,
        root: str | os.PathLike,
        options: DatasetOptions | None = None,
        *,
        test_list: str | os.PathLike | None = "auto",
        corrupt_ids: Iterable[str | int] | str | os.PathLike = (),
        group_by: str = "id",
        annotations: str = "AVA.txt",
        images_dir: str = "images",
    ) -> None:
        root = Path(root)
        options = options if options is not None else DatasetOptions()
        if group_by not in ("id", "challenge"):
            raise ValueError(f"AVA: group_by={group_by!r} must be 'id' or 'challenge'")
        txt = root / annotations
        if not txt.is_file():
            raise FileNotFoundError(f"AVA: annotation file {txt} not found; root must hold {annotations}")
        test_list = _official_test_list(root, test_list, options)
        rows = read_ava_txt(txt)
        test_ids = set(read_id_list(test_list)) if test_list is not None else set()
        if options.split == "test" and test_list is None and options.test_fraction == 0:
            raise ValueError(f"AVA: split='test' needs test_list (generic_test.jpgl) or test_fraction > 0 ({root})")
        self.test_list = test_list
        grouping = _Grouping.draw(rows, group_by, test_ids, options)
        skipped = SkipReport(txt)
        loadable = _loadable_rows(rows, _corrupt_set(corrupt_ids), DirectoryIndex(root / images_dir), skipped)
        records = [
            Record(
                image_id, f"{images_dir}/{name}", counts_to_distribution(counts), grouping.group(image_id, challenge)
            )
            for image_id, counts, challenge, name in loadable
            if options.split in ("all", grouping.split_of(image_id, challenge))
        ]
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
