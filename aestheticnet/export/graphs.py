"""Graph walks shared by the ONNX and TFLite int8 steps (which operators stay float)."""

from __future__ import annotations

__all__ = ["walk"]


def walk(roots: list, neighbours) -> list:
    """Every node reachable from ``roots`` through ``neighbours(node)``, each once, roots included."""
    seen, order, stack = set(), [], list(roots)
    while stack:
        node = stack.pop()
        if node is None or id(node) in seen:
            continue
        seen.add(id(node))
        order.append(node)
        stack.extend(neighbours(node))
    return order
