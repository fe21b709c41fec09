"""One interface over every model file: ``load(path).run(batch NCHW float32) -> distributions``.

=============  ==========================================  =============  =====================================
file           runtime                                     model layout   threads
=============  ==========================================  =============  =====================================
.safetensors   PyTorch (the reference)                     NCHW           ``torch.set_num_threads``
.onnx          ONNX Runtime, CPU provider                  NCHW           intra-op threads of the session
.tflite        ai-edge-litert (XNNPACK) or tflite-runtime  NHWC           interpreter threads
.mlpackage     Core ML on macOS; elsewhere the MIL evaluator  NCHW / image   chosen by CoreML / torch threads
.pte           ExecuTorch (XNNPACK delegate)               NCHW           XNNPACK's pool (one per process)
=============  ==========================================  =============  =====================================

A ``.mlpackage`` runs through Apple's Core ML on macOS. On other systems (or with ``coreml=CoreMLRunner.MIL``) its
ML program is evaluated op by op with torch kernels (:mod:`aestheticnet.runtime.mil`): the numbers of the program,
not of Core ML on a device (``Backend.evaluated_by`` says which).

``run`` always takes NCHW float32 and converts the layout itself. Inputs are checked before any runtime sees
them (rank 4, 3 channels, float32, H and W multiples of the network's stride 32) and model files before they
are opened (missing, truncated, wrong format); each failure is a :class:`ModelFileError` or
:class:`InputError` (both ``ValueError``) naming what was expected.
"""

from __future__ import annotations

import contextlib
import os
import platform
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

import numpy as np

from aestheticnet.artifacts import INPUT_NAME, OUTPUT_NAME, Manifest, read_manifest
from aestheticnet.runtime_names import RuntimeName

__all__ = [
    "Backend",
    "CoreMLRunner",
    "CoreMLUnavailableError",
    "InputError",
    "Interface",
    "ModelFileError",
    "MilBackend",
    "ModelIO",
    "artifact_io",
]


@dataclass(frozen=True)
class Interface:
    """What a runtime reports about a loaded model's input and output (``verify`` checks it against the manifest)."""

    details: dict[str, Any]  # for the report: the runtime's own names and shapes
    io_names: tuple[str, str] | None = None  # (input, output), where the runtime has names
    dynamic: tuple[Any, Any] | None = None  # (expected, got) for the dynamic batch, height and width


class ModelFileError(ValueError):
    """A model file cannot be used (missing, truncated, another format); the message names what was expected."""


class InputError(ValueError):
    """A batch passed to ``Backend.run`` has the wrong rank, channels, dtype or size."""


class CoreMLUnavailableError(ModelFileError):
    """Core ML itself only runs on macOS (the MIL evaluator runs everywhere)."""


class CoreMLRunner(str, Enum):
    """What runs a ``.mlpackage``: ``AUTO`` = Core ML on macOS, the MIL evaluator elsewhere."""

    AUTO = "auto"
    COREML = "coreml"
    MIL = "mil"


@dataclass(frozen=True)
class ModelIO:
    """What a runtime needs besides the file to feed a model and read its output."""

    multiple: int = 32  # height and width must be multiples of this (the network's total stride)
    score_buckets: tuple[int, ...] = tuple(range(1, 11))
    preprocess: dict = field(default_factory=dict)  # the checkpoint's policy, for Scorer

    @classmethod
    def of_manifest(cls, manifest: Manifest) -> ModelIO:
        return cls(manifest.input.multiple, tuple(manifest.model.score_buckets), dict(manifest.preprocess))

    @classmethod
    def of_checkpoint(cls, meta: dict[str, Any]) -> ModelIO:
        pre = dict(meta.get("preprocess", {}))
        return cls(int(pre.get("multiple", 32)), tuple(meta.get("score_buckets") or range(1, 11)), pre)


