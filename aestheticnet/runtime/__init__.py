"""Run any exported model with one interface: ``load(path).run(batch)`` and ``Scorer(path).score_paths(paths)``."""

from aestheticnet.runtime import backends
from aestheticnet.runtime.backends import (
    Interface,
    Backend,
    CoreMLRunner,
    CoreMLUnavailableError,
    InputError,
    MilBackend,
    ModelFileError,
    ModelIO,
    artifact_io,
)
from aestheticnet.runtime.executorch import ExecuTorchBackend
from aestheticnet.runtime.loading import load, model_suffixes
from aestheticnet.runtime.scorer import Scorer
from aestheticnet.runtime.scoring import ScoreResult, collect_images, write_scores

__all__ = [
    *backends.__all__,
    "ExecuTorchBackend",
    "ScoreResult",
    "Scorer",
    "collect_images",
    "load",
    "model_suffixes",
    "write_scores",
]
