"""The whole job as cached steps: search, train, export, verify, bench and a report (``run_pipeline``), driven by a
:class:`PipelineConfig`; the quality-ladder check of a trained model, and one training scored as the benchmarks
report it (``train_and_score``). ``aestheticnet pipeline`` lives in
:mod:`aestheticnet.cli.pipeline`."""

from __future__ import annotations

from aestheticnet.pipeline.config import PipelineConfig, load_pipeline_config
from aestheticnet.pipeline.ladders import ladder_check, score_ladders, validation_sources
from aestheticnet.pipeline.report import write_report
from aestheticnet.pipeline.run import SHIPPED, run_pipeline
from aestheticnet.pipeline.scored_training import RESULT_FILE, train_and_score
from aestheticnet.pipeline.steps import StepContext, StepOutcome, run_step

__all__ = [
    "RESULT_FILE",
    "SHIPPED",
    "PipelineConfig",
    "StepContext",
    "StepOutcome",
    "ladder_check",
    "load_pipeline_config",
    "run_pipeline",
    "run_step",
    "score_ladders",
    "train_and_score",
    "validation_sources",
    "write_report",
]
