"""The one registry of export formats: :class:`~aestheticnet.export.exporter.Exporter` objects by format name.

The export, ``verify``, ``bench``, ``runtime.load`` and the pipeline find a format's converter, backend, needs and
checks here. Adding a format is a folder ``export/<format>/`` with its exporter object, and one line below; a format
that lives in another package registers itself with an entry point in the ``aestheticnet.formats`` group (an
``Exporter`` subclass or instance), which every process (the device runner's too) loads with this module.
"""

from __future__ import annotations

import os

from aestheticnet.artifacts import SPECS, Format, UnknownFormatError, format_of_path, register_format
from aestheticnet.export.coreml.exporter import CoreMLExporter
from aestheticnet.export.executorch.exporter import ExecuTorchExporter
from aestheticnet.export.exporter import Exporter
from aestheticnet.export.onnx.exporter import OnnxExporter
from aestheticnet.export.tflite.exporter import TFLiteExporter
from aestheticnet.registry import Registry

__all__ = [
    "EXPORTERS",
    "PLUGIN_GROUP",
    "exporter_for",
    "exporter_of_path",
    "load_plugins",
    "register_exporter",
    "unregister_exporter",
]

PLUGIN_GROUP = "aestheticnet.formats"

EXPORTERS: Registry[Exporter] = Registry("export format", UnknownFormatError)


def register_exporter(exporter: Exporter) -> Exporter:
    """Register ``exporter`` and, when its format is new, its :class:`~aestheticnet.artifacts.FormatSpec`."""
    if exporter.format not in SPECS:
        register_format(exporter.spec)
    return EXPORTERS.register(exporter.format.value, exporter)


def unregister_exporter(fmt: Format) -> None:
    """Remove a format's exporter, and its spec unless it is one of the artifacts package's built-in formats."""
    from aestheticnet.artifacts import unregister_format

    EXPORTERS.unregister(fmt.value)
    if fmt not in (Format.ONNX, Format.TFLITE, Format.COREML, Format.EXECUTORCH):
        unregister_format(fmt)


def exporter_for(fmt: Format) -> Exporter:
    return EXPORTERS.get(Format(fmt).value)


def exporter_of_path(path: str | os.PathLike) -> Exporter:
    """The exporter of the format an artifact path belongs to (by its suffix)."""
    return exporter_for(format_of_path(path))


register_exporter(OnnxExporter())
register_exporter(TFLiteExporter())
register_exporter(CoreMLExporter())
register_exporter(ExecuTorchExporter())


def load_plugins() -> list[Exporter]:
    """Register the exporters other packages declare as ``aestheticnet.formats`` entry points (formats already
    registered are left as they are); a plugin that fails to load is refused by name."""
    from importlib.metadata import entry_points

    added = []
    for point in entry_points(group=PLUGIN_GROUP):
        try:
            loaded = point.load()
            exporter = loaded() if isinstance(loaded, type) else loaded
        except Exception as exc:
            raise ImportError(f"format plug-in {point.name!r} ({point.value}) failed to load: {exc}") from exc
        if not isinstance(exporter, Exporter):
            raise TypeError(f"format plug-in {point.name!r} ({point.value}) is not an Exporter")
        if exporter.format.value not in EXPORTERS:
            added.append(register_exporter(exporter))
    return added


load_plugins()
