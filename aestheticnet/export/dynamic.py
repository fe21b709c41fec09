"""Dynamic-shape declarations shared by the exporters (torch.export for ONNX and CoreML).

H and W are declared as ``multiple * Dim``: the network only accepts multiples of 32, and a plain Dim makes
torch.export specialise or fail on the even-size requirement of the reductions. The example
batch is 2 because torch.export specialises a dimension of size 1.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.export import Dim

from aestheticnet.sizes import MAX_BATCH, MAX_SIDE, SIZE_MULTIPLE

__all__ = ["DynamicSpec", "example_input"]


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
        batch = Dim("batch", min=1, max=self.max_batch)
        h = Dim("h_blocks", min=lo, max=hi)
        w = Dim("w_blocks", min=lo, max=hi)
        return {0: batch, 2: self.multiple * h, 3: self.multiple * w}


def example_input(size: tuple[int, int] = (224, 224), batch: int = 2) -> torch.Tensor:
    # Deterministic, non-constant values: constant inputs hide layout bugs in converters.
    g = torch.Generator().manual_seed(0)
    return torch.rand(batch, 3, *size, generator=g) * 2 - 1
