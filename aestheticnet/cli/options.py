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


def _click_type(annotation: str) -> tuple[type, int]:
    """(python type, number of values) from a string annotation such as 'int | None' or 'tuple[float, float]';
    a variable-length ``tuple[str, ...]`` is one comma-separated value (number of values 0)."""
    parts = [p.strip() for p in str(annotation).split("|") if p.strip() != "None"]
    if len(parts) == 1 and parts[0].startswith("tuple[") and parts[0].endswith("]"):
        items = [t.strip() for t in parts[0][len("tuple[") : -1].split(",")]
        if items[1:] == ["..."] and items[0] == "str":
            return str, 0
        if len(set(items)) == 1 and items[0] in _SIMPLE and items[0] != "bool":
            return _SIMPLE[items[0]], len(items)
    if len(parts) != 1 or parts[0] not in _SIMPLE:
        raise TypeError(f"unsupported config field type {annotation!r}")
    return _SIMPLE[parts[0]], 1


def dataclass_options(
    cls: type, skip: tuple[str, ...] = (), choices: dict[str, tuple[str, ...]] | None = None
) -> Callable:
    """One option per field of ``cls`` except ``skip``; ``choices`` lists the valid values of string fields."""
    # Field types are strings under `from __future__ import annotations`; _click_type parses them.
    hints = {f.name: f.type for f in dataclasses.fields(cls)}
    choices = choices or {}

    def decorate(func: Callable) -> Callable:
        for field in reversed(dataclasses.fields(cls)):
            if field.name in skip:
                continue
            t, nargs = _click_type(hints[field.name])
            opt = "--" + field.name.replace("_", "-")
            if field.default is not dataclasses.MISSING:
                default = field.default
            elif field.default_factory is not dataclasses.MISSING:
                default = field.default_factory()
            else:
                default = None
            help_text = f"default: {' '.join(map(str, default)) if isinstance(default, tuple) else default}"
            if t is bool:
                func = click.option(
                    f"{opt}/--no-{field.name.replace('_', '-')}", field.name, default=None, help=help_text
                )(func)
            elif nargs == 0:
                option = click.option(
                    opt, field.name, default=None, callback=_comma_list, help=f"comma-separated; {help_text}"
                )
                func = option(func)
            else:
                kind = click.Choice(choices[field.name]) if field.name in choices else t
                func = click.option(opt, field.name, type=kind, nargs=nargs, default=None, help=help_text)(func)
        return func

    return decorate


def _comma_list(ctx: click.Context, param: click.Parameter, value: str | None) -> tuple[str, ...] | None:
    if value is None:
        return None
    items = tuple(v.strip() for v in value.split(",") if v.strip())
    if not items:
        raise click.BadParameter("expected one or more comma-separated names", ctx=ctx, param=param)
    return items


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
