"""A Core ML program evaluator: the ML program inside an ``.mlpackage`` computed with torch kernels on any OS."""

from aestheticnet.runtime.mil import program
from aestheticnet.runtime.mil.program import (
    EVALUATED_BY,
    SUPPORTED_OPS,
    MilProgram,
    MilProgramError,
    UnsupportedOpError,
    check_input_shape,
    load_program,
)

__all__ = list(program.__all__)
