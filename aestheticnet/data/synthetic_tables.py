"""The text files of a synthetic build: ``AVA.txt``, the TID2013 tables, ``groups.csv``, the config and the README."""

from __future__ import annotations

import csv
import hashlib
import io
import json
from pathlib import Path

import numpy as np

from aestheticnet.data import synthetic_readme
from aestheticnet.data.synthetic_config import GENERATOR_VERSION, SynthConfig

__all__ = ["CONFIG_FILE", "write_tables"]

CONFIG_FILE = "synth_config.json"

# The columns of groups.csv: everything known about each image, one row per image.
GROUP_COLUMNS = (
    "image_id",
    "photo",
    "ref_id",
    "crop",
    "distortion",
    "type",
    "level",
    "strength",
    "fr_quality",
    "ssim",
    "psnr",
    "latent",
    "n_votes",
    "mean",
    "std",
    "ava_file",
    "tid_file",
)


def write_tables(root: Path, config: SynthConfig, rows: list[dict]) -> dict[str, str]:
    """Write the text files of a build with ``config`` whose images are ``rows``; returns their sha256 by name."""
    texts = {}
    # The challenge column carries the source photo (1-based, in config order), so AVA's group_by="challenge"
    # splits by photo: crops and distortions of one photo never straddle train and validation.
    photo_index = {name: k for k, name in enumerate(config.photo_names, 1)}
    texts["AVA.txt"] = "".join(
        f"{i} {r['image_id']} {' '.join(map(str, r['hist']))} 0 0 {photo_index[r['photo']]}\n"
        for i, r in enumerate(rows, 1)
    )
    dist = [r for r in rows if r["distortion"] != "reference"]  # TID2013 lists distorted images only
    texts["mos_with_names.txt"] = "".join(f"{r['mean'] - 1:.5f} {Path(r['tid_file']).name}\n" for r in dist)
    # As in TID2013, mos_std is the uncertainty of the mean, not the raters' spread (groups.csv has that).
    texts["mos_std.txt"] = "".join(f"{r['std'] / np.sqrt(r['n_votes']):.5f}\n" for r in dist)
    table = io.StringIO()
    writer = csv.writer(table, lineterminator="\n")  # quotes a user photo's name that holds a comma
    writer.writerow(GROUP_COLUMNS)
    writer.writerows([f"{r[c]:.6g}" if isinstance(r[c], float) else str(r[c]) for c in GROUP_COLUMNS] for r in rows)
    texts["groups.csv"] = table.getvalue()
    texts[CONFIG_FILE] = json.dumps(config.to_json(), indent=1, sort_keys=True) + "\n"
    texts["README.txt"] = synthetic_readme.readme(config, len(rows), len(dist), GENERATOR_VERSION, CONFIG_FILE)
    hashes = {}
    for name, text in texts.items():
        data = text.encode()
        (root / name).write_bytes(data)
        hashes[name] = hashlib.sha256(data).hexdigest()
    return hashes
