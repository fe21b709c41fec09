"""Latency tables: the parts of the final network by shape, the JSON file, edge costs and predictions, probes."""

import json

import pytest
import torch
from click.testing import CliRunner

from aestheticnet.cli import main
from aestheticnet.models import create_model, save
from aestheticnet.nas.genotypes import Genotype, resolve_genotype
from aestheticnet.nas.latency import LatencyError, edge_index
from aestheticnet.nas.latency_table import LatencyTable, TableRuntime
from aestheticnet.nas.network_plan import NetworkSpec, OpShape, plan_network
from aestheticnet.nas.operations import PRIMITIVES, DilConv, FactorizedReduce, Identity, SepConv

# 5 cells: normal 0, reduction 1, normal 2, reduction 3, normal 4 (dilated); C=4 at 64x64: cells at 8, 4, 2 pixels.
SPEC = NetworkSpec("aestheticnet_star", layers=5, init_channels=4, height=64, width=64)
# Every operation on both kinds of edge (from a cell input, from a node) in both cells.
ALL_OPS = Genotype.create(
    [
        ("sep_conv_3x3", 0),
        ("sep_conv_5x5", 1),
        ("dil_conv_3x3", 2),
        ("dil_conv_5x5", 1),
        ("max_pool_3x3", 3),
        ("avg_pool_3x3", 0),
        ("skip_connect", 4),
        ("skip_connect", 1),
    ],
    (2, 3, 4, 5),
    [
        ("skip_connect", 0),
        ("max_pool_3x3", 1),
        ("avg_pool_3x3", 2),
        ("sep_conv_3x3", 0),
        ("sep_conv_5x5", 3),
        ("dil_conv_3x3", 1),
        ("dil_conv_5x5", 4),
        ("sep_conv_3x3", 2),
    ],
    (2, 3, 4, 5),
)


def _table(spec: NetworkSpec = SPEC, runtime=TableRuntime.ONNXRUNTIME, threads: int = 1) -> LatencyTable:
    """Entry i (in sorted order) costs i + 1 ms: every entry distinct, so a wrong lookup changes the sums."""
    shapes = {s.key: s for s in plan_network(spec).entries()}
    entries = {key: float(i + 1) for i, key in enumerate(shapes)}
    return LatencyTable(runtime, threads, spec, entries, "1.0", "local", {k: {"copies": 8} for k in shapes})


def test_json_round_trip(tmp_path):
    table = _table()
    path = table.save(tmp_path / "t.json")
    loaded = LatencyTable.load(path, runtime=TableRuntime.ONNXRUNTIME, threads=1)
    assert loaded == table
    data = json.loads(path.read_text())
    assert data["runtime"] == "onnxruntime" and data["threads"] == 1 and data["size"] == "64x64"
    assert data["network"]["layers"] == 5 and data["network"]["variant"] == "aestheticnet_star"
    assert not list(tmp_path.glob(".*.tmp"))  # the atomic write left nothing behind
    with pytest.raises(LatencyError, match="no parts of"):
        LatencyTable(TableRuntime.ONNXRUNTIME, 1, SPEC, {OpShape("sep_conv_3x3", 5, 5, 8, 8).key: 1.0})


def test_load_refuses_another_runtime_or_thread_count(tmp_path):
    path = _table(runtime=TableRuntime.LITERT, threads=2).save(tmp_path / "t.json")
    with pytest.raises(LatencyError, match=r"t\.json was made for litert with 2 threads, not for onnxruntime with 2"):
        LatencyTable.load(path, runtime=TableRuntime.ONNXRUNTIME)
    with pytest.raises(LatencyError, match=r"made for litert with 2 threads, not for litert with 1 thread"):
        LatencyTable.load(path, threads=1)
    assert LatencyTable.load(path, runtime="litert", threads=2).threads == 2
    (tmp_path / "x.json").write_text(json.dumps({"schema": "something else"}))
    with pytest.raises(LatencyError, match="is not a latency table"):
        LatencyTable.load(tmp_path / "x.json")


