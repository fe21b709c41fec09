"""Any dataset described by a CSV file: a path column plus vote counts or a mean (and optional std).

* Vote columns (``vote_columns=["c1", ..., "c5"]``): one bucket per column, in the order given.
* Mean columns (``mean_column``, optional ``std_column``): a discretised Gaussian over ``num_buckets``
  buckets (:func:`aestheticnet.data.labels.discretised_gaussian`). The mean is mapped linearly from
  ``score_range`` (default ``(1, num_buckets)``) onto the bucket scale 1..N, and so is the std; rows without a
  std use ``default_std`` (in the file's score units).

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

import numpy as np

from aestheticnet.data.base import AestheticDataset, Record, SkipReport, augments
from aestheticnet.data.images import DEFAULT_MAX_PIXELS, PathOutsideRootError, resolve_inside
from aestheticnet.data.labels import counts_to_distribution, discretised_gaussian
from aestheticnet.data.preprocess import Preprocess
from aestheticnet.data.splits import assign_splits, check_split, split_name

__all__ = ["CSVDataset", "KONIQ_VOTES", "koniq_csv", "read_csv_rows"]

KONIQ_VOTES = ("c1", "c2", "c3", "c4", "c5")


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
class _Labels:
    """How a row becomes a distribution: vote columns, or a mean (and std) mapped from ``low``.. onto 1..N."""

    num_buckets: int
    vote_columns: list[str] | None
    mean_column: str | None
    std_column: str | None
    default_std: float
    low: float
    to_buckets: float  # bucket steps per unit of the file's score scale

    @classmethod
    def check(cls, where: str, vote_columns, mean_column, std_column, num_buckets, score_range, default_std):
        if (vote_columns is None) == (mean_column is None):
            raise ValueError(f"{where}: give exactly one of vote_columns or mean_column")
        if vote_columns is not None:
            vote_columns = list(vote_columns)
            if not vote_columns or (num_buckets is not None and num_buckets != len(vote_columns)):
                raise ValueError(f"{where}: {len(vote_columns)} vote columns but num_buckets={num_buckets}")
            num_buckets = len(vote_columns)
        num_buckets = int(num_buckets or 10)
        low, high = score_range if score_range is not None else (1.0, float(num_buckets))
        if not high > low:
            raise ValueError(f"{where}: score_range={score_range} needs low < high")
        to_buckets = (num_buckets - 1) / (high - low) if num_buckets > 1 else 1.0
        return cls(num_buckets, vote_columns, mean_column, std_column, default_std, low, to_buckets)

    def distribution(
        self, row: dict[str, str], path: Path, lineno: int, item_id: str, skipped: SkipReport
    ) -> np.ndarray | None:
        """The row's label, or None (counted in ``skipped``) when it has no votes or no score."""
        if self.vote_columns is not None:
            counts = np.array([_number(row[c], path, lineno, c) for c in self.vote_columns])
            if (counts < 0).any() or not np.isfinite(counts).all():
                raise ValueError(f"{path}:{lineno}: vote counts must be finite and >= 0, got {counts}")
            if counts.sum() == 0:
                skipped.add("all-zero votes", item_id)
                return None
            return counts_to_distribution(counts)
        column = self.mean_column
        mean = _number(row[column], path, lineno, column) if row[column] else math.nan
        if not math.isfinite(mean):
            skipped.add("missing score", item_id)
            return None
        std_text = row[self.std_column] if self.std_column else ""
        std = _number(std_text, path, lineno, self.std_column) if std_text else self.default_std
        if not (math.isfinite(std) and std >= 0):
            raise ValueError(f"{path}:{lineno}: std {std} must be finite and >= 0")
        return discretised_gaussian(1.0 + (mean - self.low) * self.to_buckets, std * self.to_buckets, self.num_buckets)


@dataclass(frozen=True)
class _Columns:
    """Where a row's image, id and split group are."""

    csv_path: Path
    root: Path
    path_column: str
    id_column: str | None
    group_column: str | None

    def ident(self, row: dict[str, str]) -> str:
        return row[self.id_column] if self.id_column else row[self.path_column]

    def group(self, row: dict[str, str]) -> str:
        return row[self.group_column] if self.group_column else self.ident(row)

    def resolve(self, rel: str, lineno: int) -> Path:
        """The image file of a row; a path that is absolute or leads out of the root refuses the row."""
        try:
            real = resolve_inside(rel, self.root)
            if os.path.isabs(rel):  # even inside the root: absolute paths make the CSV unportable
                raise PathOutsideRootError(f"{rel!r} is absolute; paths must be relative to {str(self.root)!r}")
        except PathOutsideRootError as exc:
            raise PathOutsideRootError(f"{self.csv_path}:{lineno}: refused row: {exc}") from None
        return real


