"""Evaluate the ML program of a Core ML ``.mlpackage`` on any system, op by op, with torch kernels.

coremltools reads the package's protobuf into a MIL program (``milproto.load``: ops, their inputs, constants and
the weight blobs) on every OS; only *prediction* needs Apple's Core ML framework. :class:`MilProgram` walks that
program in order and computes each op with :mod:`aestheticnet.runtime.mil.kernels`, in the dtypes the program
declares, so the numbers check what the package computes: its weights (decompressed as the ``constexpr_*`` ops
say), its float16 casts, its image scale and bias. What it does not model: the Neural Engine's and the GPU's
arithmetic, Core ML's own graph rewrites and the device's kernels; a device's numbers differ by rounding.

An op the evaluator has no kernel for stops loading with :class:`UnsupportedOpError` naming the op and the file.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from aestheticnet.artifacts.coreml_package import read_spec
from aestheticnet.runtime.mil.kernels import CONSTEXPR_KERNELS, KERNELS, MIL_DTYPES

__all__ = [
    "EVALUATED_BY",
    "SUPPORTED_OPS",
    "MilProgram",
    "MilProgramError",
    "UnsupportedOpError",
    "check_input_shape",
    "load_program",
]

SUPPORTED_OPS = tuple(sorted({"const", *KERNELS, *CONSTEXPR_KERNELS}))
EVALUATED_BY = "mil-evaluator (coremltools MIL program, torch kernels), not Core ML"


class MilProgramError(ValueError):
    """The program cannot be evaluated; the message names the file and the op."""


class UnsupportedOpError(MilProgramError):
    pass


@dataclass(frozen=True)
class _Ref:
    """An op input computed at run time (a function input or another op's output)."""

    name: str


@dataclass
class _Step:
    op_type: str
    name: str
    args: dict[str, Any]  # constants as values, computed inputs as _Ref (or tuples of them)
    output: str


def load_program(path: str | Path, function: str = "main", spec=None):
    """The coremltools MIL program of a package (``Program``), its weights read from the package's blob file."""
    from aestheticnet.artifacts.files import silenced

    path = Path(path)
    spec = spec if spec is not None else read_spec(path)
    if spec.WhichOneof("Type") != "mlProgram":
        raise MilProgramError(f"{path}: holds a {spec.WhichOneof('Type')} model; the evaluator runs ML programs")
    with silenced():  # coremltools prints version notices and macOS-library warnings on import
        from coremltools.converters.mil.frontend.milproto.load import load

        program = load(
            spec,
            specification_version=spec.specificationVersion,
            file_weights_dir=str(path / "Data" / "com.apple.CoreML" / "weights"),
        )
    if function not in program.functions:
        raise MilProgramError(f"{path}: no function {function!r} in the program ({', '.join(program.functions)})")
    return program


def _accepted_sizes(feature) -> tuple[list | None, list | None]:
    """What Core ML accepts at an input: (ranges per dim or None, enumerated shapes or None); image inputs are
    (1, 3, H, W) with H/W ranges or sizes."""
    kind = feature.type.WhichOneof("Type")
    if kind == "multiArrayType":
        t = feature.type.multiArrayType
        flex = t.WhichOneof("ShapeFlexibility")
        if flex == "shapeRange":
            return [(r.lowerBound, r.upperBound) for r in t.shapeRange.sizeRanges], None
        if flex == "enumeratedShapes":
            return None, [tuple(s.shape) for s in t.enumeratedShapes.shapes]
        return None, [tuple(t.shape)]
    if kind == "imageType":
        t = feature.type.imageType
        flex = t.WhichOneof("SizeFlexibility")
        if flex == "imageSizeRange":
            r = t.imageSizeRange
            return [
                (1, 1),
                (3, 3),
                (r.heightRange.lowerBound, r.heightRange.upperBound),
                (r.widthRange.lowerBound, r.widthRange.upperBound),
            ], None
        if flex == "enumeratedSizes":
            return None, [(1, 3, s.height, s.width) for s in t.enumeratedSizes.sizes]
        return None, [(1, 3, t.height, t.width)]
    return None, None


def check_input_shape(path: Path, spec, name: str, shape: tuple[int, ...]) -> None:
    """Refuse a shape Core ML would refuse (outside the input's ranges, or not one of its enumerated shapes), so
    the evaluator never reports numbers for a call the device would not run. A bound of -1 is open."""
    feature = next((f for f in spec.description.input if f.name == name), None)
    if feature is None:
        return
    ranges, enumerated = _accepted_sizes(feature)
    if ranges is not None and (
        len(ranges) != len(shape) or not all(lo <= n and (hi < 0 or n <= hi) for n, (lo, hi) in zip(shape, ranges))
    ):
        raise MilProgramError(
            f"{path}: input {name!r} of shape {tuple(shape)} is outside the package's ranges "
            f"{ranges}; Core ML refuses it too"
        )
    if enumerated is not None and tuple(shape) not in enumerated:
        raise MilProgramError(
            f"{path}: input {name!r} of shape {tuple(shape)} is not one of the package's "
            f"enumerated shapes {enumerated}; Core ML refuses it too"
        )


def _constant(value) -> Any:
    """Float arrays and scalars become tensors once (kernels use them as weights); other constants (ints,
    bools, strings: op attributes) stay numpy / python values."""
    if isinstance(value, np.ndarray) and value.dtype.kind == "f":
        return torch.from_numpy(np.array(value))
    if isinstance(value, np.floating):
        return torch.from_numpy(np.array(value))
    return value


def _dtype_name(var) -> str:
    from coremltools.converters.mil.mil import types

    return types.builtin_to_string(var.dtype)


class MilProgram:
    """``MilProgram(path).run({"image": array})`` -> ``{"distribution": array}``: the package's program evaluated
    with torch kernels at whatever input shape it is given (flexible H/W and batch need no special case)."""

    def __init__(self, path: str | Path, program=None, function: str = "main"):
        self.path = Path(path)
        self.spec = None  # with a spec, input shapes are checked as Core ML checks them
        if program is None:
            self.spec = read_spec(self.path)
            program = load_program(self.path, function, self.spec)
        fn = program.functions[function]
        self.input_dtypes = {name: MIL_DTYPES[_dtype_name(var)] for name, var in fn.inputs.items()}
        self.input_shapes = {name: var.shape for name, var in fn.inputs.items()}
        self.output_names = [var.name for var in fn.outputs]
        self.ops = Counter(op.op_type for op in fn.operations)
        unknown = sorted(set(self.ops) - set(SUPPORTED_OPS))
        if unknown:
            first = next(op for op in fn.operations if op.op_type == unknown[0])
            raise UnsupportedOpError(
                f"{self.path}: the MIL evaluator has no kernel for op {unknown[0]!r} (first at {first.name!r}"
                f"{'; also ' + ', '.join(unknown[1:]) if unknown[1:] else ''}); it evaluates {', '.join(SUPPORTED_OPS)}"
            )
        self.constants: dict[str, Any] = {}
        self.steps: list[_Step] = []
        for op in fn.operations:
            self._add(op)
        self._last_use = self._last_uses()

    def _add(self, op) -> None:
        if op.blocks or len(op.outputs) != 1:
            raise UnsupportedOpError(
                f"{self.path}: op {op.op_type!r} ({op.name}) has nested blocks or several "
                "outputs; the MIL evaluator runs straight-line programs"
            )
        output = op.outputs[0].name
        if op.op_type == "const":
            self.constants[output] = _constant(op.outputs[0].val)
            return
        args = {key: self._arg(value) for key, value in op.inputs.items()}
        if op.op_type in CONSTEXPR_KERNELS:  # weight decompression happens once, at load
            if any(isinstance(v, _Ref) for v in args.values()):
                raise MilProgramError(f"{self.path}: {op.op_type} ({op.name}) takes a computed input")
            self.constants[output] = self._call(op.op_type, op.name, args)
            return
        self.steps.append(_Step(op.op_type, op.name, args, output))

    def _arg(self, value):
        if isinstance(value, (list, tuple)):
            return tuple(self._arg(v) for v in value)
        if value.name in self.constants:
            return self.constants[value.name]
        return _Ref(value.name)

    def _last_uses(self) -> dict[str, int]:
        """For each computed value, the last step that reads it (freed afterwards to bound memory)."""
        last: dict[str, int] = {}
        for i, step in enumerate(self.steps):
            for value in step.args.values():
                for ref in value if isinstance(value, tuple) else (value,):
                    if isinstance(ref, _Ref):
                        last[ref.name] = i
        return last

    def _call(self, op_type: str, name: str, args: dict[str, Any]):
        kernel = KERNELS.get(op_type) or CONSTEXPR_KERNELS[op_type]
        try:
            return kernel(**args)
        except (TypeError, ValueError, RuntimeError) as exc:
            raise MilProgramError(f"{self.path}: op {op_type!r} ({name}) failed: {exc}") from None

    def run(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        missing = sorted(set(self.input_dtypes) - set(inputs))
        if missing:
            raise MilProgramError(
                f"{self.path}: inputs {missing} not given; the program takes {list(self.input_dtypes)}"
            )
        if self.spec is not None:
            for name in self.input_dtypes:
                check_input_shape(self.path, self.spec, name, tuple(np.shape(inputs[name])))
        env: dict[str, Any] = {
            name: torch.from_numpy(np.ascontiguousarray(inputs[name])).to(dtype)
            for name, dtype in self.input_dtypes.items()
        }
        keep = set(self.output_names)
        with torch.no_grad():
            for i, step in enumerate(self.steps):
                args = {key: _resolve(value, env) for key, value in step.args.items()}
                env[step.output] = self._call(step.op_type, step.name, args)
                for value in step.args.values():
                    for ref in value if isinstance(value, tuple) else (value,):
                        if isinstance(ref, _Ref) and self._last_use.get(ref.name) == i and ref.name not in keep:
                            env.pop(ref.name, None)
        out = {}
        for name in self.output_names:
            value = env[name] if name in env else self.constants[name]
            out[name] = value.numpy() if isinstance(value, torch.Tensor) else np.asarray(value)
        return out


def _resolve(value, env: dict[str, Any]):
    if isinstance(value, _Ref):
        return env[value.name]
    if isinstance(value, tuple):
        return tuple(_resolve(v, env) for v in value)
    return value
