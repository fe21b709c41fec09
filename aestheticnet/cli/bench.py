"""`aestheticnet bench MODEL...`: latency, memory, size, params and MACs, locally or on a device over SSH."""

from __future__ import annotations

import json
import sys

import click


@click.command()
@click.argument("models", nargs=-1, required=True)
@click.option("--device", default="local", show_default=True,
              help="'local', or ssh://[user@]host[:port] (an ~/.ssh/config alias works as the host)")
@click.option("--threads", default="1", show_default=True, help="comma-separated thread counts, e.g. 1,2,4")
@click.option("--shapes", default="224x224", show_default=True,
              help="comma-separated HxW or NxHxW, multiples of 32; N is the batch of the run (as --batch)")
@click.option("--batch", type=int, default=1, show_default=True,
              help="images per inference; an NxHxW shape with N > 1 sets it, and all shapes must then agree")
@click.option("--warmup", type=int, default=5, show_default=True, help="warm-up runs after the first inference")
@click.option("--runs", type=int, default=None, help="timed runs per measurement [default: 50]")
@click.option("--min-seconds", type=float, default=None, help="time runs until this many seconds (instead of --runs)")
@click.option("--timeout", "timeout_s", type=float, default=600.0, show_default=True,
              help="seconds allowed per measurement")
@click.option("--json", "json_path", default=None, help="write the JSON report here ('-': stdout)")
@click.option("--md", "md_path", default=None, help="write the Markdown table here")
@click.option("--plots", "plots_dir", default=None, help="write PNG plots into this folder")
@click.option("--ssh-option", "ssh_options", multiple=True,
              help="extra ssh options, e.g. --ssh-option '-i key' (also from $AESTHETICNET_SSH_OPTS)")
@click.option("--remote-python", default="python3", show_default=True, help="Python on the device")
@click.option("--quiet", is_flag=True, help="no progress lines on stderr")
def bench(models, device, threads, shapes, batch, warmup, runs, min_seconds, timeout_s, json_path, md_path, plots_dir,
          ssh_options, remote_python, quiet) -> None:  # fmt: skip
    """Benchmark model files (.onnx, .tflite, .pte, .safetensors) x threads x shapes, each in a fresh process.

    Reports load/init time, first inference, warm-up mean, p50/p90/p99/mean/std/min/max latency, throughput,
    peak memory (RSS delta), file size, params and MACs (from the model's <file>.json manifest), with the CPU
    model, cores and library versions of the device. Prints a Markdown table; exits 1 when a measurement failed.
    """
    from aestheticnet.bench.ssh import parse_device
    from aestheticnet.bench.harness import BenchSettings, parse_threads, run_benchmark
    from aestheticnet.bench.report import markdown_report, write_json, write_markdown, write_plots
    from aestheticnet.sizes import parse_shapes

    if runs is not None and min_seconds is not None:
        raise click.UsageError("use --runs or --min-seconds, not both")
    target = parse_device(device, ssh_options=ssh_options, remote_python=remote_python)
    settings = BenchSettings(threads=parse_threads(threads), shapes=parse_shapes(shapes, "--shapes"), batch=batch,
                             warmup=warmup, runs=runs, min_seconds=min_seconds, timeout_s=timeout_s)  # fmt: skip
    progress = None if quiet else (lambda line: click.echo(line, err=True))
    report = run_benchmark(models, settings, target, progress=progress)
    if json_path == "-":
        click.echo(json.dumps(report, indent=2, default=str))
    else:
        if json_path:
            write_json(report, json_path)
        click.echo(markdown_report(report), nl=False)
    if md_path:
        write_markdown(report, md_path)
    if plots_dir:
        for path in write_plots(report, plots_dir):
            if not quiet:
                click.echo(f"wrote {path}", err=True)
    if report["errors"]:
        for line in report["errors"]:
            click.echo(f"error: {line}", err=True)
        sys.exit(1)


COMMANDS = [bench]
