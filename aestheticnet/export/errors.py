"""The error every exporter raises when an export cannot be done as asked."""

from __future__ import annotations

__all__ = ["ExportError"]


class ExportError(ValueError):
    """An export cannot be done as asked; the message says what was expected."""
