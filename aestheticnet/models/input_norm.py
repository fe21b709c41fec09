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
    """``cat([x, (x - mu) / sqrt(sigma^2 + eps^2)])``: mu the mean over a k x k window, sigma^2 the window mean of
    ``(x - mu)^2`` (each pixel centred on its own window's mean)."""

    # eps is in units of the input (normalised by the dataset std): contrast well below it passes in proportion
    # (so the strength of noise or blur on a flat area shows), contrast well above it is normalised away. With
    # 0.05 nearly everything was normalised, and a densely textured photo looked like a noisy one: the demo's
    # AestheticNet* ranked its unseen photos at SROCC 0.46; with 1.0, 0.56 (same genotype, seed and budget).
    def __init__(self, kernel: int = 7, eps: float = 1.0, keep_input: bool = True):
        super().__init__()
        self.keep_input = keep_input
        if kernel < 3 or kernel % 2 == 0:
            raise ValueError(f"LocalContrastNorm kernel={kernel}: need an odd size >= 3")
        self.kernel, self.eps = kernel, eps
        # How the window means are computed (the same means, rounded differently): "quotient", the form ONNX,
        # TFLite and Core ML convert correctly; "wide" for XNNPACK (ExecuTorch), set on the export copy.
        self.form = "quotient"

    def _quotient_means(self, x: torch.Tensor):
        # Both poolings count the padded zeros; the quotient averages real pixels only (as AvgPool3x3). The
        # divisor depends on the size only, so both means of a forward share it.
        pad = self.kernel // 2
        ones = torch.ones_like(x[:1, :1])
        valid = F.avg_pool2d(ones, self.kernel, 1, pad, count_include_pad=True)
        return lambda t: F.avg_pool2d(t, self.kernel, 1, pad, count_include_pad=True) / valid

    def _wide_mean(self, x: torch.Tensor) -> torch.Tensor:
        # The box filter as two 1-D passes, each pooling along dim 2 of an [N, L * C, M, 1] view, so that the
        # other image axis and the channels are the pooling's channels. XNNPACK (channels-last) vectorises
        # pooling over channels: the whole normaliser at 224x224, 1 thread, took 5.6 ms with 7x7 means over the
        # image's 3 channels, 2.2 ms with 1x7 and 7x1 passes over them, 0.54 ms in this form. A window that
        # overhangs the border averages real pixels only, in each pass, and so in the product of both (the real
        # pixels of a window form a rectangle).
        n, c, h, w = x.shape
        pad = self.kernel // 2

        def pass_along_dim2(t: torch.Tensor) -> torch.Tensor:
            return F.avg_pool2d(t, (self.kernel, 1), 1, (pad, 0), count_include_pad=False)

        columns = pass_along_dim2(x.permute(0, 3, 1, 2).reshape(n, w * c, h, 1))  # along H
        rows = columns.reshape(n, w, c, h).permute(0, 3, 2, 1).reshape(n, h * c, w, 1)
        return pass_along_dim2(rows).reshape(n, h, c, w).permute(0, 2, 1, 3)  # along W, back to NCHW

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mean = self._wide_mean if self.form == "wide" else self._quotient_means(x)
        centred = x - mean(x)
        # The deviation is the window mean of squared *centred* values, not E[x^2] - mu^2: in flat regions that
        # difference cancels to rounding noise, and float32 evaluations that round differently (PyTorch, ONNX
        # Runtime, LiteRT) disagree by up to 1.5e-5 on a trained model's output, over the 1e-5 fp32 tolerance;
        # centred first, float32 stays within 1.3e-6 of float64. eps^2 under the root keeps the scale smooth at 0.
        sigma = torch.sqrt(mean(centred * centred) + self.eps * self.eps)
        normalised = centred / sigma
        return torch.cat([x, normalised], dim=1) if self.keep_input else normalised


def make_input_norm(name: str) -> nn.Module:
    if name not in INPUT_NORMS:
        raise ValueError(f"input_norm={name!r} is not known; valid: {', '.join(INPUT_NORMS)}")
    if name == "none":
        return nn.Identity()
    return LocalContrastNorm(keep_input=name == "lcn")
