"""`aestheticnet bench MODEL...`: latency, memory, size, params and MACs, locally or on a device over SSH.
`aestheticnet bench ops`: a latency table of the target (every part of the final network, timed alone).

``bench`` stays one command for model files; a first argument ``ops`` (never a model file: those end in .onnx,
.tflite or .safetensors) hands the rest of the line to ``bench ops``, so every earlier ``bench`` line keeps its
meaning and its help.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from aestheticnet.nas.latency_table import TableRuntime
from aestheticnet.runtime_names import RuntimeName


class _ModelsOrOps(click.Command):
    def make_context(self, info_name, args, parent=None, **extra):
        if args and args[0] == "ops":
            return bench_ops.make_context(f"{info_name} ops", list(args[1:]), parent=parent, **extra)
        return super().make_context(info_name, args, parent=parent, **extra)


@click.command(cls=_ModelsOrOps)
@click.argument("models", nargs=-1, required=True)
@click.option(
    "--device",
    default="local",
    show_default=True,
    help="'local', or ssh://[user@]host[:port] (an ~/.ssh/config alias works as the host)",
)
@click.option("--threads", default="1", show_default=True, help="comma-separated thread counts, e.g. 1,2,4")
@click.option(
    "--shapes",
    default="224x224",
    show_default=True,
    help="comma-separated HxW or NxHxW, multiples of 32; N is the batch of the run (as --batch)",
)
@click.option(
    "--batch",
    type=int,
    default=1,
    show_default=True,
    help="images per inference; an NxHxW shape with N > 1 sets it, and all shapes must then agree",
)
@click.option("--warmup", type=int, default=5, show_default=True, help="warm-up runs after the first inference")
@click.option("--runs", type=int, default=None, help="timed runs per measurement [default: 50]")
@click.option("--min-seconds", type=float, default=None, help="time runs until this many seconds (instead of --runs)")
@click.option(
    "--timeout", "timeout_s", type=float, default=600.0, show_default=True, help="seconds allowed per measurement"
)
@click.option("--json", "json_path", default=None, help="write the JSON report here ('-': stdout)")
@click.option("--md", "md_path", default=None, help="write the Markdown table here")
@click.option("--plots", "plots_dir", default=None, help="write PNG plots into this folder")
@click.option(
    "--ssh-option",
    "ssh_options",
    multiple=True,
    help="extra ssh options, e.g. --ssh-option '-i key' (also from $AESTHETICNET_SSH_OPTS)",
)
@click.option("--remote-python", default="python3", show_default=True, help="Python on the device")
@click.option("--quiet", is_flag=True, help="no progress lines on stderr")
@click.option("--no-integrity-check", is_flag=True, help="time models even if their sha256 differs from the manifest's")
@click.option(
    "--verify-against",
    "reference",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="also check the outputs of each exported model on the device against this checkpoint (verify --device)",
)
def bench(
    models,
    device,
    threads,
    shapes,
    batch,
    warmup,
    runs,
    min_seconds,
    timeout_s,
    json_path,
    md_path,
    plots_dir,
    ssh_options,
    remote_python,
    quiet,
    no_integrity_check,
    reference,
) -> None:
    """Benchmark model files (.onnx, .tflite, .pte, .safetensors) x threads x shapes, each in a fresh process.

    Reports load/init time, first inference, warm-up mean, p50/p90/p99/mean/std/min/max latency, throughput,
    peak memory (RSS delta), file size, params and MACs (from the model's <file>.json manifest), with the CPU
    model, cores and library versions of the device. Prints a Markdown table; exits 1 when a measurement failed.

    `aestheticnet bench ops --help`: the latency table of a target (every operation of the search space timed alone).
    """
    from aestheticnet.bench.harness import run_benchmark
    from aestheticnet.bench.ssh import parse_device

    if runs is not None and min_seconds is not None:
        raise click.UsageError("use --runs or --min-seconds, not both")
    target = parse_device(device, ssh_options=ssh_options, remote_python=remote_python)
    settings = _bench_settings(threads, shapes, batch, warmup, runs, min_seconds, timeout_s)
    progress = None if quiet else (lambda line: click.echo(line, err=True))
    report = run_benchmark(models, settings, target, progress=progress, check_integrity=not no_integrity_check)
    if reference is not None:
        _verify_outputs(report, models, reference, target, settings)
    _write_report(report, json_path, md_path, plots_dir, quiet)
    if report["errors"]:
        for line in report["errors"]:
            click.echo(f"error: {line}", err=True)
        sys.exit(1)


def _verify_outputs(report: dict, models, reference: Path, target, settings) -> None:
    """``verify`` of each exported model's outputs on ``target`` at the timed shapes, into ``report["verify"]``;
    a failure is one of the report's errors."""
    from aestheticnet.bench import BenchError, verify_on_device
    from aestheticnet.export.verify import VerifyOptions
    from aestheticnet.sizes import Shape

    shapes = tuple(Shape(s.height, s.width, batch=max(s.batch, settings.batch)) for s in settings.shapes)
    report["verify"] = {}
    for model in models:
        if Path(model).suffix == ".safetensors":
            continue
        try:
            result = verify_on_device(model, reference, target, VerifyOptions(shapes=shapes))
        except (BenchError, OSError, ValueError) as exc:
            report["errors"].append(f"verify {model}: {exc}")
            continue
        report["verify"][str(model)] = result.to_dict()
        verdict = "passed" if result.passed else f"FAILED: {'; '.join(str(m) for m in result.mismatches)}"
        click.echo(f"verify {Path(model).name} on {target.describe()}: {verdict}", err=True)
        if not result.passed:
            report["errors"].append(f"verify {model}: {len(result.mismatches)} mismatch(es)")


def _bench_settings(
    threads: str, shapes: str, batch: int, warmup: int, runs: int | None, min_seconds: float | None, timeout_s: float
):
    """The harness's settings from the command's options (``threads`` and ``shapes`` as typed)."""
    from aestheticnet.bench.harness import BenchSettings, parse_threads
    from aestheticnet.sizes import parse_shapes

    return BenchSettings(
        threads=parse_threads(threads),
        shapes=parse_shapes(shapes, "--shapes"),
        batch=batch,
        warmup=warmup,
        runs=runs,
        min_seconds=min_seconds,
        timeout_s=timeout_s,
    )


def _write_report(report: dict, json_path: str | None, md_path: str | None, plots_dir: str | None, quiet: bool) -> None:
    """The report on stdout (JSON for ``--json -``, else the Markdown table) and in every file asked for."""
    from aestheticnet.bench.report import markdown_report, write_json, write_markdown, write_plots

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


@click.command("ops")
@click.option("--device", default="local", show_default=True, help="'local', or ssh://[user@]host[:port]")
@click.option(
    "--runtime",
    type=click.Choice([r.value for r in TableRuntime]),
    default=RuntimeName.ONNXRUNTIME.value,
    show_default=True,
    help="the runtime the table is for (ONNX fp32 files, or TFLite fp32 files)",
)
@click.option("--threads", type=int, default=1, show_default=True, help="the runtime's thread count")
@click.option("--size", default="224x224", show_default=True, help="input HxW of the final network")
@click.option(
    "--out",
    "out_path",
    default=None,
    help="the table's JSON file [default: latency_table.<runtime>.<threads>t.<size>.json]",
)
@click.option("--variant", default="aestheticnet_star", show_default=True, help="the final network's variant")
@click.option("--layers", type=int, default=None, help="its number of cells [default: the variant's]")
@click.option("--init-channels", type=int, default=None, help="its initial channels C [default: the variant's]")
@click.option(
    "--rounds",
    type=int,
    default=3,
    show_default=True,
    help="times every model is timed, one model after the other (median of the rounds)",
)
@click.option("--runs", type=int, default=100, show_default=True, help="timed runs per measurement")
@click.option("--warmup", type=int, default=10, show_default=True, help="warm-up runs per measurement")
@click.option("--copies", type=int, default=8, show_default=True, help="least copies of an operation in its probe")
@click.option(
    "--weights-mb",
    type=float,
    default=4.0,
    show_default=True,
    help="and enough copies for this much weight data (more than the target CPU's L2 cache)",
)
@click.option(
    "--keep-models",
    "models_dir",
    default=None,
    help="keep the probe models in this folder (and reuse those already there)",
)
@click.option(
    "--timeout", "timeout_s", type=float, default=300.0, show_default=True, help="seconds allowed per measurement"
)
@click.option("--ssh-option", "ssh_options", multiple=True, help="extra ssh options (also $AESTHETICNET_SSH_OPTS)")
@click.option("--remote-python", default="python3", show_default=True, help="Python on the device")
@click.option("--quiet", is_flag=True, help="no progress lines on stderr")
def bench_ops(
    device,
    runtime,
    threads,
    size,
    out_path,
    variant,
    layers,
    init_channels,
    rounds,
    runs,
    warmup,
    copies,
    weights_mb,
    models_dir,
    timeout_s,
    ssh_options,
    remote_python,
    quiet,
) -> None:
    """Time every operation of the search space at every shape the final network runs it at, and the parts every
    network runs (stem, cell preprocessing, concatenation, CBAM, head), each exported alone (fp32, by
    the network's export route) and run by the device runner in fresh processes; writes the latency table.

    The table predicts a network's latency (`aestheticnet info MODEL --latency-table T`) and gives the
    latency-aware search its per-edge costs. It is made for one runtime, thread count, device and network.
    """
    from aestheticnet.bench.op_probes import CopyRule
    from aestheticnet.bench.ops_table import OpsBenchSettings, build_latency_table
    from aestheticnet.bench.ssh import parse_device
    from aestheticnet.models import get_entry
    from aestheticnet.nas.genotypes import resolve_genotype
    from aestheticnet.nas.network_plan import NetworkSpec
    from aestheticnet.sizes import parse_shape

    shape = parse_shape(size, "--size")
    overrides = {k: v for k, v in (("layers", layers), ("init_channels", init_channels)) if v is not None}
    config = get_entry(variant).config_cls().replace(**overrides)
    spec = NetworkSpec.of(variant, config, shape.size)
    rule = CopyRule(copies, int(weights_mb * 2**20))
    settings = OpsBenchSettings(TableRuntime(runtime), threads, warmup, runs, rounds, rule, timeout_s)
    target = parse_device(device, ssh_options=ssh_options, remote_python=remote_python)
    progress = None if quiet else (lambda line: click.echo(line, err=True))
    table = build_latency_table(spec, settings, target, models_dir, progress)
    out = out_path or f"latency_table.{runtime}.{threads}t.{shape.height}x{shape.width}.json"
    table.save(out)
    check = table.predict(resolve_genotype("PDARTS")).total_ms if spec.steps == 4 and spec.multiplier == 4 else None
    click.echo(f"wrote {out}: {len(table.entries)} entries, {table.describe()}")
    if check is not None:
        click.echo(f"predicted latency of the PDARTS cells in this network: {check:.2f} ms")


COMMANDS = [bench]
