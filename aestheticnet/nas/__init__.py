"""Architecture search: the P-DARTS search space and strategy, the bi-level step, genotypes and their derivation,
and latency (tables, expected latency, the penalty). The loop over data that runs a search is
:func:`aestheticnet.train.run_search`."""

from __future__ import annotations

from aestheticnet.nas.active_ops import ActiveOps, cell_edges, full_space
from aestheticnet.nas.bilevel import BilevelStepper, SearchDivergedError, build_supernet, make_optimizers
from aestheticnet.nas.derivation import DerivationError, derive_genotype, prune_stage
from aestheticnet.nas.genotypes import (
    Genotype,
    GenotypeError,
    GenotypeOrigin,
    genotype_origin,
    get_genotype,
    list_genotypes,
    register_genotype,
    resolve_genotype,
)
from aestheticnet.nas.latency import EdgeCosts, LatencyError
from aestheticnet.nas.latency_penalty import ExpectedLatency, latency_penalty
from aestheticnet.nas.latency_source import load_edge_costs
from aestheticnet.nas.latency_table import LatencyTable, Prediction, TableRuntime
from aestheticnet.nas.network_plan import NetworkPlan, NetworkSpec, OpShape, plan_network
from aestheticnet.nas.operations import PRIMITIVES
from aestheticnet.nas.plot import plot_genotype
from aestheticnet.nas.search_space import SearchNetwork
from aestheticnet.nas.strategy import DEFAULT_PRESET, PRESETS, SearchConfig, StageSpec, preset_stages

__all__ = [
    "DEFAULT_PRESET",
    "PRESETS",
    "PRIMITIVES",
    "ActiveOps",
    "BilevelStepper",
    "DerivationError",
    "EdgeCosts",
    "ExpectedLatency",
    "Genotype",
    "GenotypeError",
    "LatencyError",
    "LatencyTable",
    "NetworkPlan",
    "NetworkSpec",
    "OpShape",
    "Prediction",
    "SearchConfig",
    "SearchDivergedError",
    "SearchNetwork",
    "StageSpec",
    "TableRuntime",
    "build_supernet",
    "cell_edges",
    "derive_genotype",
    "GenotypeOrigin",
    "genotype_origin",
    "full_space",
    "get_genotype",
    "latency_penalty",
    "list_genotypes",
    "load_edge_costs",
    "make_optimizers",
    "plan_network",
    "plot_genotype",
    "preset_stages",
    "prune_stage",
    "register_genotype",
    "resolve_genotype",
]
