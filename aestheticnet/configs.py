"""What the config dataclasses (search, model, training) share: unknown keys and bad values named in one message."""

from __future__ import annotations

import dataclasses
from typing import Any, Iterable, Mapping

__all__ = ["field_names", "reject_unknown", "raise_problems", "problems_of"]


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
