"""`aestheticnet pipeline`."""

from __future__ import annotations

import click


@click.command()
@click.option("--config", "config_file", default=None, help="pipeline.toml (see docs/pipeline.md); defaults: the demo")
@click.option("--data", default=None, help="dataset folder (overrides data.path; default: the synthetic dataset)")
@click.option("--out", required=True, help="output folder; running again resumes and skips finished steps")
@click.option(
    "--seed",
    type=int,
    default=None,
    help="seed of the search and of training (weights, batch order, validation split); overrides "
    "search.seed and train.seed",
)
def pipeline(config_file, data, out, seed) -> None:
    """Search -> train -> evaluate -> export -> verify -> bench -> report, resumable."""
    from aestheticnet.pipeline.config import load_pipeline_config
    from aestheticnet.pipeline.run import run_pipeline

    overrides = {"data.path": data} if data else {}
    if seed is not None:
        overrides.update({"search.seed": seed, "train.seed": seed})
    cfg = load_pipeline_config(config_file, overrides)  # fails before any work
    run_pipeline(cfg, out)


COMMANDS = [pipeline]
