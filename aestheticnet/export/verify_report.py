"""What ``verify`` found: every mismatch (:class:`Mismatch`), the report (:class:`VerifyReport`, JSON-ready) and
the error that carries them (:class:`ParityError`)."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

__all__ = ["Mismatch", "ParityError", "VerifyReport"]


@dataclass
class Mismatch:
    check: str
    where: str
    expected: Any
    got: Any

    def __str__(self) -> str:
        return f"{self.check} [{self.where}]: expected {self.expected}, got {self.got}"


class ParityError(Exception):
    """The artifact does not match the reference; ``mismatches`` lists every failed check."""

    def __init__(self, report: VerifyReport):
        self.report = report
        self.mismatches = report.mismatches
        lines = "\n".join(f"  - {m}" for m in self.mismatches)
        super().__init__(f"{report.artifact}: {len(self.mismatches)} parity check(s) failed:\n{lines}")


@dataclass
class VerifyReport:
    artifact: str
    format: str
    precision: str
    reference: str
    tolerance: dict
    runtime: str | None = None
    evaluated_by: str | None = None
    interface: dict = field(default_factory=dict)
    shapes: list[dict] = field(default_factory=list)
    real: dict | None = None
    spec: dict | None = None
    # Where the artifact's outputs were computed when not on this machine: the device, its ISA, runtime versions.
    device: dict | None = None
    notes: list[str] = field(default_factory=list)
    mismatches: list[Mismatch] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.mismatches

    def to_dict(self) -> dict:
        """JSON-ready: NaN becomes None and an infinite PSNR (identical outputs) the string "inf"."""
        d = asdict(self)
        d["passed"] = self.passed
        return _finite(d)


def _finite(value):
    if isinstance(value, float) and not math.isfinite(value):
        return None if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    if isinstance(value, np.generic):
        return _finite(value.item())
    return value
