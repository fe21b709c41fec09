"""Any dataset described by a CSV file: a path column plus vote counts or a mean (and optional std).

* Vote columns (``vote_columns=["c1", ..., "c5"]``): one bucket per column, in the order given.
* Mean columns (``mean_column``, optional ``std_column``): a discretised Gaussian over ``num_buckets``
  buckets (:func:`aestheticnet.data.labels.discretised_gaussian`). The mean is mapped linearly from
  ``score_range`` (default ``(1, num_buckets)``) onto the bucket scale 1..N, and so is the std; rows without a
  std use ``default_std`` (in the file's score units).

The label columns are a :class:`CSVLabels`; the image root and the other columns a :class:`CSVLayout`.
Paths are relative to ``root`` (default: the CSV's folder). A path that is absolute or escapes the root
(``../..``, or a symlink leading out) is refused with :class:`PathOutsideRootError` naming the file and line:
a CSV is data, and data must not make us read arbitrary files.

:func:`koniq_csv` is the preset for KonIQ-10k (``image_name,c1..c5,c_total,MOS,SD,MOS_zscore``, 5 buckets).
"""

from __future__ import annotations

import csv
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from aestheticnet.data.base import AestheticDataset, Record, SkipReport
from aestheticnet.data.images import PathOutsideRootError, resolve_inside
from aestheticnet.data.labels import counts_to_distribution, discretised_gaussian
from aestheticnet.data.options import DatasetOptions
from aestheticnet.data.splits import assign_splits, split_name

__all__ = ["KONIQ_VOTES", "CSVDataset", "CSVLabels", "CSVLayout", "koniq_csv", "read_csv_rows"]

KONIQ_VOTES = ("c1", "c2", "c3", "c4", "c5")
DEFAULT_VAL_FRACTION = 0.1


def read_csv_rows(path: Path, needed: Sequence[str], delimiter: str = ",") -> list[tuple[int, dict[str, str]]]:
    """``(line number, row)`` pairs; an error naming the file if a needed column is absent."""
    with open(path, newline="", encoding="utf-8-sig") as fh:  # -sig: spreadsheets often write a BOM
        reader = csv.DictReader(fh, delimiter=delimiter)
        header = [h.strip() for h in (reader.fieldnames or [])]
        reader.fieldnames = header
        missing = [c for c in needed if c not in header]
        if missing:
            raise ValueError(f"{path}: missing column(s) {missing}; the header has {header}")
        rows = []
        for row in reader:
            if any((v or "").strip() for v in row.values()):
                rows.append((reader.line_num, {k: (v or "").strip() for k, v in row.items() if k is not None}))
        return rows


def _number(text: str, path: Path, lineno: int, column: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"{path}:{lineno}: column {column!r} holds {text!r}, not a number") from None


@dataclass(frozen=True)
class CSVLabels:
    """How a row becomes a distribution: vote columns, or a mean (and std) column mapped onto buckets 1..N.

    Args:
        vote_columns / mean_column, std_column: the label, exactly one of the two kinds.
        num_buckets: buckets for mean labels (default 10); must equal ``len(vote_columns)`` if given with votes.
            Once made, it holds the number of buckets either way.
        score_range: ``(low, high)`` of the mean column's scale (default ``(1, num_buckets)``).
        default_std: std for mean labels without a std column or value, in the file's score units.
    """

    vote_columns: tuple[str, ...] | None = None
    mean_column: str | None = None
    std_column: str | None = None
    num_buckets: int | None = None
    score_range: tuple[float, float] | None = None
    default_std: float = 1.0

    def __post_init__(self) -> None:
        if (self.vote_columns is None) == (self.mean_column is None):
            raise ValueError("CSVLabels: give exactly one of vote_columns or mean_column")
        if self.vote_columns is not None:
            votes = tuple(self.vote_columns)
            if not votes or (self.num_buckets is not None and self.num_buckets != len(votes)):
                raise ValueError(f"CSVLabels: {len(votes)} vote columns but num_buckets={self.num_buckets}")
            object.__setattr__(self, "vote_columns", votes)
            num_buckets = len(votes)
        else:
            num_buckets = int(self.num_buckets or 10)
        object.__setattr__(self, "num_buckets", num_buckets)
        low, high = self.scale
        if not high > low:
            raise ValueError(f"CSVLabels: score_range={self.score_range} needs low < high")

    @property
    def columns(self) -> list[str]:
        """The columns the labels are read from."""
        if self.vote_columns is not None:
            return list(self.vote_columns)
        return [self.mean_column, *([self.std_column] if self.std_column else [])]

    @property
    def scale(self) -> tuple[float, float]:
        """``(low, high)`` of the file's score scale."""
        return self.score_range if self.score_range is not None else (1.0, float(self.num_buckets))

    @property
    def to_buckets(self) -> float:
        """Bucket steps per unit of the file's score scale."""
        low, high = self.scale
        return (self.num_buckets - 1) / (high - low) if self.num_buckets > 1 else 1.0

    def distribution(
        self, row: dict[str, str], path: Path, lineno: int, item_id: str, skipped: SkipReport
    ) -> np.ndarray | None:
        """The row's label, or None (counted in ``skipped``) when it has no votes or no score."""
        if self.vote_columns is not None:
            return self._votes(row, path, lineno, item_id, skipped)
        column = self.mean_column
        mean = _number(row[column], path, lineno, column) if row[column] else math.nan
        if not math.isfinite(mean):
            skipped.add("missing score", item_id)
            return None
        std_text = row[self.std_column] if self.std_column else ""
        std = _number(std_text, path, lineno, self.std_column) if std_text else self.default_std
        if not (math.isfinite(std) and std >= 0):
            raise ValueError(f"{path}:{lineno}: std {std} must be finite and >= 0")
        to_buckets = self.to_buckets
        return discretised_gaussian(1.0 + (mean - self.scale[0]) * to_buckets, std * to_buckets, self.num_buckets)

    def _votes(
        self, row: dict[str, str], path: Path, lineno: int, item_id: str, skipped: SkipReport
    ) -> np.ndarray | None:
        counts = np.array([_number(row[c], path, lineno, c) for c in self.vote_columns])
        if (counts < 0).any() or not np.isfinite(counts).all():
            raise ValueError(f"{path}:{lineno}: vote counts must be finite and >= 0, got {counts}")
        if counts.sum() == 0:
            skipped.add("all-zero votes", item_id)
            return None
        return counts_to_distribution(counts)


