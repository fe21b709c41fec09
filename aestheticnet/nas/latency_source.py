"""Where the search gets a target's edge costs: the one function that turns ``SearchConfig.latency_table`` into
:class:`EdgeCosts`.

The file is a latency table written by ``aestheticnet bench ops``
(:class:`~aestheticnet.nas.latency_table.LatencyTable`, reduced to its edge costs here), or edge costs already reduced (:meth:`EdgeCosts.to_dict`: costs that come from
elsewhere, e.g. a model of the target built from MACs). Everything in the search goes through
:func:`load_edge_costs`.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from aestheticnet.nas.latency import EdgeCosts, LatencyError
from aestheticnet.nas.latency_table import SCHEMA, LatencyTable

__all__ = ["load_edge_costs"]


def load_edge_costs(path: str | os.PathLike) -> EdgeCosts:
    """The edge costs in the latency table at ``path``; :class:`LatencyError` naming the file when it cannot."""
    path = Path(path)
    if not path.is_file():
        raise LatencyError(f"latency table {path} does not exist; build one with `aestheticnet bench ops`")
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise LatencyError(f"cannot read latency table {path}: {exc}") from None
    if isinstance(data, dict) and data.get("schema") == SCHEMA:
        return LatencyTable.from_dict(data, source=f"latency table {path}").edge_costs()
    return EdgeCosts.from_dict(data, source=f"latency table {path}")
