"""Profile extension for ``aestheticnet info``: MACs and params per stage, per cell type and per operation, and
model size per format and precision.

``profile_model`` (profile.py) already gives totals, per-stage sums and per-cell-type sums; this adds

* ``breakdown``: per stage and cell type (``normal``/``reduce``) and per operation of the genotype
  (``sep_conv_3x3``, ``dil_conv_5x5``, ... and the cells' ``preprocess`` convolutions), overall and per stage. The
  sep convs that AestheticNet* dilates in the last stage are listed as e.g. ``sep_conv_3x3@d2``.
* ``sizes``: the model's files per format and precision (a model file and its siblings with the same stem, e.g.
  ``m.onnx``, ``m_fp16.onnx``, ``m_float16.tflite``, ``m.mlpackage``; precision from their manifest, "unknown"
  without one), and the weight size per precision estimated from the parameter count (fp32 4 B, fp16 2 B,
  int8 1 B per weight: a lower bound on a file, which also holds the graph).

MACs use the same counter as ``profile_model`` (``torch.utils.flop_counter``, 2 FLOPs per multiply-add for
convolutions and matrix products; element-wise ops are not counted).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch.utils.flop_counter import FlopCounterMode

from aestheticnet.artifacts import SPECS, Format
from aestheticnet.bench.manifest import artifact_manifest, file_format, model_formats, precision_of
from aestheticnet.models import Part, ScoringModel, count_parameters

__all__ = ["BYTES_PER_WEIGHT", "format_info_extension", "info_extension", "model_sizes", "profile_breakdown"]

BYTES_PER_WEIGHT = {"fp32": 4, "fp16": 2, "int8": 1}
CELL_KINDS = ("normal", "reduce")
# The parts outside the cells, by group, and their names in the breakdown.
OUTSIDE_CELLS = {"stem": "stem", "attention": "attention (CBAM)", "head": "head (linear)"}


def _params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def _add(table: dict, key: str, params: int, macs: int) -> None:
    entry = table.setdefault(key, {"count": 0, "params": 0, "macs": 0})
    entry["count"] += 1
    entry["params"] += params
    entry["macs"] += macs


@torch.no_grad()
def _count_flops(model: ScoringModel, size: tuple[int, int], batch: int) -> FlopCounterMode:
    """The FLOP counter after one eval-mode run of ``model`` at ``size``."""
    was_training = model.training
    model.eval()
    counter = FlopCounterMode(display=False, depth=None)
    try:
        with counter:
            model(torch.zeros(batch, 3, *size))
    finally:
        model.train(was_training)
    return counter


def _cell_tables(cells: list[Part], macs_of: Callable[[str], int]) -> dict[str, dict]:
    """Per stage x cell type, per operation, and per operation within each stage."""
    stage_types: dict[str, dict[str, dict[str, int]]] = {}
    ops: dict[str, dict[str, int]] = {}
    ops_by_stage: dict[str, dict[str, dict[str, int]]] = {}
    for cell in cells:
        _add(stage_types.setdefault(cell.group, {}), cell.kind, _params(cell.module), macs_of(cell.name))
        per_stage = ops_by_stage.setdefault(cell.group, {})
        for piece in cell.pieces:
            p, m = _params(piece.module), macs_of(piece.name)
            _add(ops, piece.kind, p, m)
            _add(per_stage, piece.kind, p, m)
    return {
        "stage_cell_types": stage_types,
        "ops": dict(sorted(ops.items(), key=lambda kv: -kv[1]["macs"])),
        "ops_by_stage": {s: dict(sorted(t.items(), key=lambda kv: -kv[1]["macs"])) for s, t in ops_by_stage.items()},
    }


def _outside_cells(parts: list[Part], macs_of: Callable[[str], int]) -> dict[str, dict[str, int]]:
    """Stem, attention and head; the stem counts once however many modules it has."""
    other = {}
    for group, label in OUTSIDE_CELLS.items():
        members = [p for p in parts if p.group == group]
        other[label] = {
            "count": min(len(members), 1) if group == "stem" else len(members),
            "params": sum(_params(p.module) for p in members),
            "macs": sum(macs_of(p.name) for p in members),
        }
    return other


def profile_breakdown(model: ScoringModel, size: tuple[int, int] = (224, 224), batch: int = 1) -> dict[str, Any] | None:
    """MACs and params per stage x cell type and per operation (overall and per stage), at ``size`` (H, W); None for
    a network without searched cells."""
    parts = model.parts()
    cells = [p for p in parts if p.kind in CELL_KINDS]
    if not cells:
        return None
    counter = _count_flops(model, size, batch)
    flops = counter.get_flop_counts()
    root = type(model).__name__  # the counter names submodules "<RootClass>.<path>"

    def macs_of(path: str) -> int:
        return int(sum(flops.get(f"{root}.{path}", {}).values())) // 2

    return {
        "input_size": [size[0], size[1]],
        "batch": batch,
        "macs": int(counter.get_total_flops()) // 2,
        **_cell_tables(cells, macs_of),
        "outside_cells": _outside_cells(parts, macs_of),
    }


def _dir_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


_PRECISION_TOKENS = (
    "_fp32",
    "_fp16",
    "_float32",
    "_float16",
    "_int8",
    "_uint8",
    "_dynamic_range_quant",
    "_full_integer_quant",
    "_integer_quant",
    "_integer_quant_with_int16_act",
    "_w8",
    "_w8a8",
    "_quant",
    ".fp32",
    ".fp16",
    ".int8",
    ".int8-dynamic",
    "-fp16",
    "-int8",
)


def _base_stem(path: Path) -> str:
    stem = path.name[: -len(path.suffix)] if path.suffix else path.name
    changed = True
    while changed:
        changed = False
        for tok in sorted(_PRECISION_TOKENS, key=len, reverse=True):
            if stem.lower().endswith(tok):
                stem, changed = stem[: -len(tok)], True
    return stem


def model_sizes(params: int | None, path: str | Path | None = None) -> dict[str, Any]:
    """Files per format and precision next to ``path`` (same stem), and weight sizes estimated from ``params``."""
    files: list[dict[str, Any]] = []
    if path is not None:
        path = Path(path)
        base = _base_stem(path).lower()
        folder = path.parent if path.parent != Path("") else Path(".")
        candidates = [path] if path.exists() else []
        if folder.is_dir():
            candidates += sorted(p for p in folder.iterdir() if p != path)
        for p in candidates:
            fmt = file_format(p)
            if fmt not in model_formats() or _base_stem(p).lower() != base:
                continue
            if p.is_dir() and not (fmt in SPECS and SPECS[Format(fmt)].directory):
                continue
            manifest, _ = artifact_manifest(p) if fmt != "safetensors" else (None, None)
            files.append(
                {
                    "path": str(p),
                    "format": fmt,
                    "precision": precision_of(p, manifest),
                    "bytes": _dir_size(p) if p.is_dir() else p.stat().st_size,
                    "manifest": str(p) + ".json" if manifest is not None else None,
                }
            )
    estimates = {k: params * v for k, v in BYTES_PER_WEIGHT.items()} if params else {}
    return {
        "files": files,
        "weights_estimate_bytes": estimates,
        "note": "weights_estimate_bytes = params x bytes per weight (fp32 4, fp16 2, int8 1); files also hold the "
        "graph and, for int8, scales",
    }


def info_extension(
    model: ScoringModel, size: tuple[int, int], path: str | Path | None = None, params: int | None = None
) -> dict[str, Any]:
    """The keys ``aestheticnet info`` adds to its report: ``breakdown`` (null without searched cells) and ``sizes``."""
    params = params if params is not None else count_parameters(model, exclude_auxiliary=True)
    return {"breakdown": profile_breakdown(model, size), "sizes": model_sizes(params, path)}


def _fmt_bytes(n: int) -> str:
    return f"{n / 2**20:.2f} MiB" if n >= 2**20 else f"{n / 1024:.1f} KiB"


def format_info_extension(report: dict[str, Any]) -> list[str]:
    """Text lines for ``info``'s human output (``report`` holds the keys of ``info_extension``)."""
    lines: list[str] = []
    b = report.get("breakdown")
    if b:
        total = b["macs"] or 1
        lines.append("per stage and cell type:")
        for stage, kinds in b["stage_cell_types"].items():
            for kind, agg in kinds.items():
                lines.append(
                    f"  {stage:<11} {kind:<7} cells={agg['count']:<3} params={agg['params']:>10,}  "
                    f"MACs={agg['macs']:>13,} ({100 * agg['macs'] / total:5.1f}%)"
                )
        lines.append("per cell type:")
        kinds_total: dict[str, dict[str, int]] = {}
        for kinds in b["stage_cell_types"].values():
            for kind, agg in kinds.items():
                t = kinds_total.setdefault(kind, {"count": 0, "params": 0, "macs": 0})
                for k in t:
                    t[k] += agg[k]
        for kind, agg in kinds_total.items():
            lines.append(
                f"  {kind:<7} cells={agg['count']:<3} params={agg['params']:>10,}  MACs={agg['macs']:>13,} "
                f"({100 * agg['macs'] / total:5.1f}%)"
            )
        lines.append("per operation (all cells):")
        for op, agg in b["ops"].items():
            lines.append(
                f"  {op:<32} n={agg['count']:<3} params={agg['params']:>10,}  MACs={agg['macs']:>13,} "
                f"({100 * agg['macs'] / total:5.1f}%)"
            )
        for name, agg in b["outside_cells"].items():
            if agg["count"]:
                lines.append(
                    f"  {name:<32}       params={agg['params']:>10,}  MACs={agg['macs']:>13,} "
                    f"({100 * agg['macs'] / total:5.1f}%)"
                )
    s = report.get("sizes")
    if s:
        lines.append("model size:")
        for f in s["files"]:
            lines.append(f"  {f['format']:<12} {f['precision']:<8} {_fmt_bytes(f['bytes']):>12}  {f['path']}")
        for prec, n in s["weights_estimate_bytes"].items():
            lines.append(f"  weights {prec:<12} {_fmt_bytes(n):>12}  (estimate: params x {BYTES_PER_WEIGHT[prec]} B)")
    return lines