class Backend:
    """Base class: subclasses set ``name``, ``input_layout`` and implement ``_run``; ``manifest`` is the artifact's
    (None for a checkpoint or a file without one), ``io`` what feeding it takes."""

    name = "backend"
    input_layout = "NCHW"
    evaluated_by = ""  # who computed the numbers, when that is not the runtime the format is made for

    def __init__(self, path: Path, io: ModelIO, manifest: Manifest | None = None):
        self.path = Path(path)
        self.io, self.manifest = io, manifest

    @property
    def multiple(self) -> int:
        return self.io.multiple

    @property
    def score_buckets(self) -> list[int]:
        return list(self.io.score_buckets)

    @property
    def preprocess(self) -> dict[str, Any]:
        return dict(self.io.preprocess)

    def check_input(self, batch) -> np.ndarray:
        if hasattr(batch, "detach") and hasattr(batch, "numpy"):  # a torch tensor
            batch = batch.detach().cpu().numpy()
        if not isinstance(batch, np.ndarray):
            raise InputError(f"expected a numpy array of shape (N, 3, H, W) float32, got {type(batch).__name__}")
        if batch.dtype != np.float32:
            raise InputError(
                f"expected dtype float32, got {batch.dtype}; convert with batch.astype(np.float32) "
                "(every exported precision takes float32 input)"
            )
        if batch.ndim != 4:
            raise InputError(f"expected rank 4 (N, 3, H, W) NCHW, got rank {batch.ndim} with shape {batch.shape}")
        n, c, h, w = batch.shape
        if c != 3:
            hint = "; it looks NHWC: transpose with batch.transpose(0, 3, 1, 2)" if w == 3 else ""
            raise InputError(f"expected 3 channels at axis 1 (N, 3, H, W) NCHW, got shape {batch.shape}{hint}")
        if n < 1:
            raise InputError(f"expected a batch of at least one image, got shape {batch.shape}")
        m = self.multiple
        if h < m or w < m or h % m or w % m:
            raise InputError(
                f"input size {h}x{w} (HxW) is not accepted: height and width must be positive multiples of {m} "
                "(the network's total stride); let the preprocessing round the size"
            )
        return np.ascontiguousarray(batch)

    def run(self, batch) -> np.ndarray:
        """Distributions ``(N, buckets)`` float32 for an NCHW float32 batch."""
        x = self.check_input(batch)
        out = np.asarray(self._run(x), dtype=np.float32)
        if out.ndim != 2 or out.shape[0] != x.shape[0]:
            raise ModelFileError(f"{self.path}: expected an output of shape ({x.shape[0]}, buckets), got {out.shape}")
        return out

    def _run(self, x: np.ndarray) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def interface(self) -> Interface:
        """The runtime's view of the model's input and output; the base knows only the layout."""
        return Interface({"layout": self.input_layout})

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self.path)!r}, layout={self.input_layout})"


class TorchBackend(Backend):
    name = RuntimeName.PYTORCH

    def __init__(self, path: Path, threads: int | None = None):

        from aestheticnet.models import CheckpointError
        from aestheticnet.models import load as load_checkpoint

        try:
            self.model = load_checkpoint(path)
        except CheckpointError as exc:
            raise ModelFileError(str(exc)) from None
        self.threads = int(threads) if threads else None
        super().__init__(path, ModelIO.of_checkpoint(self.model.metadata))

    def _run(self, x):
        import torch

        with _torch_threads(self.threads), torch.no_grad():
            return self.model(torch.from_numpy(x)).numpy()


@contextlib.contextmanager
def _torch_threads(threads: int | None):
    """torch's thread count for one call only: the setting is process-wide."""
    import torch

    previous = torch.get_num_threads()
    change = bool(threads) and threads != previous
    if change:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        if change:
            torch.set_num_threads(previous)


def artifact_io(path: Path, buckets: int = 10) -> tuple[ModelIO, Manifest | None]:
    """The artifact's manifest and what it says about feeding it; defaults (``buckets`` score buckets) without one."""
    manifest = read_manifest(path, required=False)
    if manifest is None:
        return ModelIO(score_buckets=tuple(range(1, buckets + 1))), None
    return ModelIO.of_manifest(manifest), manifest


