"""Run any exported model with one interface: ``load(path).run(batch)`` and ``Scorer(path).score_paths(paths)``."""

from aestheticnet.runtime.backends import (
    SUFFIXES,
    Backend,
    CoreMLUnavailableError,
    InputError,
    ModelFileError,
    load,
)
from aestheticnet.runtime.scorer import Scorer

__all__ = ["SUFFIXES", "Backend", "CoreMLUnavailableError", "InputError", "ModelFileError", "Scorer", "load"]
