"""Export to ONNX with the dynamo exporter and dynamic batch, height and width."""

from __future__ import annotations

import warnings
from pathlib import Path

import torch

from aestheticnet.export.dynamic import DynamicSpec, example_input
from aestheticnet.io import atomic_path

__all__ = ["export_onnx", "INPUT_NAME", "OUTPUT_NAME"]

INPUT_NAME = "image"
OUTPUT_NAME = "distribution"


def export_onnx(
    model: torch.nn.Module,
    path: str | Path,
    opset: int = 18,
    example_size: tuple[int, int] = (224, 224),
    spec: DynamicSpec = DynamicSpec(),
) -> Path:
    """Write ``model`` (eval mode) to ``path`` atomically; input ``image`` NCHW float32, output ``distribution``."""
    if opset < 18:
        raise ValueError(f"opset {opset} is too old for the dynamo exporter; use 18 or newer")
    path = Path(path)
    model = model.eval()
    x = example_input(example_size)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # exporter chatter about unrelated optional packages
        program = torch.onnx.export(
            model,
            (x,),
            dynamo=True,
            opset_version=opset,
            input_names=[INPUT_NAME],
            output_names=[OUTPUT_NAME],
            dynamic_shapes={"x": spec.dims()},
            verbose=False,
        )
    with atomic_path(path) as tmp:
        program.save(str(tmp))
    return path