def test_edge_costs_sum_each_op_over_the_cells_of_a_kind():
    table = _table()
    costs = table.edge_costs()
    t = table.entries

    def ms(*args) -> float:
        return t[OpShape(*args).key]

    # normal cells 0, 2, 4 (C=4 at 8x8, C=8 at 4x4, C=16 at 2x2 with dilated sep convs)
    assert costs.cost("normal", 0, "sep_conv_3x3") == ms("sep_conv_3x3", 4, 4, 8, 8) + ms(
        "sep_conv_3x3", 8, 8, 4, 4
    ) + ms("sep_conv_3x3", 16, 16, 2, 2, 1, 2)
    assert costs.cost("normal", 3, "dil_conv_5x5") == ms("dil_conv_5x5", 4, 4, 8, 8, 1, 2) + ms(
        "dil_conv_5x5", 8, 8, 4, 4, 1, 2
    ) + ms("dil_conv_5x5", 16, 16, 2, 2, 1, 2)
    assert costs.cost("normal", 5, "skip_connect") == 0.0 and costs.cost("normal", 0, "none") == 0.0
    # reduction cells 1 (C=8, inputs at 8x8) and 3 (C=16, inputs at 4x4): stride 2 from the inputs
    assert costs.cost("reduce", 1, "skip_connect") == ms("skip_connect", 8, 8, 8, 8, 2) + ms(
        "skip_connect", 16, 16, 4, 4, 2
    )
    assert costs.cost("reduce", edge_index(1, 2), "max_pool_3x3") == ms("max_pool_3x3", 8, 8, 4, 4) + ms(
        "max_pool_3x3", 16, 16, 2, 2
    )
    assert costs.cost("reduce", edge_index(1, 2), "skip_connect") == 0.0
    # fixed: stem, 5 x (two preprocessing blocks, a concat), CBAM, head
    preprocess = [
        ("factorized_reduce", 4, 4, 16, 16, 2),
        ("relu_conv_bn", 4, 4, 8, 8),  # cell 0
        ("relu_conv_bn", 4, 8, 8, 8),
        ("relu_conv_bn", 16, 8, 8, 8),  # cell 1
        ("factorized_reduce", 16, 8, 8, 8, 2),
        ("relu_conv_bn", 32, 8, 4, 4),  # cell 2
        ("relu_conv_bn", 32, 16, 4, 4),
        ("relu_conv_bn", 32, 16, 4, 4),  # cell 3
        ("factorized_reduce", 32, 16, 4, 4, 2),
        ("relu_conv_bn", 64, 16, 2, 2),
    ]  # cell 4
    nodes = [(4, 8), (8, 4), (8, 4), (16, 2), (16, 2)]  # channels and size of each cell's nodes
    fixed = ms("stem", 3, 4, 64, 64, 8) + sum(ms(*p) for p in preprocess)
    fixed += sum(ms("concat", c, 4 * c, r, r) for c, r in nodes)
    fixed += ms("cbam", 64, 64, 2, 2) + ms("head", 64, 10, 2, 2)
    assert costs.fixed_ms == pytest.approx(fixed)


@pytest.mark.parametrize("name", ["DARTS_V2", "PDARTS", "ALL_OPS"])
def test_prediction_is_the_edge_costs_with_one_relu_per_state(name):
    genotype = ALL_OPS if name == "ALL_OPS" else resolve_genotype(name)
    table = _table()
    plan = table.plan
    prediction = table.predict(genotype)
    shared = 0.0
    for cell in plan.cells:
        run, held = plan.relus(cell, genotype.reduce if cell.reduction else genotype.normal)
        shared += sum(table.ms(r) for r in run) - sum(table.ms(r) for r in held)
    assert shared != 0.0
    assert prediction.total_ms == pytest.approx(table.edge_costs().genotype_ms(genotype) + shared)
    assert list(prediction.parts) == ["stem", "stage1", "reduction1", "stage2", "reduction2", "stage3", "cbam", "head"]
    assert sum(prediction.parts.values()) == pytest.approx(prediction.total_ms)


