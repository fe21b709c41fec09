"""Where the search gets a target's edge costs: the one function that turns ``SearchConfig.latency_table`` into
:class:`EdgeCosts`.

The file read here holds an :class:`EdgeCosts` as JSON (:meth:`EdgeCosts.to_dict`). Everything in the search goes
through :func:`load_edge_costs`, so reading another file format means changing this function only.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from aestheticnet.nas.latency import EdgeCosts, LatencyError

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
    return EdgeCosts.from_dict(data, source=f"latency table {path}")
