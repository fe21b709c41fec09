"""Bias correction of the classifier after int8 quantisation (both formats; the heads are shifted by
:func:`aestheticnet.export.onnx.graph.shift_onnx_head` and :func:`aestheticnet.export.tflite.graph.shift_tflite_head`).

After quantisation the int8 network's pooled features carry a per-channel offset (most of their error: at the
logits 84% of the squared error was the same for every image). The mean difference of the log-probabilities
between the int8 and the float model over the calibration images is that offset seen at the logits (a constant
added to all logits cancels in the softmax); it is subtracted from the classifier's float bias (Nagel et al. 2019,
"Data-Free Quantization Through Weight Equalization and Bias Correction", section 4.2, empirical variant).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from aestheticnet.runtime.backends import Backend

__all__ = ["logit_shift", "measured_shift"]


def logit_shift(reference: np.ndarray, quantized: np.ndarray, eps: float = 1e-12) -> np.ndarray:
    """Mean over images of ``log quantized - log reference`` (distributions, images x buckets), centred.

    A constant added to every logit does not change a softmax, so the centred mean log-ratio is the mean logit
    error of the quantised model; subtracting it from the classifier's bias removes it.
    """
    ref = np.asarray(reference, np.float64)
    got = np.asarray(quantized, np.float64)
    if ref.shape != got.shape or ref.ndim != 2:
        raise ValueError(f"expected two (images, buckets) arrays of one shape, got {ref.shape} and {got.shape}")
    diff = (np.log(np.maximum(got, eps)) - np.log(np.maximum(ref, eps))).mean(axis=0)
    return (diff - diff.mean()).astype(np.float32)


def measured_shift(backend: type[Backend], reference: str | os.PathLike, quantized: str | os.PathLike, images):
    """:func:`logit_shift` of two model files that ``backend`` runs (the caller's own format), on NCHW images run
    one at a time (their sizes may differ)."""

    def run(path):
        model = backend(Path(path))
        return np.concatenate([model.run(x[None] if x.ndim == 3 else x) for x in images])

    return logit_shift(run(reference), run(quantized))
