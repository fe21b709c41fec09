"""What the config dataclasses (search, model, training) share: unknown keys and bad values named in one message."""

from __future__ import annotations

import dataclasses
from typing import Any, Iterable, Mapping

__all__ = ["field_names", "problems_of", "raise_problems", "reject_unknown", "type_problems"]

_SCALARS: dict[str, tuple[type, ...]] = {"int": (int,), "float": (int, float), "str": (str,), "bool": (bool,)}


def field_names(cls: type) -> list[str]:
    return [f.name for f in dataclasses.fields(cls)]


def reject_unknown(cls: type, data: Mapping[str, Any], source: str) -> None:
    """Refuse keys that are not fields of ``cls``, listing the valid ones."""
    unknown = sorted(set(data) - set(field_names(cls)))
    if unknown:
        raise ValueError(f"{source}: unknown {cls.__name__} key(s) {unknown}; valid keys: {field_names(cls)}")


def problems_of(checks: Iterable[tuple[bool, str]]) -> list[str]:
    """The messages of the failed ``(ok, message)`` checks."""
    return [message for ok, message in checks if not ok]


def raise_problems(owner: object, problems: list[str]) -> None:
    """One ValueError naming every bad value of ``owner`` (a config instance), or nothing when all are good."""
    if problems:
        raise ValueError(f"{type(owner).__name__}: bad value(s): {'; '.join(problems)}")


def type_problems(config: object) -> list[str]:
    """``"key must be <type>, got <value>"`` for every field of the dataclass instance ``config`` whose value is not
    of its annotated type (annotations written as strings: ``int``, ``float | None``, ``tuple[int, ...]``, ...).

    Run before the range checks, which would otherwise fail with a ``TypeError`` that names no key. An int is a
    float; a bool is not an int. Annotations other than these scalars and their tuples are not checked.
    """
    problems = []
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        expected = _expected(str(f.type))
        if expected is not None and not _matches(value, expected):
            problems.append(f"{f.name} must be {f.type}, got {value!r} ({type(value).__name__})")
    return problems


def _expected(annotation: str) -> list[str] | None:
    parts = [p.strip() for p in annotation.split("|")]
    simple = [p for p in parts if p in _SCALARS or p == "None" or p.startswith("tuple[")]
    return parts if len(simple) == len(parts) else None


def _matches(value: Any, expected: list[str]) -> bool:
    for kind in expected:
        if kind == "None" and value is None:
            return True
        if kind in _SCALARS and isinstance(value, _SCALARS[kind]) and (kind == "bool" or not isinstance(value, bool)):
            return True
        if kind.startswith("tuple[") and isinstance(value, (tuple, list)):
            items = [t.strip() for t in kind[len("tuple[") : -1].split(",")]
            item = items[0]
            if item not in _SCALARS:
                return True
            same = len(items) == 2 and items[1] == "..."
            if (same or len(items) == len(value)) and all(_matches(v, [item]) for v in value):
                return True
    return False
