"""Where a model file's time goes, per operator, with each runtime's own means (batch 1, one input size).

* ONNX Runtime: its profiler (``SessionOptions.enable_profiling``): kernel time per operator type, and the
  operator types left after its graph optimisations.
* ExecuTorch: ETDump, its event tracer (the program loaded with ``enable_etdump``, read back with
  ``executorch.devtools.Inspector``): time per XNNPACK operator (named with its data types, e.g.
  ``Convolution (NHWC, QC8)``: int8 kernels, or ``F32``) and per kernel outside the delegate.
* LiteRT: its Python API has no operator timer (the C++ ``benchmark_model --enable_op_profiling`` is not in the
  wheel), so the graph is timed cut after every few operators (the operators' outputs made the subgraph's outputs,
  later operators dropped): the time between two cuts is that of the operators between them, XNNPACK partitioning
  each cut graph as it would the whole.

Each function returns rows of ``{"name": ..., "ms": ...}`` (median per inference), slowest first, with the total.
"""

from __future__ import annotations

import collections
import json
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["executorch_profile", "litert_cut_profile", "onnxruntime_profile"]


def _rows(times: dict[str, float]) -> list[dict[str, Any]]:
    return [{"name": k, "ms": round(v, 4)} for k, v in sorted(times.items(), key=lambda kv: -kv[1])]


def onnxruntime_profile(
    path: str | Path,
    size: tuple[int, int] = (224, 224),
    runs: int = 50,
    group: Callable[[Any], str | None] | None = None,
) -> dict[str, Any]:
    """Kernel milliseconds per operator type per run (1 thread), and the operator types after optimisation.

    ``group``: a label for a node of the optimised graph (an ``onnx.NodeProto``; None: not counted), whose times are
    also summed per label under ``groups`` (say, convolutions by kind)."""
    import onnx
    import onnxruntime as ort

    x = np.random.default_rng(0).standard_normal((1, 3, *size)).astype(np.float32)
    with tempfile.TemporaryDirectory() as tmp:
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.enable_profiling = True
        options.profile_file_prefix = str(Path(tmp) / "profile")
        options.optimized_model_filepath = str(Path(tmp) / "optimised.onnx")
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        feed = {session.get_inputs()[0].name: x}
        for _ in range(runs):
            session.run(None, feed)
        events = json.loads(Path(session.end_profiling()).read_text())
        nodes = list(onnx.load(options.optimized_model_filepath).graph.node)
    labels = {n.name: group(n) for n in nodes} if group is not None else {}
    per_op: dict[str, float] = collections.defaultdict(float)
    per_label: dict[str, float] = collections.defaultdict(float)
    for event in events:
        if event.get("cat") == "Node" and event.get("name", "").endswith("_kernel_time"):
            ms = event["dur"] / 1000.0 / runs
            per_op[event["args"]["op_name"]] += ms
            label = labels.get(event["name"].removesuffix("_kernel_time"))
            if label:
                per_label[label] += ms
    rows = _rows(per_op)
    return {
        "rows": rows,
        "total_ms": round(sum(r["ms"] for r in rows), 4),
        "ops_after_optimisation": dict(collections.Counter(n.op_type for n in nodes)),
        "groups": _rows(per_label),
    }


def executorch_profile(path: str | Path, size: tuple[int, int] = (224, 224), runs: int = 30) -> dict[str, Any]:
    """Milliseconds per operator kind (instance numbers dropped) per run, from ETDump; 1 thread."""
    import torch
    from executorch.devtools import Inspector
    from executorch.extension.pybindings.portable_lib import _load_for_executorch, _unsafe_reset_threadpool

    _unsafe_reset_threadpool(1)  # before the program loads
    module = _load_for_executorch(str(path), enable_etdump=True, debug_buffer_size=0)
    x = torch.from_numpy(np.random.default_rng(0).standard_normal((1, 3, *size)).astype(np.float32))
    for _ in range(runs):
        module.forward([x])
    with tempfile.TemporaryDirectory() as tmp:
        dump = Path(tmp) / "etdump.etdp"
        module.write_etdump_result_to_file(str(dump))
        inspector = Inspector(etdump_path=str(dump))
    per_kind: dict[str, float] = collections.defaultdict(float)
    total = 0.0
    for block in inspector.event_blocks:
        for event in block.events:
            if event.perf_data is None:
                continue
            if event.name == "Method::execute":
                total = float(event.perf_data.p50)
            elif event.name not in ("DELEGATE_CALL", "OPERATOR_CALL") and not event.name.startswith(
                ("Program::", "Method::")
            ):
                per_kind[event.name.split(" #")[0]] += float(event.perf_data.p50)
    return {"rows": _rows(per_kind), "total_ms": round(total, 4)}


def _cut_after(flat: bytes, last: int) -> bytes:
    from aestheticnet.artifacts.flatbuffer import pack, unpack

    model, _ = unpack(flat)
    graph = model.subgraphs[0]
    graph.operators = graph.operators[: last + 1]
    graph.outputs = list(graph.operators[last].outputs)
    model.signatureDefs = []
    return pack(model, len(flat))


def _litert_p50(content: bytes, x: np.ndarray, runs: int) -> float:
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_content=content, num_threads=1)
    index = interpreter.get_input_details()[0]["index"]
    interpreter.resize_tensor_input(index, list(x.shape))
    interpreter.allocate_tensors()
    times = []
    for i in range(runs + 5):
        t0 = time.perf_counter()
        interpreter.set_tensor(index, x)
        interpreter.invoke()
        if i >= 5:
            times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1000.0


def litert_cut_profile(
    path: str | Path, size: tuple[int, int] = (224, 224), cuts: int = 16, runs: int = 40
) -> dict[str, Any]:
    """Milliseconds per stretch of operators (``ops 12-30: CONV_2D x5, ...``) from cut graphs (module docstring);
    the rows are in graph order, not sorted."""
    from ai_edge_litert import schema_py_generated as schema

    from aestheticnet.artifacts.flatbuffer import unpack

    flat = Path(path).read_bytes()
    model, codes = unpack(flat)
    names = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
    operators = model.subgraphs[0].operators
    x = np.random.default_rng(0).standard_normal((1, *size, 3)).astype(np.float32)
    ends = sorted({round(j * (len(operators) - 1) / cuts) for j in range(1, cuts + 1)})
    rows, start, before = [], 0, 0.0
    for end in ends:
        elapsed = _litert_p50(_cut_after(flat, end), x, runs)
        kinds = collections.Counter(names.get(codes[op.opcodeIndex], "?") for op in operators[start : end + 1])
        label = ", ".join(f"{k} x{n}" for k, n in kinds.most_common(4))
        rows.append({"name": f"ops {start}-{end}: {label}", "ms": round(elapsed - before, 4)})
        start, before = end + 1, elapsed
    return {"rows": rows, "total_ms": round(before, 4)}