class CSVDataset(AestheticDataset):
    """A CSV-described dataset; see the module docstring.

    Args:
        csv_path: the CSV file.
        root: image root the paths are relative to (default: the CSV's folder).
        path_column: column with the image path.
        vote_columns / mean_column, std_column: the label, exactly one of the two kinds.
        num_buckets: buckets for mean labels (default 10); must equal ``len(vote_columns)`` if given with votes.
        score_range: ``(low, high)`` of the mean column's scale (default ``(1, num_buckets)``).
        default_std: std for mean labels without a std column or value, in the file's score units.
        id_column, group_column: item id (default: the path) and split group (default: the id).
        split_column: a column holding ``train``/``training``/``val``/``validation``/``test`` (an official
            split); ``split_file``: a second CSV keyed by ``path_column`` holding that column. Without either,
            a seeded split by group with ``val_fraction`` / ``test_fraction``.
    """

    def __init__(
        self,
        csv_path: str | os.PathLike,
        *,
        root: str | os.PathLike | None = None,
        path_column: str = "path",
        vote_columns: Sequence[str] | None = None,
        mean_column: str | None = None,
        std_column: str | None = None,
        num_buckets: int | None = None,
        score_range: tuple[float, float] | None = None,
        default_std: float = 1.0,
        id_column: str | None = None,
        group_column: str | None = None,
        split_column: str | None = None,
        split_file: str | os.PathLike | None = None,
        split: str = "all",
        val_fraction: float = 0.1,
        test_fraction: float = 0.0,
        seed: int = 0,
        delimiter: str = ",",
        preprocess: Preprocess | None = None,
        train: bool | None = None,
        max_pixels: int | None = DEFAULT_MAX_PIXELS,
    ) -> None:
        csv_path = Path(csv_path)
        root = Path(root) if root is not None else csv_path.parent
        check_split(split, f"CSVDataset({csv_path})")
        labels = _Labels.check(
            f"CSVDataset({csv_path})", vote_columns, mean_column, std_column, num_buckets, score_range, default_std
        )
        if not csv_path.is_file():
            raise FileNotFoundError(f"CSVDataset: {csv_path} not found")
        columns = _Columns(csv_path, root, path_column, id_column, group_column)
        needed = [path_column, *(labels.vote_columns or [mean_column])]
        needed += [c for c in (std_column, id_column, group_column) if c]
        if split_column and split_file is None:  # with a split file the column lives in that file
            needed.append(split_column)
        rows = read_csv_rows(csv_path, needed, delimiter)
        if not rows:
            raise ValueError(f"{csv_path}: no rows under the header; add one line per image")
        official = self._official_splits(csv_path, rows, path_column, split_column, split_file, delimiter)
        if split == "test" and official is None and test_fraction == 0:
            raise ValueError(f"CSVDataset({csv_path}): split='test' needs split_column/split_file or test_fraction > 0")
        groups = assign_splits(
            [columns.group(r) for _, r in rows], val_fraction=val_fraction, test_fraction=test_fraction, seed=seed
        )
        skipped = SkipReport(csv_path)
        records, seen = [], set()
        for lineno, row in rows:
            rel = row[path_column]
            if not rel:
                skipped.add("empty path", f"line {lineno}")
                continue
            real = columns.resolve(rel, lineno)
            item_id = columns.ident(row)
            if item_id in seen:
                skipped.add("duplicate id", item_id)
                continue
            seen.add(item_id)
            dist = labels.distribution(row, csv_path, lineno, item_id, skipped)
            if dist is None:
                continue
            if not real.is_file():
                skipped.add("missing image", item_id)
                continue
            row_split = official.get(rel) if official is not None else groups[columns.group(row)]
            if row_split is None:
                skipped.add("not in split file", item_id)
                continue
            if split in ("all", row_split):
                records.append(Record(item_id, rel, dist, columns.group(row)))
        super().__init__(
            root,
            records,
            labels.num_buckets,
            preprocess=preprocess,
            train=augments(split, train),
            seed=seed,
            max_pixels=max_pixels,
            skipped=skipped,
        )

    @staticmethod
    def _official_splits(csv_path, rows, path_column, split_column, split_file, delimiter) -> dict[str, str] | None:
        """path -> train/val/test from ``split_column`` (in this CSV or in ``split_file``), or None."""
        if split_file is None and split_column is None:
            return None
        if split_file is not None:
            source = Path(split_file)
            split_column = split_column or "set"
            rows = read_csv_rows(source, [path_column, split_column], delimiter)
        else:
            source = csv_path
        return {row[path_column]: split_name(row[split_column], f"{source}:{n}") for n, row in rows}


def koniq_csv(
    csv_path: str | os.PathLike,
    *,
    root: str | os.PathLike | None = None,
    split_file: str | os.PathLike | None = None,
    labels: str = "votes",
    **kwargs,
) -> CSVDataset:
    """KonIQ-10k through :class:`CSVDataset`.

    Args:
        csv_path: ``koniq10k_scores_and_distributions.csv`` (or ``koniq10k_distributions_sets.csv``, whose
            ``set`` column is then used as the official split).
        root: image folder; default ``<csv folder>/1024x768`` when it exists, else the CSV's folder.
        split_file: a CSV with ``image_name`` and ``set`` columns (the official split).
        labels: ``"votes"`` (c1..c5 histograms, 5 buckets) or ``"mos"`` (MOS and SD on 1..5 -> Gaussian).
        kwargs: passed to :class:`CSVDataset` (split, preprocess, seed, ...).
    """
    csv_path = Path(csv_path)
    if root is None:
        root = csv_path.parent / "1024x768" if (csv_path.parent / "1024x768").is_dir() else csv_path.parent
    if labels == "votes":
        label_kwargs = {"vote_columns": KONIQ_VOTES}
    elif labels == "mos":
        label_kwargs = {"mean_column": "MOS", "std_column": "SD", "num_buckets": 5, "score_range": (1.0, 5.0)}
    else:
        raise ValueError(f"koniq_csv: labels={labels!r} must be 'votes' or 'mos'")
    if split_file is None and "split_column" not in kwargs:
        with open(csv_path, newline="", encoding="utf-8-sig") as fh:
            header = [h.strip() for h in next(csv.reader(fh), [])]
        if "set" in header:
            kwargs["split_column"] = "set"
    return CSVDataset(csv_path, root=root, path_column="image_name", split_file=split_file, **label_kwargs, **kwargs)
