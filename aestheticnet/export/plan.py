"""What one ``export_checkpoint`` call will make: the (format, precision) pairs, their paths and their manifests.

Everything here is decided before any model is loaded or converted, so a bad request fails at once with a message
that says what each format offers.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from aestheticnet.artifacts import SPECS, Format, Precision, UnknownFormatError, UnknownPrecisionError, artifact_name
from aestheticnet.artifacts.formats import members
from aestheticnet.artifacts.manifest import Manifest, SourceInfo, build_manifest
from aestheticnet.export.dynamic import DynamicSpec, planned_spec
from aestheticnet.export.errors import ExportError
from aestheticnet.export.options import ExportOptions

__all__ = ["ExportOptions", "ExportPlan", "Manifests", "make_plan"]


@dataclass
class ExportPlan:
    checkpoint: Path
    out: Path
    stem: str
    pairs: list[tuple[Format, Precision]]  # what will be made, in request order
    skipped: list[str]  # "format/precision" asked for but not offered by that format
    options: ExportOptions
    meta: dict[str, Any] = field(default_factory=dict)  # the checkpoint's metadata
    # The bounds of the formats that plan memory for them (ExecuTorch): options.max_batch / max_side, else batch 1
    # and the longest side the checkpoint's preprocessing produces.
    planned_spec: DynamicSpec = field(default_factory=DynamicSpec)

    def precisions(self, fmt: Format) -> list[Precision]:
        return [p for f, p in self.pairs if f == fmt]

    def path(self, fmt: Format, precision: Precision) -> Path:
        return self.out / artifact_name(self.stem, fmt, precision)

    @property
    def formats(self) -> list[Format]:
        return list(dict.fromkeys(f for f, _ in self.pairs))

    @property
    def needs_onnx(self) -> bool:
        """Whether a requested format is, or converts from, the fp32 ONNX file."""
        from aestheticnet.export.registry import exporter_for

        return any(exporter_for(f).from_onnx for f in self.formats)

    @property
    def needs_calibration(self) -> bool:
        from aestheticnet.export.registry import exporter_for

        return any(p in exporter_for(f).calibrated for f, p in self.pairs)


def make_plan(
    checkpoint: str | os.PathLike,
    formats: Iterable[Format],
    precisions: Iterable[Precision],
    out_dir: str | os.PathLike,
    options: ExportOptions,
    name: str | None = None,
) -> ExportPlan:
    """The plan of one export; raises :class:`ExportError` for anything that cannot be done as asked."""
    from aestheticnet.data.preprocess import Preprocess
    from aestheticnet.models import read_metadata

    fmts = members(formats, Format, "export format", UnknownFormatError)
    precs = members(precisions, Precision, "precision", UnknownPrecisionError)
    offered = [(f, p) for f in fmts for p in precs if p in SPECS[f].tolerances]
    skipped = [f"{f.value}/{p.value}" for f in fmts for p in precs if p not in SPECS[f].tolerances]
    if not offered:
        raise ExportError(
            f"none of the formats {[f.value for f in fmts]} offers the precisions {[p.value for p in precs]}; "
            + "; ".join(f"{s.name}: {', '.join(p.value for p in s.precisions)}" for s in SPECS.values())
        )
    checkpoint = Path(checkpoint)
    plan = ExportPlan(
        checkpoint, Path(out_dir), name or checkpoint.name.removesuffix(".safetensors"), offered, skipped, options
    )
    if plan.needs_calibration and options.data is None:
        raise ExportError(
            "int8 for ONNX/TFLite/ExecuTorch is calibrated on real images: pass --data DIR (a dataset or a folder of "
            "images)"
        )
    plan.meta = read_metadata(checkpoint)
    if options.spec is None:
        multiple = int(plan.meta.get("preprocess", {}).get("multiple", 32))
        plan.options = replace(options, spec=DynamicSpec(multiple=multiple))
    longest = Preprocess.from_dict(dict(plan.meta.get("preprocess", {}))).longest_side
    plan.planned_spec = planned_spec(plan.options.spec, longest, options.max_batch, options.max_side)
    return plan


class Manifests:
    """The manifest of each artifact of a plan, from the checkpoint's metadata and the export's rewrites; each
    format's exporter adds what is its own (``Exporter.manifest``)."""

    def __init__(self, plan: ExportPlan, sha256: str, rewrites: list[str]):
        self.plan, self.rewrites = plan, rewrites
        self.source = SourceInfo(plan.checkpoint.name, sha256, plan.meta.get("package_version"))
        self.bounds = plan.options.spec.bounds()
        self.mean = plan.meta.get("preprocess", {}).get("mean")

    def build(self, fmt: Format, precision: Precision, exporter: dict, **kw) -> Manifest:
        """``kw``: ``dynamic`` (default: the plan's bounds), ``input_kind``, ``input_shape``, ``extra_input``,
        ``calibration``."""
        dynamic = kw.pop("dynamic", self.bounds)
        exporter = {**exporter, "model_rewrites": self.rewrites}
        return build_manifest(self.plan.meta, self.source, fmt, precision, exporter, dynamic, **kw)
