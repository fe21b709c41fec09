"""``open_dataset``: pick the loader from what a folder (or file) holds, so commands take one ``--data PATH``."""

from __future__ import annotations

import csv
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from aestheticnet.data.ava import AVA
from aestheticnet.data.base import AestheticDataset, DirectoryIndex
from aestheticnet.data.csv_dataset import KONIQ_VOTES, CSVDataset, CSVLabels, CSVLayout, koniq_csv
from aestheticnet.data.options import DatasetOptions, pop_fields
from aestheticnet.data.tid2013 import TID2013

__all__ = ["FORMATS", "detect_format", "open_dataset"]

FORMATS = ("ava", "tid2013", "csv", "koniq")
_LOOKED_FOR = "AVA.txt (AVA), mos_with_names.txt (TID2013), one *.csv file (CSV, KonIQ-10k)"


def _csv_header(path: Path) -> list[str]:
    with open(path, newline="", encoding="utf-8-sig") as fh:
        return [h.strip() for h in next(csv.reader(fh), [])]


def _is_koniq(path: Path) -> bool:
    header = _csv_header(path)
    return "image_name" in header and all(c in header for c in KONIQ_VOTES)


def detect_format(path: str | os.PathLike) -> tuple[str, Path]:
    """``(format, path to open)`` for a dataset folder or annotation file; a clear error if unrecognised."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"open_dataset: {path} does not exist")
    if path.is_file():
        name = path.name.lower()
        if name == "ava.txt":
            return "ava", path.parent
        if name == "mos_with_names.txt":
            return "tid2013", path.parent
        if name.endswith(".csv"):
            return ("koniq" if _is_koniq(path) else "csv"), path
        raise ValueError(f"open_dataset: cannot tell the format of {path}; looked for {_LOOKED_FOR}")
    index = DirectoryIndex(path)
    # AVA first: a folder written in both layouts (the synthetic default) keeps its vote histograms that way.
    if index.find("AVA.txt"):
        return "ava", path
    if index.find("mos_with_names.txt"):
        return "tid2013", path
    csvs = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() == ".csv")
    if len(csvs) == 1:
        return ("koniq" if _is_koniq(csvs[0]) else "csv"), csvs[0]
    # A KonIQ-10k folder may hold the scores file and the one with the official `set` column: prefer the latter.
    koniq = [p for p in csvs if _is_koniq(p)]
    with_sets = [p for p in koniq if "set" in _csv_header(p)]
    if len(with_sets) == 1 or (len(koniq) == 1 and not with_sets):
        return "koniq", (with_sets or koniq)[0]
    found = sorted(p.name for p in path.iterdir())[:20]
    if csvs:
        raise ValueError(f"open_dataset: {path} holds several CSV files {[p.name for p in csvs]}; pass the one to use")
    raise ValueError(f"open_dataset: {path} holds no known dataset; looked for {_LOOKED_FOR}; found {found}")


def open_dataset(path_or_spec: str | os.PathLike | Mapping[str, Any], **kwargs: Any) -> AestheticDataset:
    """Open a dataset by path, detecting the format, or from a spec ``{"format": ..., "path": ..., **options}``.

    ``kwargs`` are the fields of :class:`DatasetOptions` (split, preprocess, seed, ...) and the loader's own
    keywords (a generic CSV's :class:`CSVLabels` and :class:`CSVLayout` fields); ``format=`` forces one of
    :data:`FORMATS`. A generic CSV needs its columns: ``path_column`` and ``vote_columns`` or ``mean_column``.
    """
    if isinstance(path_or_spec, Mapping):
        spec = dict(path_or_spec)
        if "path" not in spec:
            raise ValueError(f"open_dataset: a spec needs a 'path' key, got keys {sorted(spec)}")
        path_or_spec = spec.pop("path")
        kwargs = {**spec, **kwargs}
    fmt = kwargs.pop("format", None)
    if fmt is None:
        fmt, target = detect_format(path_or_spec)
    else:
        fmt, target = str(fmt).lower(), Path(path_or_spec)
        if fmt not in FORMATS:
            raise ValueError(f"open_dataset: format={fmt!r} is not one of {FORMATS}")
        if fmt in ("ava", "tid2013") and target.is_file():
            target = target.parent
    options = DatasetOptions(**pop_fields(DatasetOptions, kwargs))
    if fmt == "ava":
        return AVA(target, options, **kwargs)
    if fmt == "tid2013":
        return TID2013(target, options, **kwargs)
    if fmt == "koniq":
        return koniq_csv(target, options, **kwargs)
    if "vote_columns" not in kwargs and "mean_column" not in kwargs:
        raise ValueError(
            f"{target} is a generic CSV (header {_csv_header(target)}); say which columns hold the labels: "
            "--vote-columns c1,c2,... or --mean-column COLUMN (and --path-column COLUMN) on the command line, the "
            "keys vote_columns / mean_column / path_column in a config file, or the same keyword arguments"
        )
    labels = CSVLabels(**pop_fields(CSVLabels, kwargs))
    return CSVDataset(target, options, labels=labels, layout=CSVLayout(**kwargs))
