"""ExecuTorch programs (``.pte``) through ExecuTorch's Python runtime."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from aestheticnet.runtime.backends import Backend, InputError, ModelFileError, artifact_io
from aestheticnet.runtime_names import RuntimeName

__all__ = ["ExecuTorchBackend"]

_PTE_MAGIC = b"ET"  # the file identifier at bytes 4..6 of every ExecuTorch flatbuffer ("ET12" and later)


class ExecuTorchBackend(Backend):
    """A ``.pte`` program through ExecuTorch's Python runtime. Its input memory is planned for the exported upper
    bounds (the manifest's ``input.dynamic``), so a batch or size beyond them is refused here, naming the bounds."""

    name = RuntimeName.EXECUTORCH

    def __init__(self, path: Path, threads: int | None = None):
        data = path.read_bytes()[:8]
        if len(data) < 8 or data[4:6] != _PTE_MAGIC:
            raise ModelFileError(f"{path}: not an ExecuTorch program (no 'ET' identifier); expected a .pte file")
        try:
            from executorch.runtime import Runtime
        except ImportError:
            raise ModelFileError("running .pte models needs executorch (pip install executorch)") from None
        if threads:  # before the program loads: resizing the pool under a loaded method crashed processes
            _set_xnnpack_threads(int(threads))
        try:
            program = Runtime.get().load_program(str(path))
            self.method = program.load_method("forward")
        except (RuntimeError, ValueError) as exc:
            raise ModelFileError(
                f"{path}: not a loadable ExecuTorch program ({exc}); the file may be truncated; expected a .pte "
                "file written by `aestheticnet export`"
            ) from None
        self.runtime = RuntimeName.EXECUTORCH.value
        super().__init__(path, *artifact_io(path))

    def check_input(self, batch) -> np.ndarray:
        x = super().check_input(batch)
        for axis, name in ((0, "batch"), (2, "height"), (3, "width")):
            bounds = self.manifest.input.bounds(name) if self.manifest else None
            if bounds is None:
                continue
            lo, hi = bounds
            if not lo <= x.shape[axis] <= hi:
                raise InputError(
                    f"{self.path.name}: {name} {x.shape[axis]} is outside the program's bounds [{lo}, {hi}] "
                    "(ExecuTorch plans memory for the exported upper bounds; export again with --max-batch / "
                    "--max-side for larger inputs)"
                )
        return x

    def _run(self, x):
        import torch

        (out,) = self.method.execute([torch.from_numpy(x)])
        return out.numpy()


def _set_xnnpack_threads(threads: int) -> None:
    """Size XNNPACK's thread pool, which otherwise takes every core. The pool is one per process, so the last
    backend opened with ``threads`` sets it for every ExecuTorch program of the process. Resetting it under a
    loaded method crashed processes (two programs loaded in one process, the pool reset after each load: 5
    segfaults in 6 runs), so it is reset before a program loads and only when its size changes."""
    from executorch.extension.pybindings import portable_lib

    reset = getattr(portable_lib, "_unsafe_reset_threadpool", None)
    current = getattr(portable_lib, "_threadpool_get_thread_count", None)
    if reset is not None and (current is None or current() != threads):
        reset(threads)
