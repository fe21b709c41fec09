"""``verify``: does an exported artifact compute what the PyTorch checkpoint computes?

Checks, in order (HF optimum's order: names, then shapes, then values), every failure collected rather than the
first raised:

1. provenance: the manifest's source sha256 equals the reference checkpoint's;
2. interface: input/output names, the input layout and dynamic dims the manifest promises;
3. per shape (default: sizes and a batch never used during export, 224x224 .. 96x640 and batch 3): output shape,
   then max abs difference of the distributions, mean-score difference, PSNR, high/low class agreement; a default
   shape outside the bounds the artifact was exported for is skipped and reported, a shape given is refused
   (:mod:`~aestheticnet.export.verify_shapes`);
4. with ``--data``: the same on real images through the checkpoint's preprocessing, plus SROCC and PLCC between
   the artifact's and PyTorch's mean scores. The inputs at the test shapes are then real images resized to each
   shape; without data they are Gaussian noise, which int8 models (calibrated on images) are not gated on.

Thresholds come from :data:`aestheticnet.artifacts.SPECS` for the artifact's format and the precision its manifest
records (an artifact without a manifest fails that check and is gated as fp32, the strictest). A CoreML package
also gets spec checks (inputs, flexible ranges, image scale/bias, ops, metadata). Its numbers come from Core ML on
macOS and from the MIL evaluator elsewhere (the package's ML program computed with torch kernels); the report's
``evaluated_by`` says which, so numbers from the evaluator are never taken for Core ML's on a device.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from aestheticnet.artifacts import (
    INPUT_NAME,
    OUTPUT_NAME,
    Precision,
    Tolerance,
    check_digest,
    format_of_path,
    manifest_precision,
    read_manifest,
    tolerance_for,
)
from aestheticnet.export.registry import exporter_for
from aestheticnet.export.verify_report import Mismatch, ParityError, VerifyReport
from aestheticnet.export.verify_shapes import DEFAULT_SHAPES, OutsideBounds, planned_shapes
from aestheticnet.export.verify_table import format_table
from aestheticnet.metrics import mean_score
from aestheticnet.sizes import Shape

__all__ = [
    "DEFAULT_SHAPES",
    "Mismatch",
    "OutsideBounds",
    "ParityError",
    "VerifyOptions",
    "VerifyReport",
    "check_parity",
    "format_table",
    "verify_artifact",
]

# Below this spread of the reference's mean scores (1..N scale) rank correlations are not meaningful.
MIN_SCORE_SPREAD = 1e-3


def _compare(ref: np.ndarray, got: np.ndarray, buckets: np.ndarray) -> dict[str, float]:
    diff = np.abs(got.astype(np.float64) - ref.astype(np.float64))
    ms_ref, ms_got = mean_score(ref, buckets), mean_score(got, buckets)
    mse = float(np.mean(diff**2))
    threshold = buckets[-1] / 2.0  # 5 on AVA's 1..10: the usual high/low split
    return {
        "max_abs": float(diff.max()),
        "mean_score_diff": float(np.abs(ms_got - ms_ref).max()),
        "psnr_db": float("inf") if mse == 0 else 10.0 * math.log10(1.0 / mse),
        "agreement": float(np.mean((ms_ref > threshold) == (ms_got > threshold))),
    }


def _gate(report: VerifyReport, tol: Tolerance, values: dict[str, float], where: str, agreement: bool = True) -> str:
    """Record a mismatch for every value outside its tolerance. High/low agreement is a rate: it is gated on the
    real-image set only (one random sample near the threshold says nothing)."""
    status = "ok"
    checks = (
        ("max_abs", tol.max_abs, "<="),
        ("mean_score_diff", tol.mean_score, "<="),
        ("psnr_db", tol.psnr_db, ">="),
        ("agreement", tol.agreement, ">="),
        ("srocc", tol.srocc, ">="),
        ("plcc", tol.plcc, ">="),
    )
    for key, limit, op in checks:
        if limit is None or key not in values or (key == "agreement" and not agreement):
            continue
        value = values[key]
        if value is None:
            continue
        ok = not math.isnan(value) and (value <= limit if op == "<=" else value >= limit)
        if not ok:
            report.mismatches.append(Mismatch(key, where, f"{op} {limit:g}", f"{value:.4g}"))
            status = "FAIL"
    return status


@dataclass(frozen=True)
class VerifyOptions:
    """What ``verify`` runs on: input ``shapes`` (default :data:`DEFAULT_SHAPES`), real images (``data``, up to
    ``samples`` of them) besides Gaussian noise drawn from ``seed``, the runtimes' ``threads``; ``check_integrity``
    refuses an artifact whose sha256 differs from its manifest's. ``outside_bounds``: what to do with a shape
    outside the artifact's bounds; None: skip those of :data:`DEFAULT_SHAPES`, refuse shapes given."""

    shapes: tuple[Shape, ...] = DEFAULT_SHAPES
    data: Path | None = None
    samples: int = 50
    threads: int | None = None
    seed: int = 0
    check_integrity: bool = True
    outside_bounds: OutsideBounds | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "shapes", tuple(self.shapes))
        if self.outside_bounds is None:
            default = OutsideBounds.SKIP if self.shapes == DEFAULT_SHAPES else OutsideBounds.REFUSE
            object.__setattr__(self, "outside_bounds", default)
        if not isinstance(self.outside_bounds, OutsideBounds):
            valid = ", ".join(f"OutsideBounds.{m.name}" for m in OutsideBounds)
            raise TypeError(f"verify: outside_bounds={self.outside_bounds!r}; expected one of {valid}")
        if self.data is not None:
            object.__setattr__(self, "data", Path(self.data))
        if not self.shapes:
            raise ValueError("verify: no input shapes given")
        if self.samples < 1:
            raise ValueError(f"verify: samples must be >= 1, got {self.samples}")