def test_relus_one_per_state_folded_into_a_preprocessing_convolution_read_only_through_relus():
    plan = plan_network(SPEC)
    normal, after_reduction, reduction = plan.cells[0], plan.cells[2], plan.cells[1]
    assert normal.preprocess[0].op == "factorized_reduce" and after_reduction.preprocess[0].op == "factorized_reduce"
    darts_v2 = resolve_genotype("DARTS_V2")  # s0: sep, sep, skip, skip; s1: sep x3; node 2: dil
    run, held = plan.relus(plan.cells[4], darts_v2.normal)
    assert run == [plan.cells[4].relu(0), plan.cells[4].relu(2)]  # s1 folds into its ReLUConvBN
    assert len(held) == 6 and all(r.op == "relu" for r in held)  # each stride-1 sep/dil entry holds one
    # read only through ReLUs: folded after a ReLUConvBN, not after a FactorizedReduce (its output is a concat)
    only_relus = [("sep_conv_3x3", 0), ("sep_conv_3x3", 1)] * 4
    assert plan.relus(after_reduction, only_relus)[0] == [after_reduction.relu(0)]
    # reduction cell: stride-2 edges hold no ReLU (their copies share one), a FactorizedReduce starts with one
    edges = [("skip_connect", 0), ("max_pool_3x3", 0), ("sep_conv_3x3", 1), ("dil_conv_3x3", 2)] * 2
    run, held = plan.relus(reduction, edges)
    assert run == [reduction.relu(0), reduction.relu(2)] and held == [reduction.relu(2)] * 2
    assert reduction.relu(0).height == 8 and reduction.relu(2).height == 4  # nodes at the reduced size


def test_relu_rule_counts_the_relus_onnx_runtime_leaves_standalone(tmp_path):
    """Between two genotypes of one network, the difference in standalone ReLUs ONNX Runtime runs is the
    difference the plan predicts (every other ReLU is the same in both)."""
    import onnx
    import onnxruntime as ort

    from aestheticnet.export.onnx.build import export_onnx

    counted, predicted = {}, {}
    for name in ("DARTS_V2", "PDARTS", "ALL_OPS"):
        genotype = ALL_OPS if name == "ALL_OPS" else resolve_genotype(name)
        model = create_model("aestheticnet_star", layers=5, init_channels=16, genotype=genotype).eval()
        path = tmp_path / f"{name}.onnx"
        export_onnx(model, path, example_size=(64, 64))
        so = ort.SessionOptions()
        so.optimized_model_filepath = str(tmp_path / f"{name}.opt.onnx")
        ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
        counted[name] = [n.op_type for n in onnx.load(so.optimized_model_filepath).graph.node].count("Relu")
        plan = plan_network(NetworkSpec.of("aestheticnet_star", model.config, (64, 64)))
        predicted[name] = sum(
            len(plan.relus(c, genotype.reduce if c.reduction else genotype.normal)[0]) for c in plan.cells
        )
    for name in ("PDARTS", "ALL_OPS"):
        assert counted[name] - counted["DARTS_V2"] == predicted[name] - predicted["DARTS_V2"] != 0


def _op_shape(module, name: str, x: torch.Tensor, y: torch.Tensor) -> OpShape | None:
    if isinstance(module, Identity):
        return None
    if isinstance(module, (SepConv, DilConv)):
        stride, dilation = module.op[1].stride[0], module.op[1].dilation[0]
    elif isinstance(module, FactorizedReduce):
        stride, dilation = 2, 1
    else:
        stride, dilation = module.stride if isinstance(module.stride, int) else module.stride[0], 1
    return OpShape(name, x.shape[1], y.shape[1], x.shape[2], x.shape[3], stride, dilation)


