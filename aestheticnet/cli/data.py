"""`aestheticnet data ...`: dataset utilities."""

from __future__ import annotations

import json

import click


@click.group()
def data() -> None:
    """Dataset utilities."""


@data.command()
@click.argument("out", required=False)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--crops", "n_crops_per_photo", type=int, default=2, show_default=True, help="crops per photo")
@click.option("--workers", type=int, default=2, show_default=True)
@click.option("--force", is_flag=True, help="rebuild even when a complete copy exists")
@click.option("--quiet", is_flag=True)
def synth(out, seed, n_crops_per_photo, workers, force, quiet) -> None:
    """Build the synthetic default dataset (labels are SYNTHETIC) from photos shipped in scikit-image.

    OUT defaults to the cache folder; a complete copy with the same settings is reused.
    """
    from aestheticnet.data.synthetic import build_synthetic, default_synthetic_dir

    target = out or default_synthetic_dir(seed)
    info = build_synthetic(target, seed=seed, n_crops_per_photo=n_crops_per_photo, workers=workers, force=force,
                           progress=not quiet)  # fmt: skip
    click.echo(json.dumps({"path": str(info.path), "images": info.n_images, "reused": info.reused,
                           "mean_vote_std": round(info.mean_vote_std, 3),
                           "build_seconds": round(info.build_seconds, 2)}))  # fmt: skip


COMMANDS = [data]