def verify_artifact(
    artifact: str | os.PathLike,
    reference: str | os.PathLike,
    options: VerifyOptions = VerifyOptions(),  # noqa: B008 - frozen dataclass
    cache: dict | None = None,
    backend=None,
) -> VerifyReport:
    """Run every check; the report's ``mismatches`` is empty when the artifact passes.

    Before any work: an artifact whose sha256 differs from its manifest's is refused (unless
    ``options.check_integrity`` is False); shapes outside the dynamic range the manifest declares are refused or
    skipped as ``options.outside_bounds`` says (:func:`~aestheticnet.export.verify_shapes.planned_shapes`).

    ``cache``: a dict reused across calls with the same reference, data and seed (benchmarks verifying many
    artifacts): the reference outputs and the loaded images are computed once. ``backend``: what computes the
    artifact's outputs (default: ``runtime.load(artifact)`` here; ``aestheticnet.bench.verify_on_device`` passes
    one whose outputs come from a device).
    """
    from aestheticnet.runtime.loading import load

    cache = {} if cache is None else cache
    artifact, reference = Path(artifact), Path(reference)
    fmt = format_of_path(artifact)
    if not artifact.exists():
        raise FileNotFoundError(f"{artifact}: no such artifact")
    # Clear errors for a bad reference before anything else. One thread unless told otherwise: PyTorch's OpenMP
    # workers spin-wait, and on a busy 2-core machine 2 threads made this small-batch loop ~40x slower.
    ref = load(reference, threads=options.threads or 1)
    manifest = read_manifest(artifact, required=False)
    shapes, notes = planned_shapes(manifest, options.shapes, options.outside_bounds)
    if options.check_integrity:
        check_digest(artifact, manifest)
    precision = manifest_precision(manifest, artifact) if manifest is not None else Precision.FP32
    tol = tolerance_for(fmt, precision)
    report = VerifyReport(str(artifact), fmt.value, precision.value, str(reference), tol.to_dict(), notes=notes)
    _check_provenance(report, manifest, reference)
    report.spec, problems = exporter_for(fmt).check_artifact(artifact, manifest)
    for problem in problems:
        report.mismatches.append(Mismatch(problem["check"], "spec", problem["expected"], problem["got"]))
    if backend is None:
        backend = load(artifact, threads=options.threads, check_integrity=False)  # checked above
    report.runtime = backend.name
    report.evaluated_by = backend.evaluated_by or backend.name
    report.interface = _interface(backend, manifest, report)
    _check_values(report, _Run(ref, backend, tol, options, cache), precision, shapes)
    return report


