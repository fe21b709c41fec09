"""Where full int8 loses an ONNX model's signal: quantisation noise along the depth of the network.

    .venv/bin/python benchmarks/int8_depth.py OUT/star.fp32.onnx OUT/star.int8.onnx --data DIR [--images 8]

For every activation the int8 model quantises, ONNX Runtime's ``qdq_loss_debug`` compares the int8 model's
value with the float model's on the same images: ``end_to_end`` is the signal-to-noise ratio (dB) of the int8
value against fp32 (all error accumulated up to that point), ``local`` the ratio of the tensor before and after
its own QuantizeLinear/DequantizeLinear pair (the rounding at that point alone). Printed per cell (the tensors
are grouped by the ``cells.N.`` weights of the nodes that precede them): the last tensor's end-to-end SNR and the
worst local one. Writes ``int8_depth.json`` next to the int8 model.
"""

from __future__ import annotations

import argparse
import json
import re
import tempfile
from pathlib import Path


def main() -> None:
    import onnx
    from onnxruntime.quantization.qdq_loss_debug import (
        collect_activations,
        compute_activation_error,
        create_activation_matching,
        modify_model_output_intermediate_tensors,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    from aestheticnet.artifacts import read_manifest
    from aestheticnet.export.calibration import load_images
    from aestheticnet.export.onnx.int8 import calibration_reader

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("fp32", type=Path)
    ap.add_argument("int8", type=Path)
    ap.add_argument("--data", type=Path, required=True, help="dataset or image folder")
    ap.add_argument("--images", type=int, default=8)
    args = ap.parse_args()

    images, _, _ = load_images(args.data, read_manifest(args.fp32)["preprocess"], args.images)

    with tempfile.TemporaryDirectory() as tmp:
        pre, fp_aug, q_aug = (str(Path(tmp) / n) for n in ("pre.onnx", "fp.onnx", "q.onnx"))
        # the int8 model was quantised from this pre-processed graph: same tensor names
        quant_pre_process(str(args.fp32), pre, skip_symbolic_shape=True)
        modify_model_output_intermediate_tensors(pre, fp_aug)
        modify_model_output_intermediate_tensors(str(args.int8), q_aug)
        errors = compute_activation_error(
            create_activation_matching(
                collect_activations(q_aug, calibration_reader(images)),
                collect_activations(fp_aug, calibration_reader(images)),
            )
        )
        graph = onnx.load(pre).graph

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
    print(f"{'where':<10}{'tensors':>8}{'end-to-end SNR dB (last)':>27}{'worst local SNR dB':>21}")
    for where, row in rows.items():
        local = "-" if row["worst_local_db"] is None else f"{row['worst_local_db']:.1f}"
        print(f"{where:<10}{row['tensors']:>8}{row['end_to_end_db']:>27.1f}{local:>21}")
    out = args.int8.with_name("int8_depth.json")
    out.write_text(
        json.dumps({"fp32": str(args.fp32), "int8": str(args.int8), "images": len(images), "per_cell": rows}, indent=1)
    )
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