class OnnxBackend(Backend):
    name = RuntimeName.ONNXRUNTIME

    def __init__(self, path: Path, threads: int | None = None):
        import onnxruntime as ort

        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = int(threads)
            options.inter_op_num_threads = 1
        options.log_severity_level = 3
        try:
            self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # noqa: BLE001
            raise ModelFileError(
                f"{path}: not a readable ONNX model ({type(exc).__name__}: {str(exc)[:200]}); the file may be "
                "truncated or of another format; expected an .onnx file written by `aestheticnet export`"
            ) from None
        inputs, outputs = self.session.get_inputs(), self.session.get_outputs()
        if len(inputs) != 1 or len(inputs[0].shape) != 4:
            raise ModelFileError(
                f"{path}: expected one 4-D input (N, 3, H, W), got {[(i.name, i.shape) for i in inputs]}"
            )
        self.input_name, self.output_name = inputs[0].name, outputs[0].name
        super().__init__(path, *artifact_io(path, buckets=outputs[0].shape[-1] or 10))

    def _run(self, x):
        return self.session.run([self.output_name], {self.input_name: x})[0]

    def interface(self) -> Interface:
        i, o = self.session.get_inputs()[0], self.session.get_outputs()[0]
        details = {"layout": self.input_layout, "input": i.name, "input_shape": i.shape}
        details.update(output=o.name, output_shape=o.shape)
        symbolic = all(isinstance(i.shape[k], str) for k in (0, 2, 3))
        dynamic = ("symbolic batch/height/width", "symbolic batch/height/width" if symbolic else i.shape)
        return Interface(details, io_names=(i.name, o.name), dynamic=dynamic)


def _tflite_interpreter():
    try:
        from ai_edge_litert.interpreter import Interpreter

        return Interpreter, "ai-edge-litert"
    except ImportError:
        pass
    try:
        from tflite_runtime.interpreter import Interpreter

        return Interpreter, "tflite-runtime"
    except ImportError:
        raise ModelFileError("running .tflite models needs ai-edge-litert (pip install ai-edge-litert)") from None


class TFLiteBackend(Backend):
    name = RuntimeName.LITERT
    input_layout = "NHWC"

    def __init__(self, path: Path, threads: int | None = None):
        data = path.read_bytes()
        if len(data) < 8 or data[4:8] != b"TFL3":
            raise ModelFileError(f"{path}: not a TFLite flatbuffer (no 'TFL3' identifier); expected a .tflite model")
        from aestheticnet.artifacts.files import silenced

        interpreter_cls, self.runtime = _tflite_interpreter()
        try:
            # XNNPACK is the default delegate of the builtin op resolver; threads also apply to it.
            with silenced():  # "INFO: Created TensorFlow Lite XNNPACK delegate" on every load
                self.interpreter = interpreter_cls(
                    model_path=str(path), num_threads=int(threads or os.cpu_count() or 1)
                )
        except (ValueError, RuntimeError) as exc:
            raise ModelFileError(
                f"{path}: not a valid TFLite model ({exc}); the file may be truncated; expected a .tflite model "
                "written by `aestheticnet export`"
            ) from None
        self._in = self.interpreter.get_input_details()[0]
        self._out = self.interpreter.get_output_details()[0]
        self.shape_signature = [int(v) for v in self._in["shape_signature"]]
        self._shape: tuple | None = None
        super().__init__(path, *artifact_io(path))

    def _run(self, x):
        nhwc = np.ascontiguousarray(x.transpose(0, 2, 3, 1))
        it, inp = self.interpreter, self._in
        if self._shape != nhwc.shape:
            it.resize_tensor_input(inp["index"], nhwc.shape, strict=False)
            it.allocate_tensors()
            self._shape = nhwc.shape
        if inp["dtype"] in (np.int8, np.uint8):  # a foreign integer-IO model: quantise for it
            scale, zero = inp["quantization"]
            info = np.iinfo(inp["dtype"])
            nhwc = np.clip(np.round(nhwc / scale + zero), info.min, info.max).astype(inp["dtype"])
        it.set_tensor(inp["index"], nhwc)
        it.invoke()
        out = np.array(it.get_tensor(self._out["index"]))
        if self._out["dtype"] in (np.int8, np.uint8):
            scale, zero = self._out["quantization"]
            out = (out.astype(np.float32) - zero) * scale
        return out

    def interface(self) -> Interface:
        sig = self.shape_signature
        details = {"layout": self.input_layout, "input_shape_signature": sig, "runtime": self.runtime}
        return Interface(details, dynamic=([-1, -1, -1, 3], sig))


