"""Local contrast normalisation in front of the stem (``input_norm="lcn"`` or ``"mscn"``).

No-reference quality models have to tell distortions from content. Dividing out the local mean and contrast
(the "MSCN" coefficients of BRISQUE, Mittal et al. 2012, and the local normalisation of Kang et al.'s CNN-IQA,
CVPR 2014) removes most of the content: what is left is the local structure that blur, noise, blocking and
pixelation change, and it looks alike on every photo.

* ``mscn``: the network sees only the normalised coefficients (3 channels). Trained on few source photos this is
  what generalises to unseen ones (benchmarks/train_default.py gives the measurements), at the price of most of
  the information about global brightness, contrast and colour distortions.
* ``lcn``: the original channels next to the coefficients (6 channels), for datasets with enough content that
  the network does not learn the photos themselves.

The module has no parameters (checkpoints keep the same keys) and uses only average pooling, products, a square
root and a division, so it exports to ONNX, TFLite and CoreML like the rest of the stem. Windows at the border
average only real pixels (the export-safe quotient of two count-including poolings, as in ``AvgPool3x3``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["INPUT_NORMS", "LocalContrastNorm", "make_input_norm"]

INPUT_NORMS = {"none": 3, "lcn": 6, "mscn": 3}  # name -> channels the stem receives


class LocalContrastNorm(nn.Module):
    """``cat([x, (x - mu) / (sigma + eps)])`` with mu, sigma the mean and deviation over a k x k window."""

    def __init__(self, kernel: int = 7, eps: float = 0.05, keep_input: bool = True):
        super().__init__()
        self.keep_input = keep_input
        if kernel < 3 or kernel % 2 == 0:
            raise ValueError(f"LocalContrastNorm kernel={kernel}: need an odd size >= 3")
        self.kernel, self.eps = kernel, eps

    def _mean(self, x: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        return F.avg_pool2d(x, self.kernel, 1, self.kernel // 2, count_include_pad=True) / valid

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        ones = torch.ones_like(x[:1, :1])
        valid = F.avg_pool2d(ones, self.kernel, 1, self.kernel // 2, count_include_pad=True)
        mu = self._mean(x, valid)
        # relu, not clamp: rounding can make E[x^2] - mu^2 slightly negative; relu exports everywhere.
        sigma = torch.sqrt(F.relu(self._mean(x * x, valid) - mu * mu))
        normalised = (x - mu) / (sigma + self.eps)
        return torch.cat([x, normalised], dim=1) if self.keep_input else normalised


def make_input_norm(name: str) -> nn.Module:
    if name not in INPUT_NORMS:
        raise ValueError(f"input_norm={name!r} is not known; valid: {', '.join(INPUT_NORMS)}")
    if name == "none":
        return nn.Identity()
    return LocalContrastNorm(keep_input=name == "lcn")
