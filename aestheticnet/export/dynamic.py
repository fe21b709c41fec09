"""Dynamic-shape declarations shared by the exporters (torch.export for ONNX, CoreML and ExecuTorch).

H and W are declared as ``multiple * Dim``: the network only accepts multiples of 32, and a plain Dim makes
torch.export specialise or fail on the even-size requirement of the reductions. The example
batch is 2 because torch.export specialises a dimension of size 1; a dimension whose bounds are one value (a batch
of 1) is declared static instead, since a Dim needs min < max.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch
from torch.export import Dim

from aestheticnet.export.errors import ExportError
from aestheticnet.sizes import MAX_BATCH, MAX_SIDE, SIZE_MULTIPLE

__all__ = ["DynamicSpec", "example_input", "planned_spec"]

# torch.export's example side when the bounds allow it: the training size.
_EXAMPLE_SIDE = 224


@dataclass(frozen=True)
class DynamicSpec:
    multiple: int = SIZE_MULTIPLE
    max_batch: int = MAX_BATCH
    min_side: int = SIZE_MULTIPLE
    max_side: int = MAX_SIDE

    def bounds(self) -> dict[str, list[int]]:
        """The manifest's ``input.dynamic``: the batch, height and width ranges an export under this spec accepts."""
        lo = max(self.multiple, self.min_side)
        return {"batch": [1, self.max_batch], "height": [lo, self.max_side], "width": [lo, self.max_side]}

    def dims(self) -> dict[int, object]:
        lo, hi = max(1, self.min_side // self.multiple), self.max_side // self.multiple
        dims: dict[int, object] = {}
        if self.max_batch > 1:
            dims[0] = Dim("batch", min=1, max=self.max_batch)
        if hi > lo:
            dims[2] = self.multiple * Dim("h_blocks", min=lo, max=hi)
            dims[3] = self.multiple * Dim("w_blocks", min=lo, max=hi)
        return dims

    @property
    def example_size(self) -> tuple[int, int]:
        """``(H, W)`` of torch.export's example inside the bounds: the training size where it fits, and at least two
        multiples where the sides are dynamic (an example of one multiple is specialised to a constant)."""
        m = self.multiple
        lo, hi = max(m, self.min_side), self.max_side // m * m
        side = min(hi, max(2 * m, lo, _EXAMPLE_SIDE // m * m))
        return side, side

    @property
    def example_batch(self) -> int:
        return min(2, self.max_batch)


def planned_spec(
    spec: DynamicSpec, longest_side: int, max_batch: int | None = None, max_side: int | None = None
) -> DynamicSpec:
    """``spec`` narrowed for a runtime that plans memory for the upper bounds (ExecuTorch allocates them when a
    method loads): ``max_batch`` images (default 1: a phone scores one photo at a time) of sides up to ``max_side``
    (default ``longest_side``, the longest side the model's preprocessing produces, rounded up to the multiple).

    Refuses a side that is not a multiple of the model's input multiple, one shorter than the preprocessing's longest
    side (the model's own inputs would be refused at run time) and bounds beyond ``spec``'s."""
    m = spec.multiple
    needed = -(-longest_side // m) * m
    side = needed if max_side is None else max_side
    batch = 1 if max_batch is None else max_batch
    if side % m:
        raise ExportError(
            f"--max-side {side}: not a multiple of {m}, the model's input multiple; give {side // m * m or m} or "
            f"{-(-side // m) * m}"
        )
    if side < needed:
        raise ExportError(
            f"--max-side {side} is below {needed}, the longest side the checkpoint's preprocessing produces: the "
            f"inputs it makes would be refused; give at least {needed}"
        )
    if side > spec.max_side or batch > spec.max_batch:
        raise ExportError(
            f"--max-batch {batch} / --max-side {side}: at most a batch of {spec.max_batch} and sides of "
            f"{spec.max_side} (the export's dynamic shapes)"
        )
    return replace(spec, max_batch=batch, max_side=side)


def example_input(size: tuple[int, int] = (224, 224), batch: int = 2) -> torch.Tensor:
    # Deterministic, non-constant values: constant inputs hide layout bugs in converters.
    g = torch.Generator().manual_seed(0)
    return torch.rand(batch, 3, *size, generator=g) * 2 - 1
