"""``aestheticnet search``: a thin click layer over :func:`aestheticnet.train.search.run_search`.

The options are generated from :class:`SearchConfig` (``config_options``), as ``train``'s are from
``TrainConfig``; the stage schedule comes from ``--preset`` (or the ``--config`` file) and ``--epochs-scale``.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import click

from aestheticnet.cli.options import build_config, dataclass_options
from aestheticnet.losses import LOSS_NAMES
from aestheticnet.nas.stem import STEM_STRIDES
from aestheticnet.nas.strategy import DEFAULT_PRESET, PRESET_SETTINGS, PRESETS, SKIP_DROPOUT_DECAYS, SearchConfig

__all__ = ["COMMANDS", "search"]

_CHOICES = {
    "order": ("first", "second"),
    "loss": tuple(LOSS_NAMES),
    "stem": tuple(STEM_STRIDES),
    "skip_dropout_decay": SKIP_DROPOUT_DECAYS,
}


def _config_from_options(
    config_file: str | None, preset: str | None, epochs_scale: float, options: dict
) -> SearchConfig:
    """A JSON config file, else the default; then the preset's stages and settings; then the explicit options;
    then the epochs scale."""
    values = dict(options)
    if preset is not None:
        settings = {k: v for k, v in PRESET_SETTINGS.get(preset, {}).items() if values.get(k) is None}
        values.update(stages=PRESETS[preset], preset=preset, **settings)
    config = build_config(SearchConfig, config_file, values)
    if epochs_scale != 1.0:
        config = config.replace(stages=tuple(s.scaled(epochs_scale) for s in config.stages))
    return config


@click.command()
@click.option("--data", required=True, help="dataset folder or annotation file (AVA, TID2013, CSV, KonIQ-10k)")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False), help="output folder")
@click.option(
    "--preset",
    type=click.Choice(sorted(PRESETS)),
    default=None,
    help=f"stage schedule [default: {DEFAULT_PRESET}, or the --config file's]",
)
@click.option(
    "--config",
    "config_file",
    type=click.Path(exists=True, dir_okay=False),
    default=None,
    help="a search_config.json (SearchConfig fields); options given here override it",
)
@click.option(
    "--epochs-scale",
    type=float,
    default=1.0,
    show_default=True,
    help="multiply every stage's epochs and warm-up epochs (e.g. 0.2 for a quick run)",
)
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda, cuda:1, ...")
@click.option("--resume", is_flag=True, help="continue the search checkpointed in --out (mid-stage too)")
@click.option("--max-epochs", type=int, default=None, help="stop after this many epochs of this run (resumable)")
@click.option("--no-progress", is_flag=True, help="no progress bars")
@dataclass_options(SearchConfig, skip=("stages", "preset"), choices=_CHOICES)
def search(
    data, out_dir, preset, config_file, epochs_scale, device, resume, max_epochs, no_progress, **options
) -> None:
    """P-DARTS architecture search with the self-weighted EMD loss; writes genotype.json and cells.png.

    Runs under torchrun too (one process per device; only rank 0 writes).
    """
    from aestheticnet.train.search import run_search

    saved = Path(out_dir) / "search_config.json"
    given = config_file is not None or preset is not None or epochs_scale != 1.0
    if resume and saved.is_file() and not given and all(v is None for v in options.values()):
        # `search --resume --out DIR` alone continues with the saved config.
        config = SearchConfig.from_dict(json.loads(saved.read_text()), source=str(saved))
    else:
        config = _config_from_options(config_file, preset, epochs_scale, options)
    main_process = int(os.environ.get("RANK", "0")) == 0  # under torchrun only rank 0 reports
    logging.basicConfig(level=logging.INFO if main_process else logging.WARNING, format="%(message)s")
    stages = ", ".join(f"{s.cells} cells/{s.ops_kept} ops/{s.epochs} ep" for s in config.stages)
    if main_process:
        click.echo(
            f"search: {stages}; {config.resolution}px, batch {config.batch_size}, {config.order} order, "
            f"loss {config.loss}",
            err=True,
        )
    result = run_search(
        config, data, out_dir, resume=resume, max_epochs=max_epochs, progress=not no_progress, device=device
    )
    if not main_process:
        return
    if result.finished:
        click.echo(f"genotype: {Path(out_dir) / 'genotype.json'}")
        click.echo(result.genotype.to_json())
        if result.latency is not None:
            click.echo(
                f"predicted latency: {result.latency['genotype_ms']:.2f} ms ({config.latency_table}); "
                f"expected under the final weights {result.latency['expected_ms']:.2f} ms"
            )
    else:
        click.echo(f"stopped before stage {result.stage + 1} epoch {result.epoch + 1}; continue with --resume")


COMMANDS = [search]
