"""`aestheticnet pipeline`."""

from __future__ import annotations

import click


@click.command()
@click.option("--config", "config_file", default=None, help="pipeline.toml (see README); defaults: the demo")
@click.option("--data", default=None, help="dataset folder (overrides data.path; default: the synthetic dataset)")
@click.option("--out", required=True, help="output folder; running again resumes and skips finished steps")
def pipeline(config_file, data, out) -> None:
    """Search -> train -> evaluate -> export -> verify -> bench -> report, resumable."""
    from aestheticnet.pipeline.config import load_pipeline_config
    from aestheticnet.pipeline.run import run_pipeline

    cfg = load_pipeline_config(config_file, {"data.path": data} if data else None)  # fails before any work
    run_pipeline(cfg, out)


COMMANDS = [pipeline]