@dataclass(frozen=True)
class CSVLayout:
    """Where a CSV's parts are.

    Args:
        root: image root the paths are relative to (default: the CSV's folder).
        path_column: column with the image path.
        id_column, group_column: item id (default: the path) and split group (default: the id).
        split_column: a column holding ``train``/``training``/``val``/``validation``/``test`` (an official
            split); ``split_file``: a second CSV keyed by ``path_column`` holding that column (default ``set``).
            Without either, a seeded split by group.
        delimiter: the field separator.
    """

    root: str | os.PathLike | None = None
    path_column: str = "path"
    id_column: str | None = None
    group_column: str | None = None
    split_column: str | None = None
    split_file: str | os.PathLike | None = None
    delimiter: str = ","

    @property
    def other_columns(self) -> list[str]:
        """The id, group and split columns the CSV must hold besides the path (a split file holds its own)."""
        split_column = self.split_column if self.split_file is None else None
        return [c for c in (self.id_column, self.group_column, split_column) if c]

    def ident(self, row: dict[str, str]) -> str:
        return row[self.id_column] if self.id_column else row[self.path_column]

    def group(self, row: dict[str, str]) -> str:
        return row[self.group_column] if self.group_column else self.ident(row)


@dataclass(frozen=True)
class _CSVFile:
    """One CSV with its labels and layout, the image root resolved: turns rows into records."""

    path: Path
    root: Path
    labels: CSVLabels
    layout: CSVLayout

    def rows(self) -> list[tuple[int, dict[str, str]]]:
        """``(line number, row)`` pairs; an error when a needed column is absent or no row follows the header."""
        needed = [self.layout.path_column, *self.labels.columns, *self.layout.other_columns]
        rows = read_csv_rows(self.path, needed, self.layout.delimiter)
        if not rows:
            raise ValueError(f"{self.path}: no rows under the header; add one line per image")
        return rows

    def splits(self, rows: list[tuple[int, dict[str, str]]], options: DatasetOptions) -> list[str | None]:
        """Each row's split: the official one (None for a path the split file does not list), else seeded."""
        official = self._official_splits(rows)
        if official is not None:
            return [official.get(row[self.layout.path_column]) for _, row in rows]
        if options.split == "test" and options.test_fraction == 0:
            raise ValueError(
                f"CSVDataset({self.path}): split='test' needs split_column/split_file or test_fraction > 0"
            )
        groups = assign_splits(
            [self.layout.group(row) for _, row in rows],
            val_fraction=options.val_fraction_or(DEFAULT_VAL_FRACTION),
            test_fraction=options.test_fraction,
            seed=options.seed,
        )
        return [groups[self.layout.group(row)] for _, row in rows]

    def records(
        self, rows: list[tuple[int, dict[str, str]]], splits: list[str | None], wanted: str
    ) -> tuple[list[Record], SkipReport]:
        """The records of the ``wanted`` split, and what was skipped."""
        skipped = SkipReport(self.path)
        records, seen = [], set()
        for (lineno, row), row_split in zip(rows, splits):
            rel = row[self.layout.path_column]
            if not rel:
                skipped.add("empty path", f"line {lineno}")
                continue
            real = self._image_file(rel, lineno)
            item_id = self.layout.ident(row)
            if item_id in seen:
                skipped.add("duplicate id", item_id)
                continue
            seen.add(item_id)
            dist = self.labels.distribution(row, self.path, lineno, item_id, skipped)
            if dist is None:
                continue
            if not real.is_file():
                skipped.add("missing image", item_id)
                continue
            if row_split is None:
                skipped.add("not in split file", item_id)
                continue
            if wanted in ("all", row_split):
                records.append(Record(item_id, rel, dist, self.layout.group(row)))
        return records, skipped

    def _official_splits(self, rows: list[tuple[int, dict[str, str]]]) -> dict[str, str] | None:
        """path -> train/val/test from the split column (in this CSV or in the split file), or None."""
        layout = self.layout
        if layout.split_file is None and layout.split_column is None:
            return None
        split_column = layout.split_column
        source = self.path
        if layout.split_file is not None:
            source = Path(layout.split_file)
            split_column = split_column or "set"
            rows = read_csv_rows(source, [layout.path_column, split_column], layout.delimiter)
        return {row[layout.path_column]: split_name(row[split_column], f"{source}:{n}") for n, row in rows}

    def _image_file(self, rel: str, lineno: int) -> Path:
        """The image file of a row; a path that is absolute or leads out of the root refuses the row."""
        try:
            real = resolve_inside(rel, self.root)
            if os.path.isabs(rel):  # even inside the root: absolute paths make the CSV unportable
                raise PathOutsideRootError(f"{rel!r} is absolute; paths must be relative to {str(self.root)!r}")
        except PathOutsideRootError as exc:
            raise PathOutsideRootError(f"{self.path}:{lineno}: refused row: {exc}") from None
        return real


