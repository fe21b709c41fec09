"""Command line: a thin click layer over functions that take explicit arguments."""

from __future__ import annotations

import sys

import click

from aestheticnet import __version__
from aestheticnet.cli import bench, data, export, info, pipeline, search, train

# Errors users cause (bad paths, names, values) are ValueErrors with a message that says what to do; the CLI
# prints the message instead of a traceback.
USER_ERRORS = (ValueError, FileNotFoundError, FileExistsError, NotADirectoryError, PermissionError)


def _fail(exc: BaseException) -> None:
    click.echo(f"error: {exc}", err=True)
    sys.exit(2)


class _Group(click.Group):
    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except USER_ERRORS as exc:
            _fail(exc)


@click.group(cls=_Group)
@click.version_option(__version__, prog_name="aestheticnet")
def main() -> None:
    """aestheticnet: image-aesthetics networks from architecture search to the phone."""


# Every command, imported by name: a module that fails to import stops the CLI with its own error.
for _module in (data, search, train, export, bench, pipeline, info):
    for _command in _module.COMMANDS:
        main.add_command(_command)

__all__ = ["main"]
