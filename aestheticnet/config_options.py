"""Click options generated from a config dataclass, so the CLI and the dataclass never disagree.

Every field ``foo_bar`` becomes ``--foo-bar``; a value given on the command line overrides the JSON config
file (``--config``), which overrides the dataclass default.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any, Callable

import click

__all__ = ["dataclass_options", "build_config"]

_SIMPLE = {"int": int, "float": float, "str": str, "bool": bool}


def _click_type(annotation: str) -> tuple[type, bool]:
    """(python type, is_flag) from a string annotation such as 'int | None'."""
    parts = [p.strip() for p in str(annotation).split("|") if p.strip() != "None"]
    if len(parts) != 1 or parts[0] not in _SIMPLE:
        raise TypeError(f"unsupported config field type {annotation!r}")
    t = _SIMPLE[parts[0]]
    return t, t is bool


def dataclass_options(cls: type, skip: tuple[str, ...] = ()) -> Callable:
    # Field types are strings under `from __future__ import annotations`; _click_type parses them.
    hints = {f.name: f.type for f in dataclasses.fields(cls)}

    def decorate(func: Callable) -> Callable:
        for field in reversed(dataclasses.fields(cls)):
            if field.name in skip:
                continue
            t, is_flag = _click_type(hints[field.name])
            opt = "--" + field.name.replace("_", "-")
            default = field.default if field.default is not dataclasses.MISSING else None
            if is_flag:
                func = click.option(f"{opt}/--no-{field.name.replace('_', '-')}", field.name, default=None,
                                    help=f"default: {default}")(func)  # fmt: skip
            else:
                func = click.option(opt, field.name, type=t, default=None, help=f"default: {default}")(func)
        return func

    return decorate


def build_config(cls: type, config_file: str | None, cli_values: dict[str, Any]) -> Any:
    values: dict[str, Any] = {}
    if config_file:
        path = Path(config_file)
        try:
            loaded = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise ValueError(f"cannot read config {path}: {exc}") from None
        if not isinstance(loaded, dict):
            raise ValueError(f"config {path} must hold a JSON object")
        values.update(loaded)
    names = {f.name for f in dataclasses.fields(cls)}
    values.update({k: v for k, v in cli_values.items() if k in names and v is not None})
    if hasattr(cls, "from_dict"):
        return cls.from_dict(values, source=str(config_file or "command line"))
    return cls(**values)
