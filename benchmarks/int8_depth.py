"""Where full int8 loses an ONNX model's signal: quantisation noise along the depth of the network.

    .venv/bin/python benchmarks/int8_depth.py OUT/star.fp32.onnx OUT/star.int8.onnx --data DIR [--images 8]

For every activation the int8 model quantises, ONNX Runtime's ``qdq_loss_debug`` compares the int8 model's
value with the float model's on the same images: ``end_to_end`` is the signal-to-noise ratio (dB) of the int8
value against fp32 (all error accumulated up to that point), ``local`` the ratio of the tensor before and after
its own QuantizeLinear/DequantizeLinear pair (the rounding at that point alone). Printed per cell (the tensors
are grouped by the ``cells.N.`` weights of the nodes that precede them): the last tensor's end-to-end SNR and the
worst local one. The images are ``--images`` files spread over ``--data``, decoded and preprocessed as the
scoring path does at the model's preprocessing. Writes ``int8_depth.json`` and ``int8_depth.md`` next to the int8
model and prints the Markdown.
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
from pathlib import Path

import numpy as np

from aestheticnet.artifacts import INPUT_NAME, read_manifest
from aestheticnet.bench import save_result
from aestheticnet.data import Preprocess, file_tensor
from aestheticnet.runtime import collect_images


def load_images(data: Path, preprocess: dict, count: int) -> list[np.ndarray]:
    """``count`` image files spread over ``data`` (a dataset's folder or any folder of images), as CHW float32."""
    files = collect_images([data])
    if not files:
        raise SystemExit(f"--data {data}: no image files there")
    step = max(1, len(files) // max(1, count))
    pre = Preprocess.from_dict(preprocess)
    return [file_tensor(path, pre).numpy().astype(np.float32, copy=False) for path in files[::step][:count]]


def calibration_reader(images: list[np.ndarray]):
    """An onnxruntime ``CalibrationDataReader`` handing out one image per call (what ``collect_activations`` reads)."""
    from onnxruntime.quantization import CalibrationDataReader

    class Reader(CalibrationDataReader):
        def __init__(self):
            self._images = iter(images)

        def get_next(self):
            x = next(self._images, None)
            return None if x is None else {INPUT_NAME: np.ascontiguousarray(x[None], np.float32)}

    return Reader()


def activation_errors(fp32: Path, int8: Path, images: list[np.ndarray]) -> tuple[dict, object]:
    """``qdq_loss_debug``'s errors per tensor, and the pre-processed float graph whose tensor names they use."""
    import onnx
    from onnxruntime.quantization.qdq_loss_debug import (
        collect_activations,
        compute_activation_error,
        create_activation_matching,
        modify_model_output_intermediate_tensors,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    with tempfile.TemporaryDirectory() as tmp:
        pre, fp_aug, q_aug = (str(Path(tmp) / n) for n in ("pre.onnx", "fp.onnx", "q.onnx"))
        # the int8 model was quantised from this pre-processed graph: same tensor names
        quant_pre_process(str(fp32), pre, skip_symbolic_shape=True)
        modify_model_output_intermediate_tensors(pre, fp_aug)
        modify_model_output_intermediate_tensors(str(int8), q_aug)
        errors = compute_activation_error(
            create_activation_matching(
                collect_activations(q_aug, calibration_reader(images)),
                collect_activations(fp_aug, calibration_reader(images)),
            )
        )
        return errors, onnx.load(pre).graph


def per_cell(graph, errors: dict) -> dict[str, dict]:
    """Tensors, last end-to-end SNR and worst local SNR per cell (``stem`` before the first cell)."""
    cell, current = {}, "stem"
    for node in graph.node:
        for name in node.input:
            m = re.match(r"cells\.(\d+)\.", name)
            if m:
                current = f"cell {int(m.group(1))}"
        for out in node.output:
            cell[out] = current
    rows: dict[str, dict] = {}
    for node in graph.node:
        for out in node.output:
            e = errors.get(out)
            if e is None:
                continue
            row = rows.setdefault(cell[out], {"tensors": 0, "worst_local_db": float("inf")})
            row["tensors"] += 1
            row["end_to_end_db"] = float(e["xmodel_err"])
            # a ReLU fused into the preceding conv has no QDQ pair of its own: its "local" value compares the
            # pre- and post-ReLU tensors, not rounding
            if node.op_type != "Relu":
                row["worst_local_db"] = min(row["worst_local_db"], float(e["qdq_err"]))
    for row in rows.values():  # JSON has no infinity: no rounding point of its own in that cell
        if row["worst_local_db"] == float("inf"):
            row["worst_local_db"] = None
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("fp32", type=Path)
    ap.add_argument("int8", type=Path)
    ap.add_argument("--data", type=Path, required=True, help="dataset or image folder")
    ap.add_argument("--images", type=int, default=8)
    args = ap.parse_args()

    images = load_images(args.data, read_manifest(args.fp32).preprocess, args.images)
    try:
        errors, graph = activation_errors(args.fp32, args.int8, images)
    except ValueError as exc:
        # The kernel rewrites widen depthwise convolutions with zero channels, so tensors no longer pair up.
        sys.exit(
            f"{args.int8}: its int8 activations do not pair up with {args.fp32}'s ({exc}); compare an int8 file "
            "exported without the kernel rewrites (Int8Recipe 'before'; benchmarks/int8_speed.py writes "
            "before.int8.onnx), whose quantisation is the same"
        )
    rows = per_cell(graph, errors)
    result = {
        "fp32": str(args.fp32),
        "int8": str(args.int8),
        "images": len(images),
        "per_cell": rows,
    }
    print(save_result(result, args.int8.parent, "int8_depth", markdown))
    print(f"wrote {args.int8.with_name('int8_depth.json')}")


def markdown(result: dict) -> str:
    lines = [
        f"{Path(result['int8']).name} against {Path(result['fp32']).name} on {result['images']} images:",
        "",
        "| where | int8 tensors | end-to-end SNR dB (the last tensor) | worst local SNR dB |",
        "|---|---:|---:|---:|",
    ]
    for where, row in result["per_cell"].items():
        local = "-" if row["worst_local_db"] is None else f"{row['worst_local_db']:.1f}"
        lines.append(f"| {where} | {row['tensors']} | {row['end_to_end_db']:.1f} | {local} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
