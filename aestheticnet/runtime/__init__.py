"""Run any exported model with one interface: ``load(path).run(batch)`` and ``Scorer(path).score_paths(paths)``."""

from aestheticnet.runtime import backends
from aestheticnet.runtime.backends import (
    SUFFIXES,
    Backend,
    CoreMLRunner,
    CoreMLUnavailableError,
    InputError,
    MilBackend,
    ModelFileError,
)
from aestheticnet.runtime.executorch import ExecuTorchBackend
from aestheticnet.runtime.loading import load
from aestheticnet.runtime.scorer import Scorer
from aestheticnet.runtime.scoring import ScoreResult, collect_images, write_scores

__all__ = [*backends.__all__, "ExecuTorchBackend", "ScoreResult", "Scorer", "collect_images", "load", "write_scores"]
