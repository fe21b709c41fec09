"""``aestheticnet export`` and ``aestheticnet verify``."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from aestheticnet.artifacts import Format, Precision

FORMATS = [f.value for f in Format]
PRECISIONS = [p.value for p in Precision]


def _choice_option(name: str, choices: tuple[str, ...], help_text: str):
    """A choice whose first entry is the default."""
    return click.option(name, type=click.Choice(list(choices)), default=choices[0], show_default=True, help=help_text)


def _data_option(help_text: str):
    return click.option("--data", type=click.Path(exists=True, path_type=Path), default=None, help=help_text)


@click.command("export")
@click.argument("checkpoint", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--format", "formats", default="onnx", show_default=True, help=f"comma-separated formats: {','.join(FORMATS)}"
)
@click.option(
    "--precision",
    "precisions",
    default="fp32",
    show_default=True,
    help=f"comma-separated precisions: {','.join(PRECISIONS)} (each format makes the ones it offers)",
)
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("export"),
    show_default=True,
    help="output folder",
)
@_data_option("dataset or image folder for int8 calibration")
@click.option("--calibration-samples", type=int, default=100, show_default=True, help="images used to calibrate int8")
@_choice_option(
    "--coreml-shapes",
    ("range", "enumerated"),
    "CoreML flexible shapes: bounded RangeDims or EnumeratedShapes (Neural Engine friendly)",
)
@_choice_option(
    "--coreml-input",
    ("tensor", "image"),
    "CoreML input: normalised float tensor, or ImageType (pixel buffers; normalisation inside)",
)
@click.option("--opset", type=int, default=18, show_default=True)
@click.option(
    "--exporter",
    type=click.Choice(["auto", "dynamo", "torchscript"]),
    default="auto",
    show_default=True,
    help="ONNX exporter; auto = dynamo, TorchScript only if dynamo fails (recorded in the manifest)",
)
@click.option(
    "--max-batch",
    type=int,
    default=None,
    help="ExecuTorch only (it plans memory for the largest input when a program loads): the largest batch the "
    "program takes; default 1 (a phone scores one photo at a time). ONNX, TFLite and CoreML keep their own dynamic "
    "shapes",
)
@click.option(
    "--max-side",
    type=int,
    default=None,
    help="ExecuTorch only: the longest image side the program takes, a multiple of the model's input multiple (32), "
    "at least the longest side the checkpoint's preprocessing produces; default that side (fixed: size, aspect: "
    "max_side). ONNX, TFLite and CoreML keep their own dynamic shapes",
)
@click.option("--jobs", type=int, default=None, help="processes (default: 2 when 2 CPUs; TFLite runs in a worker)")
@click.option("--name", default=None, help="file stem of the artifacts (default: the checkpoint's stem)")
def export(
    checkpoint,
    formats,
    precisions,
    out_dir,
    data,
    calibration_samples,
    coreml_shapes,
    coreml_input,
    opset,
    exporter,
    max_batch,
    max_side,
    jobs,
    name,
) -> None:
    """Export CHECKPOINT to ONNX / TFLite / CoreML with manifests; per-format timings are printed and recorded."""
    from aestheticnet.artifacts import parse_formats, parse_precisions
    from aestheticnet.export.api import export_checkpoint
    from aestheticnet.export.options import CoreMLInput, CoreMLShapes, ExportOptions, OnnxExporter

    options = ExportOptions(
        data=data,
        calibration_samples=calibration_samples,
        opset=opset,
        coreml_shapes=CoreMLShapes(coreml_shapes),
        coreml_input=CoreMLInput(coreml_input),
        exporter=OnnxExporter(exporter),
        max_batch=max_batch,
        max_side=max_side,
    )
    export_checkpoint(
        checkpoint,
        parse_formats(formats),
        parse_precisions(precisions),
        out_dir,
        options,
        jobs=jobs,
        name=name,
        log=click.echo,
    )


@click.command("verify")
@click.argument("artifact", type=click.Path(path_type=Path))
@click.option(
    "--reference",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="the .safetensors checkpoint the artifact was exported from",
)
@click.option(
    "--shapes",
    default=None,
    help="NxHxW or HxW list, refused when outside the bounds the artifact was exported for (default "
    "224x224,320x256,512x384,96x640,3x224x224, those outside the bounds skipped and reported)",
)
@_data_option("dataset or image folder: also compare on real images (SROCC/PLCC)")
@click.option("--samples", type=int, default=50, show_default=True, help="real images to compare")
@click.option("--threads", type=int, default=None, help="runtime threads")
@click.option(
    "--json",
    "json_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="write the full report here",
)
@click.option(
    "--no-integrity-check", is_flag=True, help="use the artifact even if its sha256 differs from its manifest's"
)
@click.option(
    "--device",
    default="local",
    show_default=True,
    help="where the artifact runs: 'local', or ssh://[user@]host[:port] (the device's Python and runtime)",
)
@click.option("--ssh-option", "ssh_options", multiple=True, help="extra ssh options (also $AESTHETICNET_SSH_OPTS)")
@click.option("--remote-python", default="python3", show_default=True, help="Python on the device")
def verify(
    artifact,
    reference,
    shapes,
    data,
    samples,
    threads,
    json_path,
    no_integrity_check,
    device,
    ssh_options,
    remote_python,
) -> None:
    """Check ARTIFACT against the PyTorch REFERENCE: names, shapes, values; exit 1 on any mismatch.

    With --device ssh://..., the inputs are made here and sent to the device, the artifact runs there with the
    device's runtime, and its outputs are compared here with PyTorch's at the same tolerances."""
    from aestheticnet.export.verify import (
        DEFAULT_SHAPES,
        OutsideBounds,
        ParityError,
        VerifyOptions,
        check_parity,
        format_table,
    )
    from aestheticnet.io import atomic_write_json
    from aestheticnet.sizes import parse_shapes

    asked = shapes is not None
    options = VerifyOptions(
        shapes=parse_shapes(shapes, "--shapes") if asked else DEFAULT_SHAPES,
        outside_bounds=OutsideBounds.REFUSE if asked else OutsideBounds.SKIP,
        data=data,
        samples=samples,
        threads=threads,
        check_integrity=not no_integrity_check,
    )
    if device == "local":
        try:
            report = check_parity(artifact, reference, options)
        except ParityError as exc:
            report = exc.report
    else:
        report = _verify_on_device(artifact, reference, options, device, ssh_options, remote_python)
    failed = not report.passed
    click.echo(format_table(report))
    if json_path is not None:
        atomic_write_json(json_path, json.loads(json.dumps(report.to_dict(), default=str)))
    if failed:
        sys.exit(1)


def _verify_on_device(artifact, reference, options, device, ssh_options, remote_python):
    # A device that cannot be reached or run the artifact raises BenchError (a ValueError): exit 2 with its message.
    from aestheticnet.bench import parse_device, verify_on_device

    target = parse_device(device, ssh_options=ssh_options, remote_python=remote_python)
    return verify_on_device(artifact, reference, target, options)


COMMANDS = [export, verify]
