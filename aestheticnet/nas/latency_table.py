"""A target's latency table: milliseconds per part of the final network, and the predictions made from it.

``aestheticnet bench ops`` builds it: each part and candidate operation at each shape the final network runs it
at (:mod:`aestheticnet.nas.network_plan`) is exported alone into a small model and timed by the device runner; the
same model without the part is timed too and subtracted, so the entries add up to a whole network. A table is made
for one runtime, one thread count, one device and one network (:class:`NetworkSpec`, input size included);
:meth:`LatencyTable.load` refuses it for another runtime or thread count and :meth:`LatencyTable.check_network`
for another network, naming the file and what it was made for.

:meth:`LatencyTable.edge_costs` sums each operation's cost over every cell of each kind into the search's
:class:`~aestheticnet.nas.latency.EdgeCosts`; :meth:`LatencyTable.predict` gives one genotype's latency with a
breakdown by part (stem, cells by stage, CBAM, head). Both add the same entries.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from functools import cached_property
from pathlib import Path
from typing import Any

from aestheticnet.io import atomic_write_json, read_parsed
from aestheticnet.nas.genotypes import Genotype
from aestheticnet.nas.latency import EdgeCosts, LatencyError
from aestheticnet.nas.network_plan import NetworkPlan, NetworkSpec, OpShape, plan_network
from aestheticnet.nas.operations import PRIMITIVES
from aestheticnet.runtime_names import RuntimeName

__all__ = ["SCHEMA", "LatencyTable", "Prediction", "TableRuntime"]

SCHEMA = "aestheticnet.latency_table/1"


class TableRuntime(str, Enum):
    """The runtimes a table can be made for (the runner's backend names)."""

    ONNXRUNTIME = RuntimeName.ONNXRUNTIME.value
    LITERT = RuntimeName.LITERT.value


@dataclass(frozen=True)
class Prediction:
    """A network's predicted latency and where it goes (``parts`` add up to ``total_ms``)."""

    total_ms: float
    parts: dict[str, float]  # stem, stage1, reduction1, stage2, reduction2, stage3, cbam, head


def _threads_text(n: int) -> str:
    return f"{n} thread" + ("" if n == 1 else "s")


@dataclass(frozen=True)
class LatencyTable:
    """Milliseconds (p50, per-model overhead subtracted) per :class:`OpShape` key, for one target and network."""

    runtime: TableRuntime
    threads: int
    network: NetworkSpec
    entries: Mapping[str, float]  # OpShape.key -> ms
    runtime_version: str | None = None
    device: str = "local"
    measurements: Mapping[str, Any] = field(default_factory=dict)  # how each entry was measured (raw p50s, ...)
    device_info: Mapping[str, Any] | None = None
    created: str | None = None
    method: Mapping[str, Any] = field(default_factory=dict)  # how the entries were measured (probes, rounds, ...)

    def __post_init__(self) -> None:
        object.__setattr__(self, "runtime", TableRuntime(self.runtime))
        if self.threads < 1:
            raise LatencyError(f"latency table: threads={self.threads} (need >= 1)")
        unknown = sorted(set(self.entries) - set(self._shapes))
        if unknown:
            raise LatencyError(f"latency table: {unknown[:3]} are no parts of {self.network.describe()}")

    def describe(self) -> str:
        version = f" {self.runtime_version}" if self.runtime_version else ""
        return (
            f"{self.runtime.value}{version}, {_threads_text(self.threads)}, on {self.device}, "
            f"for {self.network.describe()}"
        )

    # ---------------------------------------------------------------------------------------------- files

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA,
            "created": self.created,
            "device": self.device,
            "device_info": self.device_info,
            "runtime": self.runtime.value,
            "runtime_version": self.runtime_version,
            "threads": self.threads,
            "size": f"{self.network.height}x{self.network.width}",
            "network": self.network.to_dict(),
            "method": dict(self.method),
            "entries": [
                {**self._shapes[key].to_dict(), "key": key, "ms": ms, **self.measurements.get(key, {})}
                for key, ms in self.entries.items()
            ],
        }

    def save(self, path: str | Path) -> Path:
        """Write the table as JSON, atomically."""
        atomic_write_json(path, self.to_dict())
        return Path(path)

    @classmethod
    def load(cls, path: str | Path, runtime: TableRuntime | None = None, threads: int | None = None) -> "LatencyTable":
        """Read a table; with ``runtime`` / ``threads``, refuse one made for another runtime or thread count."""
        path = Path(path)
        data = read_parsed(path, json.loads, "latency table", "JSON", LatencyError)
        table = cls.from_dict(data, str(path))
        wanted = TableRuntime(runtime) if runtime is not None else table.runtime
        if wanted != table.runtime or (threads is not None and threads != table.threads):
            asked = f"{wanted.value} with {_threads_text(threads if threads is not None else table.threads)}"
            raise LatencyError(
                f"latency table {path} was made for {table.runtime.value} with {_threads_text(table.threads)}, "
                f"not for {asked}; build one for that with `aestheticnet bench ops --runtime {wanted.value} "
                f"--threads {threads if threads is not None else table.threads}`"
            )
        return table

    @classmethod
    def from_dict(cls, data: Any, source: str = "latency table") -> "LatencyTable":
        """The table in ``data`` (the JSON :meth:`to_dict` writes); errors name ``source``."""
        if not isinstance(data, dict) or data.get("schema") != SCHEMA:
            raise LatencyError(f"{source} is not a latency table ({SCHEMA}); build one with `aestheticnet bench ops`")
        try:
            runtime = TableRuntime(data["runtime"])
            network = NetworkSpec.from_dict(data["network"], source)
            entries, measurements = {}, {}
            known = {"op", "c_in", "c_out", "height", "width", "stride", "dilation"}
            for item in data["entries"]:
                key = OpShape.from_dict({k: v for k, v in item.items() if k in known}, source).key
                entries[key] = float(item["ms"])
                measurements[key] = {k: v for k, v in item.items() if k not in known | {"key", "ms"}}
            return cls(
                runtime,
                int(data["threads"]),
                network,
                entries,
                data.get("runtime_version"),
                data.get("device", "local"),
                measurements,
                data.get("device_info"),
                data.get("created"),
                data.get("method", {}),
            )
        except (KeyError, TypeError, ValueError) as exc:
            if isinstance(exc, LatencyError):
                raise
            raise LatencyError(f"latency table {source} is malformed: {type(exc).__name__}: {exc}") from None

    # ------------------------------------------------------------------------------------------ predictions

    def check_network(self, spec: NetworkSpec, what: str = "the model") -> None:
        """Refuse to predict a network other than the one this table was made for."""
        if spec != self.network:
            raise LatencyError(
                f"{what} is {spec.describe()}; the latency table is for {self.network.describe()} "
                f"({'; '.join(spec.differences(self.network))}): build a table for it with `aestheticnet bench ops`"
            )

    def ms(self, shape: OpShape | None) -> float:
        """Milliseconds of one part (0 for an edge that runs nothing)."""
        if shape is None:
            return 0.0
        if shape.key not in self.entries:
            raise LatencyError(
                f"the latency table has no entry for {shape.key} ({self.describe()}); build it "
                "again with `aestheticnet bench ops` (tables made before ReLUs had entries lack them)"
            )
        return self.entries[shape.key]

    @cached_property
    def plan(self) -> NetworkPlan:
        """The parts of the network the table is made for, at their shapes."""
        return plan_network(self.network)

    @cached_property
    def _shapes(self) -> dict[str, OpShape]:
        return {s.key: s for s in self.plan.entries()}

    def edge_costs(self) -> EdgeCosts:
        """Per edge and operation, the milliseconds summed over every cell of each kind; the rest as fixed.

        Additive, as the search needs: an edge that starts with a ReLU counts the ReLU its entry holds, where
        :meth:`predict` counts one per state (``NetworkPlan.relus``)."""
        plan = self.plan
        rows: dict[bool, list[tuple[float, ...]]] = {False: [], True: []}
        for reduction in (False, True):
            cells = [c for c in plan.cells if c.reduction == reduction]
            for _node, source in plan.edges():
                rows[reduction].append(tuple(sum(self.ms(c.edge_op(op, source)) for c in cells) for op in PRIMITIVES))
        fixed = sum(self.ms(p) for p in plan.fixed())
        return EdgeCosts(PRIMITIVES, tuple(rows[False]), tuple(rows[True]), fixed)

    def predict(self, genotype: Genotype) -> Prediction:
        """The latency of the final network built from ``genotype``, by part."""
        plan = self.plan
        steps, multiplier = plan.spec.steps, plan.spec.multiplier
        if (
            genotype.steps != steps
            or len(genotype.normal_concat) != multiplier
            or len(genotype.reduce_concat) != multiplier
        ):
            raise LatencyError(
                f"the genotype has {genotype.steps} nodes per cell and concatenates "
                f"{len(genotype.normal_concat)}/{len(genotype.reduce_concat)}; the latency table is "
                f"for cells of {steps} nodes concatenating {multiplier}"
            )
        parts: dict[str, float] = {"stem": self.ms(plan.stem)}
        for cell in plan.cells:
            edges = genotype.reduce if cell.reduction else genotype.normal
            run, held = plan.relus(cell, edges)
            ms = sum(self.ms(p) for p in cell.fixed())
            ms += sum(self.ms(cell.edge_op(op, source)) for op, source in edges)
            ms += sum(self.ms(r) for r in run) - sum(self.ms(r) for r in held)
            parts[cell.stage] = parts.get(cell.stage, 0.0) + ms
        parts["cbam"] = self.ms(plan.cbam)
        parts["head"] = self.ms(plan.head)
        return Prediction(sum(parts.values()), parts)
