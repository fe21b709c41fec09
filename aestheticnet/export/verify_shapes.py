"""Which shapes ``verify`` checks: its defaults, and what it does with a shape outside the bounds an artifact was
exported for (its manifest's ``input.dynamic``). An ExecuTorch program is exported for its model's own inputs (batch
1, sides up to the preprocessing's longest), so shapes verify chose for every format may fall outside it: those are
skipped and reported; shapes a user asked for are refused before any work."""

from __future__ import annotations

from enum import StrEnum

from aestheticnet.artifacts import Manifest, check_shapes, outside_bounds
from aestheticnet.sizes import Shape, SizeError

__all__ = ["DEFAULT_SHAPES", "OutsideBounds", "planned_shapes"]

# The export traced batch 2 at 224x224; batch 3 and these sizes were never seen.
DEFAULT_SHAPES: tuple[Shape, ...] = (
    Shape(224, 224),
    Shape(320, 256),
    Shape(512, 384),
    Shape(96, 640),
    Shape(224, 224, batch=3),
)


class OutsideBounds(StrEnum):
    """What verify does with a shape outside the bounds the artifact's manifest declares (``input.dynamic``; an
    ExecuTorch program is exported for its model's inputs only, batch 1 and the preprocessing's longest side)."""

    SKIP = "skip"  # report it as skipped, with the reason: for shapes verify chose, not the user for this artifact
    REFUSE = "refuse"  # refuse the whole run before any work: for shapes the user asked for


def planned_shapes(
    manifest: Manifest | None, shapes: tuple[Shape, ...], outside: OutsideBounds
) -> tuple[list[tuple[Shape, str | None]], list[str]]:
    """Each of ``shapes`` with why it is skipped (None: it is checked), and the report's notes about them. Shapes
    outside the manifest's bounds are refused (:class:`~aestheticnet.artifacts.ManifestError` naming ``--shapes``)
    or skipped, as ``outside`` says; when every one is skipped, the largest shape the bounds allow is checked
    instead, so that a pass never rests on no shape at all."""
    if manifest is None:
        return [(s, None) for s in shapes], []
    if outside == OutsideBounds.REFUSE:
        check_shapes(manifest, shapes, "--shapes")
    planned = [(s, outside_bounds(manifest, s)) for s in shapes]
    skipped = [f"{s} ({why})" for s, why in planned if why]
    if not skipped:
        return planned, []
    notes = [f"skipped, outside the bounds this artifact was exported for (input.dynamic): {', '.join(skipped)}"]
    if all(why for _, why in planned):
        try:
            largest = Shape(*(manifest.input.upper_bound(dim) for dim in ("height", "width", "batch")))
        except SizeError:  # unbounded, or beyond what the size grammar takes
            return planned, notes
        planned.append((largest, None))
        notes.append(f"no requested shape is within the bounds: checked at their largest, {largest}")
    return planned, notes
