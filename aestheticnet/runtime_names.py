"""The names of the runtimes that run a model file: what a ``Backend`` reports, what the device runner's
``--backend`` takes, what a latency table is made for and what reports print."""

from __future__ import annotations

from enum import StrEnum

__all__ = ["RuntimeName"]


class RuntimeName(StrEnum):
    PYTORCH = "pytorch"
    ONNXRUNTIME = "onnxruntime"
    LITERT = "litert"
    EXECUTORCH = "executorch"
    COREML = "coreml"
    MIL_EVALUATOR = "mil-evaluator"