@dataclass
class _Run:
    """The two models of one verify, its gates and options, and the cache shared across calls."""

    ref: Any
    backend: Any
    tol: Tolerance
    options: VerifyOptions
    cache: dict

    @property
    def buckets(self) -> np.ndarray:
        return np.asarray(self.ref.score_buckets, dtype=np.float64)


def _check_provenance(report: VerifyReport, manifest, reference: Path) -> None:
    from aestheticnet.io import sha256_file

    if manifest is None:
        report.notes.append("no manifest found next to the artifact or embedded in it")
        report.mismatches.append(Mismatch("manifest", "artifact", "a sidecar or embedded manifest", "none"))
        return
    want, got = manifest.source.sha256, sha256_file(reference)
    if want != got:
        report.mismatches.append(Mismatch("source checkpoint sha256", "manifest", want, got))


def _check_values(report: VerifyReport, run: _Run, precision: Precision, shapes) -> None:
    """Outputs at every shape (``shapes``: each with why it is skipped, or None), then on the real images (with
    ``data``)."""
    options, int8 = run.options, precision in (Precision.INT8, Precision.INT8_DYNAMIC)
    images = data_info = None
    if options.data is not None:
        from aestheticnet.export.calibration import load_images

        key = ("images", str(options.data), options.samples)
        if key not in run.cache:
            run.cache[key] = load_images(options.data, run.ref.preprocess, options.samples)
        images, _, data_info = run.cache[key]
    elif int8:
        report.notes.append(
            "int8 activation ranges are calibrated on real images and Gaussian-noise inputs fall "
            "outside them: values at the test shapes are reported, not gated; pass --data"
        )
    gated = images is not None or not int8
    key = (str(run.ref.path), str(options.data), options.samples, options.seed)
    inputs = _ShapeInputs(run.ref, images, options.seed, run.cache, key)
    for shape, skipped in shapes:
        if skipped:
            n, h, w = shape.batch, shape.height, shape.width
            inputs.skip(n, h, w)
            report.shapes.append({"shape": f"{n}x3x{h}x{w}", "status": "skipped", "reason": skipped})
        else:
            _check_shape(report, run.backend, inputs, shape, run.buckets, run.tol, gated)
    if images is not None:
        report.real = _real_images(report, run, images, data_info)


