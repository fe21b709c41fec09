"""Check a CoreML ``.mlpackage`` against its manifest without running it (what the spec promises).

:func:`summarize_spec` turns the protobuf spec into plain data (inputs with their flexible shapes, outputs,
the ML program's operation types, image scale/bias found in the program, user metadata); :func:`check_spec`
lists what does not match the manifest. ``verify`` uses both on Linux.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from aestheticnet.artifacts import INPUT_NAME, OUTPUT_NAME, Manifest
from aestheticnet.artifacts.coreml_package import operations, read_spec
from aestheticnet.artifacts.embedded import EMBED_KEY

__all__ = ["check_spec", "summarize_spec"]


def _feature(feature) -> dict[str, Any]:
    kind = feature.type.WhichOneof("Type")
    out: dict[str, Any] = {"name": feature.name, "type": kind}
    if kind == "multiArrayType":
        t = feature.type.multiArrayType
        from coremltools.proto import FeatureTypes_pb2

        out["dtype"] = FeatureTypes_pb2.ArrayFeatureType.ArrayDataType.Name(t.dataType)
        out["shape"] = list(t.shape)
        flex = t.WhichOneof("ShapeFlexibility")
        if flex == "shapeRange":
            out["range"] = [[r.lowerBound, r.upperBound] for r in t.shapeRange.sizeRanges]
        elif flex == "enumeratedShapes":
            out["enumerated"] = [list(s.shape) for s in t.enumeratedShapes.shapes]
    elif kind == "imageType":
        t = feature.type.imageType
        from coremltools.proto import FeatureTypes_pb2

        out["color_space"] = FeatureTypes_pb2.ImageFeatureType.ColorSpace.Name(t.colorSpace)
        out["shape"] = [t.height, t.width]
        flex = t.WhichOneof("SizeFlexibility")
        if flex == "imageSizeRange":
            r = t.imageSizeRange
            out["range"] = {
                "height": [r.heightRange.lowerBound, r.heightRange.upperBound],
                "width": [r.widthRange.lowerBound, r.widthRange.upperBound],
            }
        elif flex == "enumeratedSizes":
            out["enumerated"] = [[s.height, s.width] for s in t.enumeratedSizes.sizes]
    return out


def _const_value(op) -> list[float] | None:
    """Values of a small ``const`` op (scale/bias of the image preprocessing)."""
    for attr_name, value in op.attributes.items():
        if attr_name != "val":
            continue
        imm = value.immediateValue
        if imm.WhichOneof("value") != "tensor":
            return None
        t = imm.tensor
        kind = t.WhichOneof("value")
        if kind in ("floats", "doubles", "ints", "longInts"):
            return [float(v) for v in getattr(t, kind).values]
        if kind == "bytes":  # fp16 constants are stored as raw bytes
            import numpy as np

            return np.frombuffer(t.bytes.values, dtype=np.float16).astype(float).tolist()
    return None


def _image_preprocessing(spec, input_name: str) -> dict[str, Any]:
    """The mul/add ops coremltools inserts after an image input carry ``scale`` and ``bias``."""
    ops = operations(spec)
    consts = {op.outputs[0].name: op for op in ops if op.type == "const" and op.outputs}
    found: dict[str, Any] = {}
    current = {input_name}
    for op in ops:
        names = {arg.name for args in op.inputs.values() for arg in args.arguments if arg.name}
        if not names & current:
            continue
        if op.type in ("mul", "add"):
            other = [consts[n] for n in names - current if n in consts]
            if other:
                found["scale" if op.type == "mul" else "bias"] = _const_value(other[0])
        current |= {o.name for o in op.outputs}
        if "scale" in found and "bias" in found:
            break
    return found


def summarize_spec(path: str | Path) -> dict[str, Any]:
    spec = read_spec(path)
    inputs = [_feature(f) for f in spec.description.input]
    for feature in inputs:
        if feature["type"] == "imageType":
            feature["preprocessing"] = _image_preprocessing(spec, feature["name"])
    ops = Counter(op.type for op in operations(spec))
    return {
        "spec_version": spec.specificationVersion,
        "model_type": spec.WhichOneof("Type"),
        "inputs": inputs,
        "outputs": [_feature(f) for f in spec.description.output],
        "ops": dict(sorted(ops.items())),
        "metadata": dict(spec.description.metadata.userDefined),
    }


def check_spec(summary: dict[str, Any], manifest: Manifest | None) -> list[dict[str, Any]]:
    """Mismatches between a package's spec and what its manifest promises (empty list when all is well)."""
    problems: list[dict[str, Any]] = []

    def bad(check: str, expected, got) -> None:
        problems.append({"check": check, "expected": expected, "got": got})

    if summary["model_type"] != "mlProgram":
        bad("model type", "mlProgram", summary["model_type"])
    names_in = [f["name"] for f in summary["inputs"]]
    names_out = [f["name"] for f in summary["outputs"]]
    if names_in != [INPUT_NAME]:
        bad("input names", [INPUT_NAME], names_in)
    if names_out != [OUTPUT_NAME]:
        bad("output names", [OUTPUT_NAME], names_out)
    if not summary["ops"]:
        bad("operations", "a non-empty ML program", summary["ops"])
    if EMBED_KEY not in summary["metadata"]:
        bad("metadata", f"user-defined metadata with {EMBED_KEY!r}", sorted(summary["metadata"]))
    if manifest is None or not summary["inputs"]:
        return problems
    feature = summary["inputs"][0]
    kind = manifest.input.kind
    if kind == "image":
        if feature["type"] != "imageType":
            bad("input type", "imageType", feature["type"])
        pre = feature.get("preprocessing", {})
        scale, bias = manifest.input.extra.get("image_scale"), manifest.input.extra.get("image_bias")
        if pre.get("scale") is None or abs(pre["scale"][0] - scale) > 1e-6:
            bad("image scale", scale, pre.get("scale"))
        if pre.get("bias") is None or any(abs(a - b) > 1e-3 for a, b in zip(pre["bias"], bias)):
            bad("image bias", bias, pre.get("bias"))
    elif feature["type"] != "multiArrayType" or feature.get("dtype") != "FLOAT32":
        bad("input type", "multiArrayType FLOAT32", f"{feature['type']} {feature.get('dtype')}")
    dynamic = manifest.input.dynamic
    enumerated = manifest.input.extra.get("enumerated")
    if dynamic:
        want = [dynamic["height"], dynamic["width"]]
        if feature["type"] == "imageType":
            got = feature.get("range")
            got = [got["height"], got["width"]] if got else None
        else:
            rng = feature.get("range")
            got = [rng[2], rng[3]] if rng else None
            if rng and rng[0] != dynamic["batch"]:
                bad("batch range", dynamic["batch"], rng[0])
        if got != want:
            bad("flexible height/width range", want, got)
    elif enumerated:
        got = feature.get("enumerated")
        want = [s[2:] for s in enumerated] if feature["type"] == "imageType" else enumerated
        if got is None or sorted(map(list, got)) != sorted(map(list, want)):
            bad("enumerated shapes", want, got)
    else:
        bad("flexible shapes", "a range or enumerated shapes in the manifest", None)
    return problems
