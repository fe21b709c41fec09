"""``aestheticnet search``: a thin click layer over :func:`aestheticnet.nas.search.run_search`."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import click

from aestheticnet.nas.strategy import DEFAULT_PRESET, PRESETS, SearchConfig

__all__ = ["COMMANDS", "search"]


def _config_from_options(
    config_file: str | None, preset: str | None, epochs_scale: float, options: dict
) -> SearchConfig:
    """A JSON config file, else a preset; then the explicit options; then the epochs scale."""
    if config_file is not None:
        config = SearchConfig.from_dict(json.loads(Path(config_file).read_text()), source=config_file)
        if preset is not None:
            config = config.replace(stages=PRESETS[preset], preset=preset)
    else:
        config = SearchConfig.from_preset(preset or DEFAULT_PRESET)
    changes = {k: v for k, v in options.items() if v is not None}
    if changes:
        config = config.replace(**changes)
    if epochs_scale != 1.0:
        config = config.replace(stages=tuple(s.scaled(epochs_scale) for s in config.stages))
    return config


@click.command()
@click.option("--data", required=True, help="dataset folder or annotation file (AVA, TID2013, CSV, KonIQ-10k)")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False), help="output folder")
@click.option("--preset", type=click.Choice(sorted(PRESETS)), default=None,
              help=f"stage schedule [default: {DEFAULT_PRESET}, or the --config file's]")
@click.option("--config", "config_file", type=click.Path(exists=True, dir_okay=False), default=None,
              help="a search_config.json (SearchConfig fields); options given here override it")
@click.option("--epochs-scale", type=float, default=1.0, show_default=True,
              help="multiply every stage's epochs and warm-up epochs (e.g. 0.2 for a quick run)")
@click.option("--resolution", type=int, default=None, help="square search input size (default 64)")
@click.option("--batch-size", type=int, default=None, help="per-process batch size (default 96)")
@click.option("--init-channels", type=int, default=None, help="supernet channels C (default 16)")
@click.option("--order", type=click.Choice(["first", "second"]), default=None,
              help="bi-level update: first order (default) or DARTS' unrolled second order")
@click.option("--loss", type=click.Choice(["sw_emd", "emd"]), default=None, help="search loss (default sw_emd)")
@click.option("--proxy-fraction", type=float, default=None, help="fraction of the training split used (0.1)")
@click.option("--weight-fraction", type=float, default=None, help="part of the proxy data for weights (0.8)")
@click.option("--max-skip-connect", type=int, default=None, help="skip_connects allowed in the normal cell (2)")
@click.option("--stem", type=click.Choice(["imagenet", "cifar"]), default=None, help="supernet stem")
@click.option("--seed", type=int, default=None)
@click.option("--workers", type=int, default=None, help="data loader processes (default 0)")
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda, cuda:1, ...")
@click.option("--resume", is_flag=True, help="continue the search checkpointed in --out (mid-stage too)")
@click.option("--max-epochs", type=int, default=None, help="stop after this many epochs of this run (resumable)")
@click.option("--no-progress", is_flag=True, help="no progress bars")
def search(data, out_dir, preset, config_file, epochs_scale, resolution, batch_size, init_channels, order, loss,
           proxy_fraction, weight_fraction, max_skip_connect, stem, seed, workers, device, resume, max_epochs,
           no_progress) -> None:  # fmt: skip
    """P-DARTS architecture search with the self-weighted EMD loss; writes genotype.json and cells.png.

    Runs under torchrun too (one process per device; only rank 0 writes).
    """
    from aestheticnet.nas.search import run_search

    options = dict(resolution=resolution, batch_size=batch_size, init_channels=init_channels, order=order,
                   loss=loss, proxy_fraction=proxy_fraction, weight_fraction=weight_fraction,
                   max_skip_connect=max_skip_connect, stem=stem, seed=seed, workers=workers)  # fmt: skip
    config = _config_from_options(config_file, preset, epochs_scale, options)
    if resume and (Path(out_dir) / "search_config.json").is_file() and config_file is None and not any(
        v is not None for v in options.values()
    ) and preset is None and epochs_scale == 1.0:
        # `search --resume --out DIR` alone continues with the saved config.
        config = SearchConfig.from_dict(json.loads((Path(out_dir) / "search_config.json").read_text()))
    main_process = int(os.environ.get("RANK", "0")) == 0  # under torchrun only rank 0 reports
    logging.basicConfig(level=logging.INFO if main_process else logging.WARNING, format="%(message)s")
    stages = ", ".join(f"{s.cells} cells/{s.ops_kept} ops/{s.epochs} ep" for s in config.stages)
    if main_process:
        click.echo(f"search: {stages}; {config.resolution}px, batch {config.batch_size}, {config.order} order, "
                   f"loss {config.loss}", err=True)  # fmt: skip
    result = run_search(config, data, out_dir, resume=resume, max_epochs=max_epochs, progress=not no_progress,
                        device=device)  # fmt: skip
    if not main_process:
        return
    if result.finished:
        click.echo(f"genotype: {Path(out_dir) / 'genotype.json'}")
        click.echo(result.genotype.to_json())
    else:
        click.echo(f"stopped before stage {result.stage + 1} epoch {result.epoch + 1}; continue with --resume")


COMMANDS = [search]
