"""`aestheticnet train`, `evaluate` and `score`."""

from __future__ import annotations

import json
import sys

import click

from aestheticnet.cli.options import build_config, dataclass_options
from aestheticnet.train.config import TrainConfig


@click.command()
@click.option("--config", "config_file", default=None, help="JSON file of TrainConfig values")
@click.option("--out", required=True, help="run folder (checkpoints, metrics.jsonl)")
@click.option("--resume", is_flag=True, help="continue the run in --out from its last saved epoch")
@click.option("--quiet", is_flag=True, help="no progress bars")
@dataclass_options(TrainConfig)
def train(config_file, out, resume, quiet, **values) -> None:
    """Train AestheticNet or AestheticNet* (runs under torchrun for several processes)."""
    from aestheticnet.train.trainer import train as run_training

    cfg = build_config(TrainConfig, config_file, values)
    summary = run_training(cfg, out, resume=resume, progress=not quiet)
    click.echo(json.dumps({k: summary[k] for k in ("out", "epochs_done", "best")}))


@click.command()
@click.argument("checkpoint")
@click.option("--data", required=True, help="dataset folder or annotation file")
@click.option("--split", default=None, help="train, val, test or all (default: the model's validation split)")
@click.option("--out", default=None, help="folder for metrics.json, predictions.csv and plots")
@click.option("--batch-size", type=int, default=32, show_default=True)
@click.option("--threshold", type=float, default=5.0, show_default=True, help="high/low mean-score threshold")
@click.option("--max-items", type=int, default=None)
def evaluate(checkpoint, data, split, out, batch_size, threshold, max_items) -> None:
    """Accuracy, PLCC, SROCC, EMD (r=1, r=2) and std metrics of a model file on a dataset."""
    from aestheticnet.train.evaluate import evaluate_checkpoint

    report = evaluate_checkpoint(
        checkpoint, data, out, split=split, batch_size=batch_size, threshold=threshold, max_items=max_items
    )
    click.echo(json.dumps(report, indent=2))


@click.command()
@click.argument("paths", nargs=-1, required=True)
@click.option("--model", "model_path", required=True, help=".safetensors, .onnx, .tflite or .mlpackage")
@click.option("--out", default=None, help="output file (default: standard output)")
@click.option("--format", "fmt", type=click.Choice(["csv", "json"]), default="csv", show_default=True)
@click.option("--batch-size", type=int, default=16, show_default=True)
@click.option("--threads", type=int, default=None)
@click.option("--quiet", is_flag=True)
@click.option("--no-integrity-check", is_flag=True, help="use the model even if its sha256 differs from its manifest's")
def score(paths, model_path, out, fmt, batch_size, threads, quiet, no_integrity_check) -> None:
    """Score image files or folders; exit code 1 when some files could not be scored (unreadable, or the model's
    output not finite)."""
    from aestheticnet.runtime import Scorer, collect_images, load, write_scores

    files = collect_images(paths)
    if not files:
        raise ValueError(f"no images found in {list(paths)}")
    backend = load(model_path, threads=threads, check_integrity=not no_integrity_check)
    scorer = Scorer(backend, batch_size=batch_size)
    if scorer.backend.evaluated_by:  # on stderr: the scores on stdout stay a clean CSV / JSON
        click.echo(f"scores computed by {scorer.backend.evaluated_by}", err=True)
    result = scorer.score_files(files, progress=not quiet)
    text = write_scores(result, out, fmt)
    if out is None:
        click.echo(text, nl=False)
    for failure in result.failures:
        click.echo(f"not scored: {failure['path']}: {failure['error']}", err=True)
    if result.failures:
        click.echo(f"{len(result.failures)} of {len(files)} files could not be scored", err=True)
        sys.exit(1)


COMMANDS = [train, evaluate, score]
