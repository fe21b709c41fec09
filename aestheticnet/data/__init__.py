"""Datasets and images: the AVA, TID2013 and CSV loaders (``open_dataset`` tells them apart), preprocessing, the
synthetic default dataset (built from photos shipped with scikit-image and the user's own), the loaders' options,
splits and quality ladders.

The synthetic dataset's builder, splits, distortions and image decoding import no torch: the builder's worker
processes start without it. The names that need torch (the loaders, preprocessing, ladders) are imported when
first used.
"""

from __future__ import annotations

from aestheticnet.data.distortions import DISTORTIONS, PHOTOS
from aestheticnet.data.images import IMAGE_SUFFIXES, ImageDecodeError, load_image
from aestheticnet.data.splits import SPLITS, assign_splits
from aestheticnet.data.synthetic import (
    SynthInfo,
    build_from_photos,
    build_synthetic,
    default_synthetic_dir,
    ensure_synthetic,
)
from aestheticnet.data.synthetic_config import SynthConfig
from aestheticnet.data.user_photos import TooFewPhotosError, scan_photos
from aestheticnet.lazy import lazy_attributes

__all__ = [
    "AVA",
    "DISTORTIONS",
    "IMAGE_SUFFIXES",
    "LADDERS",
    "PHOTOS",
    "SPLITS",
    "TID2013",
    "AestheticDataset",
    "CSVDataset",
    "DatasetOptions",
    "ImageDecodeError",
    "LadderSet",
    "Preprocess",
    "SynthConfig",
    "SynthInfo",
    "TooFewPhotosError",
    "assign_splits",
    "build_from_photos",
    "build_synthetic",
    "default_synthetic_dir",
    "ensure_synthetic",
    "file_tensor",
    "ladder_report",
    "load_image",
    "open_dataset",
    "read_ladders",
    "reference_sources",
    "scan_photos",
    "write_ladders",
]

# Public names whose modules import torch: loaded on first use.
_LAZY = {
    "AVA": "aestheticnet.data.ava",
    "AestheticDataset": "aestheticnet.data.base",
    "CSVDataset": "aestheticnet.data.csv_dataset",
    "DatasetOptions": "aestheticnet.data.options",
    "LADDERS": "aestheticnet.data.ladders",
    "LadderSet": "aestheticnet.data.ladders",
    "Preprocess": "aestheticnet.data.preprocess",
    "TID2013": "aestheticnet.data.tid2013",
    "file_tensor": "aestheticnet.data.preprocess",
    "ladder_report": "aestheticnet.data.ladders",
    "open_dataset": "aestheticnet.data.detect",
    "read_ladders": "aestheticnet.data.ladders",
    "reference_sources": "aestheticnet.data.ladders",
    "write_ladders": "aestheticnet.data.ladders",
}


__getattr__ = lazy_attributes(__name__, _LAZY)
