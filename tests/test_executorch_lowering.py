"""The ExecuTorch lowering: which XNNPACK passes a graph lets it leave out, and that the faster lowering gives the
same program outputs as ExecuTorch's recommended workflow with every pass."""

import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F

pytest.importorskip("executorch")


def _edge_graph(module: torch.nn.Module, x: torch.Tensor):
    from executorch.exir import EdgeCompileConfig, to_edge

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        program = torch.export.export(module.eval(), (x,))
        return to_edge(program, compile_config=EdgeCompileConfig(_check_ir_validity=False)).exported_program().graph


def test_every_named_pass_is_in_xnnpacks_default_list():
    # A renamed or removed pass would otherwise be "skipped" silently while its replacement always runs.
    from executorch.backends.xnnpack._passes import XNNPACKPassManager

    from aestheticnet.export.executorch.lowering import PASS_TRIGGERS

    default = {p.__name__ for p in XNNPACKPassManager(None).passes}
    assert set(PASS_TRIGGERS) <= default, set(PASS_TRIGGERS) - default


def test_passes_to_skip_keeps_the_passes_a_graph_needs():
    from aestheticnet.export.executorch.lowering import PASS_TRIGGERS, passes_to_skip

    conv_relu = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU())
    assert passes_to_skip(_edge_graph(conv_relu, torch.rand(1, 3, 8, 8))) == frozenset(PASS_TRIGGERS)

    conv_bn = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4))
    skipped = passes_to_skip(_edge_graph(conv_bn, torch.rand(1, 3, 8, 8)))
    assert "FuseBatchNormPass" not in skipped and "DecomposeBatchNorm" not in skipped
    assert "ConvertToSDPAPass" in skipped

    conv1d = torch.nn.Conv1d(3, 4, 3)
    assert "Conv1dUnsqueezePass" not in passes_to_skip(_edge_graph(conv1d, torch.rand(1, 3, 8)))

    class Upsample(torch.nn.Module):
        def forward(self, x):
            return torch.nn.functional.interpolate(x, scale_factor=2, mode="bilinear"), torch.bmm(x[0], x[0])

    skipped = passes_to_skip(_edge_graph(Upsample(), torch.rand(1, 4, 4, 4)))
    assert "ConvertToSDPAPass" not in skipped and "ConvertToUpsampleBilinear2d" not in skipped


def test_pass_list_is_restored_after_lowering_even_on_error():
    from executorch.backends.xnnpack._passes import XNNPACKPassManager

    from aestheticnet.export.executorch.lowering import _xnnpack_default_passes_without

    full = [p.__name__ for p in XNNPACKPassManager(None).passes]
    with pytest.raises(RuntimeError), _xnnpack_default_passes_without(frozenset({"ConvertToSDPAPass"})):
        assert "ConvertToSDPAPass" not in [p.__name__ for p in XNNPACKPassManager(None).passes]
        assert [p.__name__ for p in XNNPACKPassManager(None, passes=[object]).passes] == ["object"]
        raise RuntimeError("stop")
    assert [p.__name__ for p in XNNPACKPassManager(None).passes] == full


def _outside_xnnpack(buffer: bytes) -> tuple[list[str], int]:
    from executorch.exir._serialize._program import deserialize_pte_binary

    plan = deserialize_pte_binary(buffer).program.execution_plan[0]
    return sorted(o.name for o in plan.operators), len(plan.delegates)


class _OpsOfTheNetworks(torch.nn.Module):
    """A few nodes of every op kind AestheticNet* lowers (separable convs, concat, sum, both poolings, the
    padding-aware average, CBAM's reductions, the classifier), so both lowerings take seconds."""

    def __init__(self):
        super().__init__()
        self.stem = torch.nn.Conv2d(3, 8, 3, stride=2, padding=1)
        self.dw, self.pw = torch.nn.Conv2d(8, 8, 3, padding=1, groups=8), torch.nn.Conv2d(8, 8, 1)
        self.gate = torch.nn.Conv2d(2, 1, 7, padding=3)
        self.head = torch.nn.Linear(16, 10)

    def forward(self, x):
        x = self.stem(x).relu()
        y = self.pw(self.dw(x)).relu()
        ones = torch.ones_like(x[:1, :1])
        z = F.avg_pool2d(x, 3, 2, 1) / F.avg_pool2d(ones, 3, 2, 1) + F.max_pool2d(y, 3, 2, 1)
        z = torch.cat([z, x[:, :, ::2, ::2] + z], dim=1)
        pooled = torch.cat([z.mean(dim=1, keepdim=True), z.amax(dim=1, keepdim=True)], dim=1)
        z = z * self.gate(pooled).sigmoid()
        return self.head(z.mean(dim=(2, 3))).softmax(dim=1)


@pytest.mark.slow
@pytest.mark.parametrize("precision", ["fp32", "int8"])
def test_fast_lowering_computes_what_the_recommended_workflow_computes(precision):
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
    from executorch.exir import to_edge_transform_and_lower
    from executorch.runtime import Runtime

    from aestheticnet.export.dynamic import DynamicSpec
    from aestheticnet.export.executorch.convert import _quantize, export_program
    from aestheticnet.export.executorch.lowering import lower_to_executorch
    from aestheticnet.export.int8.recipe import DEFAULT_RECIPE

    torch.manual_seed(0)
    model = _OpsOfTheNetworks().eval()
    spec = DynamicSpec(max_batch=8, max_side=256)
    program = export_program(model, spec, (96, 96))
    if precision == "int8":
        g = torch.Generator().manual_seed(1)
        images = [(torch.rand(3, 64, 96, generator=g) * 2 - 1).numpy() for _ in range(4)]
        program = _quantize(model, program, images, DEFAULT_RECIPE, spec, (96, 96))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        recommended = to_edge_transform_and_lower(program, partitioner=[XnnpackPartitioner()]).to_executorch().buffer
    fast = lower_to_executorch(program)
    # the same ops outside XNNPACK (ExecuTorch's portable kernels are far slower) and the same number of delegates
    assert _outside_xnnpack(fast) == _outside_xnnpack(recommended)
    g = torch.Generator().manual_seed(2)
    inputs = [torch.rand(b, 3, h, w, generator=g) * 2 - 1 for b, h, w in ((1, 64, 64), (3, 96, 160))]
    outputs = []
    for buffer in (recommended, fast):
        method = Runtime.get().load_program(buffer).load_method("forward")
        outputs.append([method.execute([x])[0].numpy().copy() for x in inputs])
    for a, b in zip(*outputs):
        np.testing.assert_array_equal(a, b)
    with torch.no_grad():
        assert np.abs(outputs[1][1] - model(inputs[1]).numpy()).max() < (1e-5 if precision == "fp32" else 0.5)