@pytest.mark.parametrize("name", ["DARTS_V1", "PDARTS", "ALL_OPS"])
def test_plan_matches_the_network_it_describes(name):
    genotype = ALL_OPS if name == "ALL_OPS" else resolve_genotype(name)
    model = create_model("aestheticnet_star", layers=5, init_channels=4, genotype=genotype).eval()
    plan = plan_network(NetworkSpec.of("aestheticnet_star", model.config, (64, 64)))
    seen: list[tuple[int, str, int, OpShape | None]] = []
    pre: dict[tuple[int, int], OpShape] = {}

    def record_op(i, op, source):
        return lambda m, a, y: seen.append((i, op, source, _op_shape(m, op, a[0], y)))

    def record_preprocess(i, k, kind):
        stride = 2 if kind == "factorized_reduce" else 1
        return lambda m, a, y: pre.__setitem__(
            (i, k), OpShape(kind, a[0].shape[1], y.shape[1], a[0].shape[2], a[0].shape[3], stride)
        )

    handles = []
    for i, cell in enumerate(model.cells):
        edges = genotype.reduce if cell.reduction else genotype.normal
        for module, (op, source) in zip(cell.ops, edges):
            handles.append(module.register_forward_hook(record_op(i, op, source)))
        for k, module in enumerate((cell.preprocess0, cell.preprocess1)):
            kind = "factorized_reduce" if isinstance(module, FactorizedReduce) else "relu_conv_bn"
            handles.append(module.register_forward_hook(record_preprocess(i, k, kind)))
    with torch.no_grad():
        features = model.forward_features(torch.rand(1, 3, 64, 64))
    for h in handles:
        h.remove()
    assert len(seen) == 5 * 8
    entries = set(plan.entries())
    for i, op, source, shape in seen:
        assert plan.cells[i].edge_op(op, source) == shape, (i, op, source)
        assert shape is None or shape in entries
    assert all(pre[(i, k)] == plan.cells[i].preprocess[k] for i in range(5) for k in range(2))
    assert plan.head.c_in == features.shape[1] and (plan.head.height, plan.head.width) == tuple(features.shape[2:])
    assert plan.cells[-1].concat.c_out == features.shape[1]


def test_info_predicts_from_a_table_and_refuses_another_network(tmp_path):
    ckpt = save(create_model("aestheticnet_star", layers=5, init_channels=4), tmp_path / "m.safetensors")
    path = _table().save(tmp_path / "t.json")
    runner = CliRunner()
    r = runner.invoke(main, ["info", str(ckpt), "--size", "64x64", "--latency-table", str(path), "--json"])
    assert r.exit_code == 0, r.output
    latency = json.loads(r.output)["latency"]
    assert latency["predicted_ms"] == pytest.approx(_table().predict(resolve_genotype("PDARTS")).total_ms)
    assert "onnxruntime 1.0, 1 thread" in latency["target"]
    r = runner.invoke(main, ["info", str(ckpt), "--size", "64x64", "--latency-table", str(path)])
    assert r.exit_code == 0 and "predicted latency:" in r.output and "reduction2" in r.output
    r = runner.invoke(main, ["info", str(ckpt), "--size", "96x96", "--latency-table", str(path)])
    assert r.exit_code == 2 and "height: 96, not 64" in r.output and "5 cells, C=4" in r.output
    other = save(create_model("aestheticnet_star", layers=6, init_channels=4), tmp_path / "o.safetensors")
    r = runner.invoke(main, ["info", str(other), "--size", "64x64", "--latency-table", str(path)])
    assert r.exit_code == 2 and "layers: 6, not 5" in r.output


def test_every_op_and_part_has_a_plan_entry_and_nothing_else():
    entries = plan_network(SPEC).entries()
    ops = {s.op for s in entries}
    assert ops == (set(PRIMITIVES) - {"none"}) | {
        "stem",
        "relu_conv_bn",
        "factorized_reduce",
        "concat",
        "cbam",
        "head",
        "relu",
    }
    assert len(entries) == len({s.key for s in entries})
    with pytest.raises(LatencyError, match="unknown operation"):
        OpShape("conv_7x1_1x7", 4, 4, 8, 8)


def test_the_search_reads_a_bench_ops_table_as_its_edge_costs(tmp_path):
    from aestheticnet.nas.latency_source import load_edge_costs

    table = _table()
    path = table.save(tmp_path / "table.json")
    assert load_edge_costs(path) == table.edge_costs()


def test_a_table_without_relu_entries_is_refused_with_what_to_do():
    table = _table()
    old = LatencyTable(
        table.runtime,
        table.threads,
        table.network,
        {k: v for k, v in table.entries.items() if not k.startswith("relu ")},
    )
    with pytest.raises(LatencyError, match=r"no entry for relu c4->4 .*`aestheticnet bench ops`"):
        old.predict(resolve_genotype("PDARTS"))