class CSVDataset(AestheticDataset):
    """A CSV-described dataset; see the module docstring.

    Args:
        csv_path: the CSV file.
        options: split, seeded split sizes, preprocessing, augmentation (:class:`DatasetOptions`); the default
            ``val_fraction`` is 0.1. The seeded split applies without an official split (see ``layout``).
        labels: the label columns (:class:`CSVLabels`).
        layout: the image root and the path, id, group and split columns (:class:`CSVLayout`).
    """

    def __init__(
        self,
        csv_path: str | os.PathLike,
        options: DatasetOptions | None = None,
        *,
        labels: CSVLabels,
        layout: CSVLayout | None = None,
    ) -> None:
        csv_path = Path(csv_path)
        options = options if options is not None else DatasetOptions()
        layout = layout if layout is not None else CSVLayout()
        if not csv_path.is_file():
            raise FileNotFoundError(f"CSVDataset: {csv_path} not found")
        root = Path(layout.root) if layout.root is not None else csv_path.parent
        source = _CSVFile(csv_path, root, labels, layout)
        rows = source.rows()
        records, skipped = source.records(rows, source.splits(rows, options), options.split)
        super().__init__(
            root,
            records,
            labels.num_buckets,
            preprocess=options.preprocess,
            train=options.augments,
            seed=options.seed,
            max_pixels=options.max_pixels,
            skipped=skipped,
        )


def koniq_csv(
    csv_path: str | os.PathLike,
    options: DatasetOptions | None = None,
    *,
    root: str | os.PathLike | None = None,
    split_file: str | os.PathLike | None = None,
    labels: str = "votes",
    **layout: Any,
) -> CSVDataset:
    """KonIQ-10k through :class:`CSVDataset`.

    Args:
        csv_path: ``koniq10k_scores_and_distributions.csv`` (or ``koniq10k_distributions_sets.csv``, whose
            ``set`` column is then used as the official split).
        options: split, preprocessing, seed, ... (:class:`DatasetOptions`).
        root: image folder; default ``<csv folder>/1024x768`` when it exists, else the CSV's folder.
        split_file: a CSV with ``image_name`` and ``set`` columns (the official split).
        labels: ``"votes"`` (c1..c5 histograms, 5 buckets) or ``"mos"`` (MOS and SD on 1..5 -> Gaussian).
        layout: other :class:`CSVLayout` fields (``split_column``, ``delimiter``, ...).
    """
    csv_path = Path(csv_path)
    if root is None:
        root = csv_path.parent / "1024x768" if (csv_path.parent / "1024x768").is_dir() else csv_path.parent
    if labels == "votes":
        csv_labels = CSVLabels(vote_columns=KONIQ_VOTES)
    elif labels == "mos":
        csv_labels = CSVLabels(mean_column="MOS", std_column="SD", num_buckets=5, score_range=(1.0, 5.0))
    else:
        raise ValueError(f"koniq_csv: labels={labels!r} must be 'votes' or 'mos'")
    if split_file is None and "split_column" not in layout:
        with open(csv_path, newline="", encoding="utf-8-sig") as fh:
            header = [h.strip() for h in next(csv.reader(fh), [])]
        if "set" in header:
            layout["split_column"] = "set"
    csv_layout = CSVLayout(root=root, path_column="image_name", split_file=split_file, **layout)
    return CSVDataset(csv_path, options, labels=csv_labels, layout=csv_layout)
