"""A TFLite flatbuffer as an editable object tree, and back: for embedded metadata and exact graph rewrites."""

from __future__ import annotations

__all__ = ["pack", "unpack"]


def unpack(flat: bytes):
    """The editable object tree of a TFLite flatbuffer and the builtin operator code of each opcode index."""
    from ai_edge_litert import schema_py_generated as schema

    model = schema.ModelT.InitFromObj(schema.Model.GetRootAsModel(bytearray(flat), 0))
    return model, [max(c.builtinCode, c.deprecatedBuiltinCode) for c in model.operatorCodes]


def pack(model, size_hint: int = 0) -> bytes:
    """Serialise an object tree from :func:`unpack` back to a TFLite flatbuffer."""
    import flatbuffers

    builder = flatbuffers.Builder(size_hint + 1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())
