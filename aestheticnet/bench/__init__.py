"""Profiling and benchmarking: params and MACs (profile, breakdown), latency and memory of model files on this
machine or on a device over SSH (runner, devices, ssh, harness), interleaved rounds of fresh-process measurements
(interleave), where a file's time goes per operator (op_profiles), latency tables (ops_table, op_probes),
reports (report), stand-in models (fixtures) and ``verify`` on a device (device_verify). ``aestheticnet bench``
lives in :mod:`aestheticnet.cli.bench`.

The harness, the reports and the interleaving import neither torch nor a runtime, so they load where only the
model files' runtimes are installed; the names that need torch are imported when first used.
"""

from __future__ import annotations

from aestheticnet.bench.device_verify import verify_on_device
from aestheticnet.bench.devices import BenchError, LocalDevice
from aestheticnet.bench.harness import REPORT_SCHEMA, BenchSettings, parse_threads, run_benchmark
from aestheticnet.bench.interleave import interleaved_rounds, round_order, run_fresh, summarize_rounds
from aestheticnet.bench.report import markdown_report, save_result, write_json, write_markdown, write_plots
from aestheticnet.bench.runner import machine_info
from aestheticnet.bench.ssh import SshDevice, parse_device
from aestheticnet.bench.tradeoff import (
    CurveVerdict,
    TradeoffPoint,
    against_curve,
    baseline_at,
    plot_tradeoff,
    tradeoff_sentence,
)
from aestheticnet.lazy import lazy_attributes

__all__ = [
    "REPORT_SCHEMA",
    "BenchError",
    "BenchSettings",
    "CopyRule",
    "CurveVerdict",
    "LocalDevice",
    "OpsBenchSettings",
    "SshDevice",
    "TradeoffPoint",
    "against_curve",
    "baseline_at",
    "build_latency_table",
    "executorch_profile",
    "interleaved_rounds",
    "litert_cut_profile",
    "machine_info",
    "markdown_report",
    "onnxruntime_profile",
    "parse_device",
    "parse_threads",
    "plot_tradeoff",
    "profile_breakdown",
    "profile_model",
    "round_order",
    "run_benchmark",
    "run_fresh",
    "save_result",
    "summarize_rounds",
    "tradeoff_sentence",
    "untrained_checkpoint",
    "vary_batchnorm",
    "verify_on_device",
    "write_json",
    "write_markdown",
    "write_plots",
]

# Public names whose modules import torch: loaded on first use.
_LAZY = {
    "CopyRule": "aestheticnet.bench.op_probes",
    "OpsBenchSettings": "aestheticnet.bench.ops_table",
    "build_latency_table": "aestheticnet.bench.ops_table",
    "executorch_profile": "aestheticnet.bench.op_profiles",
    "litert_cut_profile": "aestheticnet.bench.op_profiles",
    "onnxruntime_profile": "aestheticnet.bench.op_profiles",
    "profile_breakdown": "aestheticnet.bench.breakdown",
    "profile_model": "aestheticnet.bench.profile",
    "untrained_checkpoint": "aestheticnet.bench.fixtures",
    "vary_batchnorm": "aestheticnet.bench.fixtures",
}


__getattr__ = lazy_attributes(__name__, _LAZY)