class _ShapeInputs:
    """Inputs and reference outputs per shape, drawn in order from one generator and kept in ``cache``."""

    def __init__(self, ref, images, seed: int, cache: dict, key: tuple):
        self.ref, self.images, self.cache, self.key = ref, images, cache, key
        self.rng = np.random.default_rng(seed)

    def get(self, n: int, h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
        key = ("shape", *self.key, n, h, w)
        if key not in self.cache:
            x = _shape_inputs(self.images, n, h, w, self.rng)
            self.cache[key] = (x, self.ref.run(x))
        else:
            self.skip(n, h, w)  # keep the generator in step with an uncached run
        return self.cache[key]

    def skip(self, n: int, h: int, w: int) -> None:
        """Draw what :meth:`get` would, so that a shape's inputs do not depend on which others were checked."""
        _shape_inputs(self.images, n, h, w, self.rng)


def _check_shape(report: VerifyReport, backend, inputs: _ShapeInputs, shape: Shape, buckets, tol, gated: bool):
    n, h, w = shape.batch, shape.height, shape.width
    where = f"{n}x3x{h}x{w}"
    x, expected = inputs.get(n, h, w)
    try:
        got = backend.run(x)
    except Exception as exc:  # noqa: BLE001
        report.mismatches.append(Mismatch("run", where, "a result", f"{type(exc).__name__}: {str(exc)[:200]}"))
        report.shapes.append({"shape": where, "status": "ERROR"})
        return
    if got.shape != expected.shape:
        report.mismatches.append(Mismatch("output shape", where, list(expected.shape), list(got.shape)))
        report.shapes.append({"shape": where, "status": "FAIL"})
        return
    if not _all_finite(report, where, expected, got):
        report.shapes.append({"shape": where, "status": "FAIL"})
        return
    values = _compare(expected, got, buckets)
    values["input"] = "real images resized" if inputs.images else "gaussian noise"
    values["status"] = _gate(report, tol, values, where, agreement=False) if gated else "not gated"
    report.shapes.append({"shape": where, **values})


def _all_finite(report: VerifyReport, where: str, expected: np.ndarray, got: np.ndarray) -> bool:
    """False, with a mismatch for each side, when PyTorch's or the artifact's outputs hold a NaN or an infinity:
    every comparison with such a value is false, so no tolerance could catch it."""
    finite = True
    for who, values in (("PyTorch reference", expected), ("artifact", got)):
        bad = int((~np.isfinite(values)).sum())
        if bad:
            mismatch = Mismatch(f"finite {who} outputs", where, "no NaN or Inf", f"{bad} of {values.size}")
            report.mismatches.append(mismatch)
            finite = False
    return finite


def check_parity(artifact, reference, options: VerifyOptions = VerifyOptions(), cache=None) -> VerifyReport:  # noqa: B008
    """:func:`verify_artifact`, raising :class:`ParityError` (with every mismatch) when anything fails."""
    report = verify_artifact(artifact, reference, options, cache)
    if not report.passed:
        raise ParityError(report)
    return report


def _interface(backend, manifest, report: VerifyReport) -> dict[str, Any]:
    interface = backend.interface()
    if interface.io_names is not None and interface.io_names != (INPUT_NAME, OUTPUT_NAME):
        report.mismatches.append(Mismatch("io names", "interface", [INPUT_NAME, OUTPUT_NAME], list(interface.io_names)))
    if interface.dynamic is not None and interface.dynamic[0] != interface.dynamic[1]:
        report.mismatches.append(Mismatch("dynamic dims", "interface", *interface.dynamic))
    if manifest is not None and manifest.input.layout != backend.input_layout:
        report.mismatches.append(Mismatch("layout", "manifest", backend.input_layout, manifest.input.layout))
    return interface.details


def _shape_inputs(images, n: int, h: int, w: int, rng) -> np.ndarray:
    """``n`` inputs of ``h x w``: real preprocessed images resized (bilinear) when there are any, else N(0, 1)
    noise (the normalised-pixel scale)."""
    if not images:
        return rng.standard_normal((n, 3, h, w)).astype(np.float32)
    import torch
    import torch.nn.functional as F

    picked = [images[int(i)] for i in rng.integers(0, len(images), n)]
    out = [
        F.interpolate(torch.from_numpy(x)[None], size=(h, w), mode="bilinear", align_corners=False)[0] for x in picked
    ]
    return torch.stack(out).numpy().astype(np.float32)


def _real_images(report: VerifyReport, run: _Run, images, info) -> dict[str, Any]:
    from aestheticnet.metrics import plcc, srocc

    ref, backend, buckets, tol, cache = run.ref, run.backend, run.buckets, run.tol, run.cache
    key = ("real", str(ref.path), str(run.options.data), run.options.samples)
    if key not in cache:  # one at a time: shapes differ under the aspect policy
        cache[key] = np.stack([ref.run(x[None])[0] for x in images])
    expected = cache[key]
    got = np.stack([backend.run(x[None])[0] for x in images])
    if not _all_finite(report, f"{len(images)} real images", expected, got):
        return {"n": len(images), "status": "FAIL", "data": info}
    values = _compare(expected, got, buckets)
    ms_ref, ms_got = mean_score(expected, buckets), mean_score(got, buckets)
    values.update(
        srocc=srocc(ms_ref, ms_got), plcc=plcc(ms_ref, ms_got), n=len(images), reference_score_std=float(np.std(ms_ref))
    )
    if math.isnan(values["srocc"]) or values["reference_score_std"] < MIN_SCORE_SPREAD:
        # An untrained network scores every image the same: ranks are then set by rounding noise.
        report.notes.append(
            f"real images: the reference's mean scores barely vary (std {values['reference_score_std']:.2e} < "
            f"{MIN_SCORE_SPREAD:g}), so SROCC/PLCC measure noise; correlations reported, not gated"
        )
        values["srocc_gated"] = False
        tol = Tolerance(**{**tol.to_dict(), "srocc": None, "plcc": None})
    values["status"] = _gate(report, tol, values, f"{len(images)} real images")
    values["data"] = info
    return values
