"""Run any exported model with one interface: ``load(path).run(batch)`` and ``Scorer(path).score_paths(paths)``."""

from aestheticnet.runtime import backends
from aestheticnet.runtime.backends import (
    SUFFIXES,
    Backend,
    CoreMLUnavailableError,
    ExecuTorchBackend,
    InputError,
    ModelFileError,
    load,
)
from aestheticnet.runtime.scorer import Scorer
from aestheticnet.runtime.scoring import ScoreResult, collect_images, write_scores

__all__ = [*backends.__all__, "ScoreResult", "Scorer", "collect_images", "write_scores"]