def _read_package(path: Path) -> None:
    from aestheticnet.artifacts.coreml_package import CoreMLPackageError, read_spec

    try:
        read_spec(path)  # clear errors for missing / truncated packages on every system
    except CoreMLPackageError as exc:
        raise ModelFileError(str(exc)) from None


def _image_pixels(manifest: Manifest, sample: np.ndarray) -> np.ndarray:
    """A normalised CHW sample back to the 0..255 RGB pixels an image-input package takes."""
    mean = np.asarray(manifest.input.mean, np.float32).reshape(3, 1, 1)
    std = np.asarray(manifest.input.std, np.float32).reshape(3, 1, 1)
    return (sample * std + mean) * 255.0


class CoreMLBackend(Backend):
    name = RuntimeName.COREML

    def __init__(self, path: Path, threads: int | None = None):
        _read_package(path)
        if platform.system() != "Darwin":
            raise CoreMLUnavailableError(
                f"{path}: Core ML prediction needs macOS; on {platform.system()} load it with "
                "coreml=CoreMLRunner.MIL (the default there) to evaluate its ML program with torch kernels"
            )
        import coremltools as ct  # pragma: no cover - macOS only

        self.model = ct.models.MLModel(str(path))  # pragma: no cover
        super().__init__(path, *artifact_io(path))  # pragma: no cover
        self.kind = self.manifest.input.kind if self.manifest else "tensor"  # pragma: no cover

    def _run(self, x):  # pragma: no cover - macOS only
        if self.kind == "image":
            from PIL import Image

            rows = []
            for sample in x:
                pixels = np.clip(np.round(_image_pixels(self.manifest, sample)), 0, 255).astype(np.uint8)
                rows.append(
                    self.model.predict({INPUT_NAME: Image.fromarray(pixels.transpose(1, 2, 0))})[OUTPUT_NAME][0]
                )
            return np.stack(rows)
        return self.model.predict({INPUT_NAME: x})[OUTPUT_NAME]


class MilBackend(Backend):
    """The package's ML program evaluated with torch kernels (:class:`aestheticnet.runtime.mil.MilProgram`).

    An image-input package gets the float pixels ``(x * std + mean) * 255`` one image at a time, not rounded to
    8 bits: the program's own scale and bias are checked, not the quantisation of a camera frame."""

    name = RuntimeName.MIL_EVALUATOR

    def __init__(self, path: Path, threads: int | None = None):
        from aestheticnet.artifacts.coreml_package import CoreMLPackageError
        from aestheticnet.runtime.mil import EVALUATED_BY, MilProgram, MilProgramError

        try:  # MilProgram reads the spec once, with the package's own clear errors
            self.program = MilProgram(path)
        except (CoreMLPackageError, MilProgramError) as exc:
            raise ModelFileError(str(exc)) from None
        self.evaluated_by = EVALUATED_BY
        # One thread unless told: the evaluator issues hundreds of small kernels per image, and torch's OpenMP
        # workers spin-wait between them, which on a busy machine made a verify run several times slower.
        self.threads = int(threads) if threads else 1
        super().__init__(path, *artifact_io(path))
        self.kind = self.manifest.input.kind if self.manifest else "tensor"

    def _run(self, x):
        with _torch_threads(self.threads):
            if self.kind == "image":
                pixels = [_image_pixels(self.manifest, sample)[None] for sample in x]
                return np.concatenate([self.program.run({INPUT_NAME: p})[OUTPUT_NAME] for p in pixels])
            return self.program.run({INPUT_NAME: x})[OUTPUT_NAME]
