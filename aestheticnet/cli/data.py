"""`aestheticnet data ...`: dataset utilities."""

from __future__ import annotations

import json
from pathlib import Path

import click


@click.group()
def data() -> None:
    """Dataset utilities."""


@data.command()
@click.argument("out", required=False)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--crops", "n_crops_per_photo", type=int, default=2, show_default=True, help="crops per photo")
@click.option(
    "--photos",
    "photos_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="build from your own photos in this folder (searched recursively; JPEG, PNG, ...) instead of "
    "the built-in ones; unreadable, too small and duplicate files are reported and skipped",
)
@click.option("--with-builtin", is_flag=True, help="with --photos: use the 13 built-in photos too")
@click.option("--workers", type=int, default=2, show_default=True)
@click.option("--force", is_flag=True, help="rebuild even when a complete copy exists")
@click.option("--quiet", is_flag=True)
def synth(out, seed, n_crops_per_photo, photos_dir, with_builtin, workers, force, quiet) -> None:
    """Build the synthetic default dataset (labels are SYNTHETIC) from photos shipped in scikit-image.

    OUT defaults to the cache folder; a complete copy with the same settings (and the same photo files) is
    reused. With --photos DIR the source photos are yours: at least 2 usable ones, since the dataset is split
    by source photo.
    """
    from aestheticnet.data.synthetic import build_from_photos, build_synthetic, default_synthetic_dir

    if with_builtin and photos_dir is None:
        raise click.UsageError("--with-builtin adds the built-in photos to yours: give --photos DIR too")
    report = {}
    if photos_dir is None:
        info = build_synthetic(
            out or default_synthetic_dir(seed),
            seed=seed,
            n_crops_per_photo=n_crops_per_photo,
            workers=workers,
            force=force,
            progress=not quiet,
        )
    else:
        built = build_from_photos(
            photos_dir,
            out,
            with_builtin=with_builtin,
            seed=seed,
            n_crops_per_photo=n_crops_per_photo,
            workers=workers,
            force=force,
            progress=not quiet,
        )
        info = built.info
        for skipped in built.scan.skipped:
            click.echo(f"skipped {photos_dir / skipped.name}: {skipped.reason}", err=True)
        report = {
            "photos": len(built.scan.photos),
            "builtin_photos": len(info.config.photos),
            "skipped": [{"file": s.name, "reason": s.reason} for s in built.scan.skipped],
        }
    click.echo(
        json.dumps(
            {
                "path": str(info.path),
                "images": info.n_images,
                "reused": info.reused,
                **report,
                "mean_vote_std": round(info.mean_vote_std, 3),
                "build_seconds": round(info.build_seconds, 2),
            }
        )
    )


COMMANDS = [data]
