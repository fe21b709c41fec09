"""`aestheticnet bench ops`: the probe models, the command line, and one small table timed for real."""

import json

import pytest
import torch
from click.testing import CliRunner

from aestheticnet.bench import ops_table
from aestheticnet.bench.op_probes import CopyRule, Feed, baseline_feed, copies_of, feed_for, probe
from aestheticnet.cli import main
from aestheticnet.nas.latency_table import LatencyTable, TableRuntime
from aestheticnet.nas.network_plan import NetworkPlan, NetworkSpec, plan_network
from aestheticnet.nas.operations import SepConv

SPEC = NetworkSpec("aestheticnet_star", layers=5, init_channels=4, height=64, width=64)


def test_every_probe_feeds_its_part_the_planned_input():
    x = torch.rand(1, 3, 64, 64)
    for shape in plan_network(SPEC).entries():
        model = probe(shape, SPEC, copies=copies_of(shape, SPEC, CopyRule(2, 0)))
        inputs = []
        model.body.register_forward_hook(lambda m, a, y: inputs.append(tuple(a[0].shape)))
        with torch.no_grad():
            out = model(x)
        feed = feed_for(shape, SPEC)
        channels = shape.c_out if shape.op == "concat" else shape.c_in
        assert inputs == [(1, channels, shape.height, shape.width)], shape.key
        # a map leaves the probe as one pixel per channel; the head's distribution as it is
        assert tuple(out.shape) == ((1, shape.c_out) if shape.op == "head" else (1, shape.c_out, 1, 1)), shape.key
        assert (feed.pieces > 1) == (shape.op in ("relu_conv_bn", "factorized_reduce", "cbam", "concat")), shape.key


def test_probes_hold_copies_and_baselines_their_feed_alone():
    plan = plan_network(SPEC)
    sep = next(s for s in plan.entries() if s.op == "sep_conv_3x3" and s.stride == 1)
    assert sum(isinstance(m, SepConv) for m in probe(sep, SPEC, copies=3).modules()) == 3
    few = CopyRule(copies=3, weights_bytes=0)
    assert copies_of(sep, SPEC, few) == 3
    # enough copies for the weight data asked for, within the bounds
    weights = 4 * sum(p.numel() for p in SepConv(sep.c_in, sep.c_out, 3, 1, 1).parameters())
    assert copies_of(sep, SPEC, CopyRule(3, 10 * weights, 64)) == 10
    assert copies_of(sep, SPEC, CopyRule(3, 100 * weights, 64)) == 64
    pre = plan.cells[1].preprocess[1]
    assert copies_of(pre, SPEC, CopyRule(8, 1 << 30)) == 64
    assert copies_of(plan.stem, SPEC) == 1 and copies_of(plan.head, SPEC) == 1
    pool_s2 = plan.cells[1].edge_op("max_pool_3x3", 0)  # copies side by side would be one common subexpression
    assert pool_s2.stride == 2 and copies_of(pool_s2, SPEC) == 1
    assert copies_of(plan.cells[1].edge_op("max_pool_3x3", 2), SPEC, few) == 3  # no weights: the least copies
    concat = plan.cells[0].concat
    assert feed_for(concat, SPEC) == Feed(8, 16, 4) and baseline_feed(concat, SPEC) == Feed(8, 16, 1)
    base = probe(None, SPEC, baseline_feed(sep, SPEC))
    assert tuple(base(torch.rand(1, 3, 64, 64)).shape) == (1, sep.c_in, 1, 1)


