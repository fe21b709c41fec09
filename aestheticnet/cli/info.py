"""`aestheticnet info`: parameters, MACs, per-stage shapes and genotype of a variant or a model file, and its
latency predicted from a target's latency table (``--latency-table``)."""

from __future__ import annotations

import json
from pathlib import Path

import click

from aestheticnet.sizes import parse_shape


def _model_from_arg(model_or_variant: str, overrides: dict):
    from aestheticnet.models import create_model, list_models, load

    if model_or_variant in list_models():
        return create_model(model_or_variant, **{k: v for k, v in overrides.items() if v is not None})
    path = Path(model_or_variant)
    if path.suffix == ".safetensors" or path.exists():
        if any(v is not None for v in overrides.values()):
            raise ValueError("--genotype/--layers/--init-channels apply to a variant name, not to a model file")
        return load(path)
    raise ValueError(
        f"{model_or_variant!r} is neither a registered variant ({', '.join(list_models())}) nor a model file"
    )


@click.command()
@click.argument("model_or_variant", default="aestheticnet_star")
@click.option(
    "--size",
    default="224x224",
    show_default=True,
    help="input HxW (multiples of 32) for MACs and shapes; NxHxW gives the same numbers (per image)",
)
@click.option("--genotype", default=None, help="registered genotype name or genotype.json (variants only)")
@click.option("--layers", type=int, default=None, help="number of cells (variants only)")
@click.option("--init-channels", type=int, default=None, help="initial channels C (variants only)")
@click.option(
    "--latency-table",
    "latency_table",
    default=None,
    help="a latency table (`aestheticnet bench ops`): predict this network's latency from it",
)
@click.option("--json", "as_json", is_flag=True, help="print JSON for machines")
def info(model_or_variant: str, size: str, genotype, layers, init_channels, latency_table, as_json: bool) -> None:
    """Parameters, MACs, per-stage output shapes and genotype of a variant or a model file; with
    --latency-table, its predicted latency on the table's target, by part."""
    from aestheticnet.bench.profile import profile_model

    h, w = parse_shape(size, "--size").size
    model = _model_from_arg(model_or_variant, {"genotype": genotype, "layers": layers, "init_channels": init_channels})
    report = profile_model(model, (h, w))
    cfg = model.config
    g = model.genotype  # None: a variant without searched cells (NIMA-MobileNetV2)
    report = {
        "model": model_or_variant,
        "variant": model.variant,
        "genotype_name": cfg.genotype_name if g is not None else None,
        "config": {k: v for k, v in cfg.to_dict().items() if k != "genotype"},
        "genotype": g.to_dict() if g is not None else None,
        **report,
    }
    # Per stage / cell type / operation breakdown, and the sizes of this model's files per format and precision.
    from aestheticnet.bench.breakdown import format_info_extension, info_extension
    from aestheticnet.models import list_models

    model_path = None if model_or_variant in list_models() else model_or_variant
    report.update(info_extension(model, (h, w), path=model_path, params=report["params"]))
    if latency_table:
        report["latency"] = predicted_latency(model, model_or_variant, (h, w), latency_table)
    if as_json:
        click.echo(json.dumps(report, indent=2))
        return
    lines = _cell_lines(report, cfg) if g is not None else _plain_lines(report)
    for line in lines + format_info_extension(report):
        click.echo(line)
    if latency_table:
        latency = report["latency"]
        click.echo(
            f"predicted latency: {latency['predicted_ms']:.2f} ms on {latency['target']} (table {latency['table']})"
        )
        for part, ms in latency["parts"].items():
            click.echo(f"  {part:<11} {ms:8.3f} ms")


def predicted_latency(model, name: str, size: tuple[int, int], table_path: str) -> dict:
    """The latency ``table_path`` predicts for ``model`` at ``size``; refused for another network or size."""
    from aestheticnet.nas.latency_table import LatencyTable
    from aestheticnet.nas.network_plan import NetworkSpec

    table = LatencyTable.load(table_path)
    spec = NetworkSpec.of(model.variant, model.config, size)
    table.check_network(spec, what=f"{name} at {size[0]}x{size[1]}")
    prediction = table.predict(model.genotype)
    return {
        "table": str(table_path),
        "target": table.describe(),
        "predicted_ms": prediction.total_ms,
        "parts": prediction.parts,
    }


def _totals(report: dict) -> list[str]:
    h, w = report["input_size"]
    return [
        f"parameters: {report['params']:,} ({report['params'] / 1e6:.2f}M, auxiliary head excluded)",
        f"MACs at {h}x{w}: {report['macs']:,} ({report['macs'] / 1e9:.3f} G)",
    ]


def _plain_lines(report: dict) -> list[str]:
    config = "  ".join(f"{k}={v}" for k, v in report["config"].items())
    lines = [f"{report['variant']}  {config}", *_totals(report), "output shapes:"]
    return lines + [f"  {name:<12} {shape}" for name, shape in report["output_shapes"].items()]


def _cell_lines(report: dict, cfg) -> list[str]:
    lines = [
        f"{report['variant']}  genotype={cfg.genotype_name}  C={cfg.init_channels}  cells={cfg.layers}",
        *_totals(report),
        "output shapes:",
    ]
    for name, shape in report["stem"]["output_shapes"].items():
        lines.append(f"  {name:<10} {shape}")
    for cell in report["cells"]:
        lines.append(f"  cells.{cell['index']:<4} {cell['type']:<7} {cell['output_shape']}  params={cell['params']:,}")
    lines.append("per stage:")
    for stage, agg in report["stages"].items():
        lines.append(f"  {stage:<11} cells={agg['cells']:<3} params={agg['params']:>10,}  MACs={agg['macs']:>13,}")
    g = cfg.genotype
    lines.append(f"normal cell: {[list(e) for e in g.normal]} concat {list(g.normal_concat)}")
    lines.append(f"reduce cell: {[list(e) for e in g.reduce]} concat {list(g.reduce_concat)}")
    return lines


COMMANDS = [info]
