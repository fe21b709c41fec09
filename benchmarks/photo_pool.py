"""The photo pool: Debian's wallpaper photographs and artworks plus the 13 built-in photos, as a synthetic dataset.

    .venv/bin/python benchmarks/photo_pool.py --out runs/pool

Fetches ``gnome-backgrounds``, ``plasma-workspace-wallpapers`` and ``ukui-wallpapers`` with ``apt-get download``
and unpacks them with ``dpkg-deb -x`` into ``OUT/debs`` (nothing is installed into the system; apt's package lists
must exist: ``apt-get update`` once, as root). One file per wallpaper goes to ``OUT/photos``: plasma ships each
wallpaper at several sizes, so its largest light variant is taken (``images/``, not ``images_dark/``); GNOME's
light/dark pairs give their light variant, and its vector (SVG) wallpapers are left out. Then
``aestheticnet data synth --photos OUT/photos --with-builtin`` builds the dataset into ``OUT/data``; it refuses
flat and near-blank images by name (the command's own rule), and the skipped files are listed.

Prints and writes ``OUT/photo_pool.json`` and ``OUT/photo_pool.md``: every photo with its package and licence
file, what was skipped and why, and how many photos a split with ``--val-fraction`` gives validation (by photo).
Each package's licences are in its ``usr/share/doc/<package>/copyright`` under ``OUT/debs``.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from aestheticnet.bench import save_result
from aestheticnet.data import assign_splits, build_from_photos

PACKAGES = ("gnome-backgrounds", "plasma-workspace-wallpapers", "ukui-wallpapers")
RASTER = {".jpg", ".jpeg", ".png", ".webp"}


def fetch(debs: Path) -> Path:
    """Download and unpack the packages into ``debs`` (once); returns the unpacked root."""
    root = debs / "root"
    if (root / ".complete").is_file():
        return root
    debs.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=debs) as tmp:
        run = subprocess.run(["apt-get", "download", *PACKAGES], cwd=tmp, capture_output=True, text=True, check=False)
        if run.returncode != 0:
            sys.exit(f"apt-get download failed ({run.stderr.strip()[-400:]}); run `apt-get update` once as root")
        staging = Path(tmp) / "root"
        for deb in sorted(Path(tmp).glob("*.deb")):
            subprocess.run(["dpkg-deb", "-x", str(deb), str(staging)], check=True)
        if root.exists():
            shutil.rmtree(root)
        root.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(staging), root)
    (root / ".complete").write_text("\n".join(PACKAGES) + "\n")
    return root


def _area(path: Path) -> int:
    found = re.fullmatch(r"(\d+)x(\d+)", path.stem)
    return int(found[1]) * int(found[2]) if found else 0


def select(root: Path) -> list[tuple[str, str, Path]]:
    """(package, name, file): one raster file per wallpaper."""
    chosen = []
    for folder in sorted((root / "usr/share/wallpapers").glob("*/contents/images")):
        files = [p for p in folder.iterdir() if p.suffix.lower() in RASTER]
        if files:
            chosen.append(("plasma-workspace-wallpapers", folder.parent.parent.name, max(files, key=_area)))
    gnome = root / "usr/share/backgrounds/gnome"
    for path in sorted(gnome.glob("*")) if gnome.is_dir() else []:
        dark_twin = path.stem.endswith("-d") and (gnome / f"{path.stem[:-2]}-l{path.suffix}").exists()
        if path.suffix.lower() in RASTER and not dark_twin:
            chosen.append(("gnome-backgrounds", path.stem, path))
    for path in sorted((root / "usr/share/backgrounds").glob("*")):
        if path.is_file() and path.suffix.lower() in RASTER:
            chosen.append(("ukui-wallpapers", path.stem, path))
    return chosen


def collect(chosen: list[tuple[str, str, Path]], photos: Path) -> dict[str, str]:
    """Copy the chosen files into ``photos`` as ``<package>-<name><suffix>``; returns file name -> package."""
    photos.mkdir(parents=True, exist_ok=True)
    owner = {}
    for package, name, path in chosen:
        target = photos / f"{package.split('-')[0]}-{name}{path.suffix.lower()}"
        if not target.exists() or target.stat().st_size != path.stat().st_size:
            shutil.copyfile(path, target)
        owner[target.name] = package
    return owner


def markdown(report: dict) -> str:
    lines = [
        (
            f"Photo pool: {report['photos']} photos ({report['user_photos']} wallpapers + "
            f"{report['builtin_photos']} built-in), {report['images']} images; a split by photo with val_fraction "
            f"{report['val_fraction']} (seed {report['split_seed']}) validates on {report['val_photos']} photos."
        ),
        "",
        "| photo | package |",
        "|---|---|",
    ]
    lines += [f"| {name} | {package} |" for name, package in report["used"].items()]
    if report["skipped"]:
        lines += ["", "| skipped | why |", "|---|---|"]
        lines += [f"| {s['name']} | {s['reason']} |" for s in report["skipped"]]
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=Path("runs/pool"))
    ap.add_argument("--crops", type=int, default=2, help="crops per photo in the dataset")
    ap.add_argument("--val-fraction", type=float, default=0.4, help="the split the report counts (by photo)")
    ap.add_argument("--split-seed", type=int, default=0)
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()

    root = fetch(args.out / "debs")
    owner = collect(select(root), args.out / "photos")
    built = build_from_photos(
        args.out / "photos", args.out / "data", with_builtin=True, n_crops_per_photo=args.crops, workers=args.workers
    )
    names = built.info.config.photo_names
    # The AVA layout's challenge column holds the photo's 1-based index: the split by photo groups on it.
    split = assign_splits(
        [str(k) for k in range(1, len(names) + 1)], val_fraction=args.val_fraction, seed=args.split_seed
    )
    report = {
        "data": str(args.out / "data"),
        "photos": len(names),
        "builtin_photos": len(built.info.config.photos),
        "user_photos": len(built.scan.photos),
        "images": built.info.n_images,
        "used": {p.source.name: owner.get(p.source.name, "?") for p in built.scan.photos},
        "skipped": [{"name": s.name, "reason": s.reason} for s in built.scan.skipped],
        "val_fraction": args.val_fraction,
        "split_seed": args.split_seed,
        "val_photos": sum(v == "val" for v in split.values()),
        "licences": {p: f"{args.out / 'debs/root/usr/share/doc' / p / 'copyright'}" for p in PACKAGES},
    }
    text = save_result(report, args.out, "photo_pool", markdown)
    print(json.dumps({k: v for k, v in report.items() if k != "used"}, indent=1))
    print(text)


if __name__ == "__main__":
    main()