def test_bench_ops_command_line(tmp_path, monkeypatch):
    calls = []

    def fake_build(spec, settings, device, models_dir, progress):
        calls.append((spec, settings, device.describe(), models_dir))
        shapes = {s.key: s for s in plan_network(spec).entries()}
        return LatencyTable(settings.runtime, settings.threads, spec, {k: 0.5 for k in shapes}, "9.9", "local")

    monkeypatch.setattr(ops_table, "build_latency_table", fake_build)
    out = tmp_path / "t.json"
    args = [
        "bench",
        "ops",
        "--runtime",
        "litert",
        "--threads",
        "2",
        "--size",
        "64x64",
        "--layers",
        "5",
        "--init-channels",
        "4",
        "--rounds",
        "2",
        "--out",
        str(out),
    ]
    r = CliRunner().invoke(main, args)
    assert r.exit_code == 0, r.output
    spec, settings, device, models_dir = calls[0]
    assert spec == SPEC and device == "local" and models_dir is None
    assert settings.runtime == TableRuntime.LITERT and settings.threads == 2 and settings.rounds == 2
    assert settings.copies == CopyRule(8, 4 << 20)
    assert LatencyTable.load(out, runtime=TableRuntime.LITERT, threads=2).network == SPEC
    assert "predicted latency of the PDARTS cells" in r.output
    r = CliRunner().invoke(main, ["bench", "ops", "--runtime", "tvm"])
    assert r.exit_code == 2 and "tvm" in r.output


@pytest.mark.slow
def test_a_small_table_timed_by_the_runner(tmp_path, monkeypatch):
    """Two entries of the tiny network, exported and timed for real (the full plan takes minutes)."""
    full = plan_network(SPEC)
    chosen = (full.cells[0].edge_op("max_pool_3x3", 0), full.cells[0].edge_op("sep_conv_3x3", 2))
    monkeypatch.setattr(NetworkPlan, "entries", lambda self: chosen)
    settings = ops_table.OpsBenchSettings(runs=5, warmup=1, rounds=2, copies=CopyRule(2, 0))
    table = ops_table.build_latency_table(SPEC, settings, models_dir=tmp_path)
    assert set(table.entries) == {s.key for s in chosen} and all(v >= 0 for v in table.entries.values())
    assert table.runtime_version and table.device == "local" and table.device_info["cpu_model"]
    for key in table.entries:
        m = table.measurements[key]
        assert m["copies"] == 2 and len(m["probe_rounds_ms"]) == 2 and m["probe_ms"] > 0 and m["baseline_ms"] > 0
    saved = json.loads(table.save(tmp_path / "t.json").read_text())
    assert saved["runtime"] == "onnxruntime" and len(saved["entries"]) == 2
    assert len(list(tmp_path.glob("*.onnx"))) == 3  # two probes, one baseline (both read a 4-channel 8x8 map)


def test_relu_probe_differs_from_its_baseline_by_one_standalone_relu_per_copy(tmp_path):
    """Exported by the network's route and optimised by ONNX Runtime, the probe keeps every ReLU (none folded into
    another ReLU or into the feed's convolution) and its baseline the same sums without them."""
    import onnx
    import onnxruntime as ort

    from aestheticnet.export.onnx.build import export_onnx

    relu = next(s for s in plan_network(SPEC).entries() if s.op == "relu")
    copies = copies_of(relu, SPEC)
    assert copies == copies_of(relu, SPEC, CopyRule(2, 0, 4)) == baseline_feed(relu, SPEC).sums > 8

    def optimised_ops(model, name):
        path = export_onnx(model, tmp_path / f"{name}.onnx", example_size=(64, 64))
        so = ort.SessionOptions()
        so.optimized_model_filepath = str(tmp_path / f"{name}.opt.onnx")
        ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
        return [n.op_type for n in onnx.load(so.optimized_model_filepath).graph.node]

    with_relus = optimised_ops(probe(relu, SPEC, copies=copies), "probe")
    without = optimised_ops(probe(None, SPEC, baseline_feed(relu, SPEC)), "baseline")
    assert with_relus.count("Relu") == copies and without.count("Relu") == 0
    assert with_relus.count("Add") == without.count("Add") == copies
    with pytest.raises(ValueError, match="needs as many copies"):
        probe(relu, SPEC, copies=copies - 1)
