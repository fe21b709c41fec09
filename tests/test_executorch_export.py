"""ExecuTorch export: .pte with the XNNPACK delegate, fp32 and int8, dynamic batch and bounded H/W, manifests
(sidecar and embedded as a constant method), parity through verify, the runtime backend and the bench runner."""

import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from aestheticnet.artifacts import Format, Precision
from aestheticnet.artifacts.embedded import read_embedded
from aestheticnet.artifacts.manifest import sidecar_path
from aestheticnet.sizes import Shape

pytest.importorskip("executorch")
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def exported(tmp_path_factory, tiny_synth):
    from aestheticnet.export import ExportOptions, export_checkpoint
    from aestheticnet.models import create_model, save

    torch.manual_seed(0)
    root = tmp_path_factory.mktemp("executorch")
    # MSCN input, as the demo trains: its window means must run in XNNPACK too
    model = create_model("aestheticnet_star", layers=3, init_channels=4, input_norm="mscn")
    ckpt = save(model, root / "tiny.safetensors")
    # bounds wider than the preprocessing's (batch 1, sides up to 640), so that batches and long sides are tested
    report = export_checkpoint(
        ckpt,
        [Format.EXECUTORCH],
        [Precision.FP32, Precision.INT8],
        root / "out",
        ExportOptions(data=tiny_synth, calibration_samples=8, max_batch=8, max_side=1024),
        log=None,
    )
    paths = {p: root / "out" / f"tiny.{p}.pte" for p in ("fp32", "int8")}
    return ckpt, paths, report


def test_manifest_sidecar_and_embedded_with_bounds(exported):
    _, paths, _ = exported
    for precision, path in paths.items():
        assert path.is_file(), path
        side = json.loads(sidecar_path(path).read_text())
        embedded = read_embedded(path)
        assert embedded is not None and embedded["input"] == side["input"] and embedded["model"] == side["model"]
        assert side["artifact"]["format"] == "executorch" and side["artifact"]["precision"] == precision
        assert side["input"]["dynamic"] == {"batch": [1, 8], "height": [32, 1024], "width": [32, 1024]}
        assert side["input"]["layout"] == "NCHW" and side["input"]["multiple"] == 32
        assert "max_batch 8, max_side 1024" in side["export"]["bounds_note"]
        assert side["export"]["planned_memory_bytes"] > 8 * 3 * 1024 * 1024 * 4  # at least the largest input
    int8 = json.loads(sidecar_path(paths["int8"]).read_text())
    assert "XNNPACKQuantizer" in int8["export"]["conversion"] and int8["export"]["calibration"]["samples"] >= 1


def test_fp32_parity_at_several_shapes(exported):
    from aestheticnet.export.verify import VerifyOptions, verify_artifact

    ckpt, paths, _ = exported
    shapes = [Shape(64, 64), Shape(96, 160), Shape(224, 224, batch=3), Shape(32, 1024)]
    report = verify_artifact(paths["fp32"], ckpt, VerifyOptions(shapes=shapes))
    assert report.passed, report.mismatches
    assert [s["shape"] for s in report.shapes] and max(s["max_abs"] for s in report.shapes) <= 1e-5


def test_only_cbams_reductions_run_outside_xnnpack(exported):
    # Average and max pools in ExecuTorch's portable kernels made a 5-cell network's program 6x slower at 224x224.
    # The input normaliser's reshapes leave shape arithmetic and views (no copies) outside.
    from executorch.exir._serialize._program import deserialize_pte_binary

    _, paths, _ = exported
    shape_ops = {"aten::sym_size", "executorch_prim::mul", "executorch_prim::et_view"}
    for path in paths.values():
        plan = deserialize_pte_binary(path.read_bytes()).program.execution_plan[0]
        assert {o.name for o in plan.operators} <= {"aten::amax", "aten::mean"} | shape_ops, (path.name, plan.operators)


def test_xnnpack_pools_swaps_the_quotient_form_for_the_same_average():
    from aestheticnet.export.executorch.convert import xnnpack_pools
    from aestheticnet.models import create_model
    from aestheticnet.nas.operations import AvgPool3x3

    torch.manual_seed(0)
    model = create_model("aestheticnet_star", layers=3, init_channels=4, input_norm="mscn").eval()
    swapped = xnnpack_pools(model)
    assert any(isinstance(m, AvgPool3x3) for m in model.modules())  # the original is left as it was
    assert model.input_norm.form == "quotient" and swapped.input_norm.form == "wide"
    assert not any(isinstance(m, AvgPool3x3) for m in swapped.modules())
    pools = [m for m in swapped.modules() if isinstance(m, torch.nn.AvgPool2d)]
    assert pools and all(not p.count_include_pad and p.padding == 1 for p in pools)
    x = torch.rand(2, 3, 96, 160)
    with torch.no_grad():
        assert (swapped(x) - model(x)).abs().max() < 1e-6
    plain = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3))
    assert xnnpack_pools(plain) is plain


def test_int8_runs_and_verifies(exported, tiny_synth):
    from aestheticnet.export.verify import VerifyOptions, verify_artifact

    ckpt, paths, _ = exported
    report = verify_artifact(
        paths["int8"], ckpt, VerifyOptions(shapes=[Shape(96, 128), Shape(64, 64, batch=2)], data=tiny_synth, samples=12)
    )
    assert report.precision == "int8" and report.real is not None
    assert report.passed, report.mismatches


def test_int8_quantises_every_convolution_of_the_cells_and_keeps_the_float_parts_float():
    # The program runs XNNPACK's int8 kernels only where a convolution's input and weights come dequantised.
    from aestheticnet.export.dynamic import DynamicSpec, planned_spec
    from aestheticnet.export.executorch.convert import _quantize, export_program
    from aestheticnet.export.int8.recipe import DEFAULT_RECIPE
    from aestheticnet.export.prepare import prepare_for_export
    from aestheticnet.models import create_model

    torch.manual_seed(0)
    model = create_model("aestheticnet_star", layers=3, init_channels=4, input_norm="mscn").eval()
    prepared, _ = prepare_for_export(model)
    spec = planned_spec(DynamicSpec(), 128)
    images = [np.random.default_rng(i).standard_normal((3, 64, 96)).astype(np.float32) for i in range(4)]
    program = _quantize(prepared, export_program(prepared, spec), images, DEFAULT_RECIPE, spec)
    quantised, floats = [], []
    for node in program.graph.nodes:
        if node.op != "call_function" or "conv" not in str(node.target):
            continue
        paths = [path for path, _ in node.meta.get("nn_module_stack", {}).values()]
        weight = node.args[1]
        dequantised = "dequantize" in str(getattr(weight, "target", ""))
        (floats if any(p.startswith("attention") for p in paths) else quantised).append(dequantised)
    assert quantised and all(quantised)  # stem and cells
    assert floats and not any(floats)  # CBAM's convolutions stay float, as the recipe says


def test_backend_refuses_bad_inputs_and_files(exported, tmp_path):
    from aestheticnet.runtime import InputError, ModelFileError, load

    _, paths, _ = exported
    backend = load(paths["fp32"])
    assert backend.name == "executorch"
    assert backend.run(np.zeros((2, 3, 64, 96), np.float32)).shape == (2, 10)
    with pytest.raises(InputError, match=r"batch 9 is outside the program's bounds \[1, 8\]"):
        backend.run(np.zeros((9, 3, 64, 64), np.float32))
    with pytest.raises(InputError, match="multiples of 32"):
        backend.run(np.zeros((1, 3, 70, 64), np.float32))
    truncated = tmp_path / "cut.pte"
    truncated.write_bytes(paths["fp32"].read_bytes()[:4000])
    with pytest.raises(ModelFileError, match="cut.pte"):
        load(truncated)
    other = tmp_path / "other.pte"
    other.write_bytes(b"not a program at all")
    with pytest.raises(ModelFileError, match="not an ExecuTorch program"):
        load(other)


def test_backend_sizes_xnnpacks_thread_pool(exported, monkeypatch):
    from executorch.extension.pybindings import portable_lib

    from aestheticnet.runtime import load

    calls = []
    monkeypatch.setattr(portable_lib, "_unsafe_reset_threadpool", calls.append, raising=False)
    monkeypatch.setattr(portable_lib, "_threadpool_get_thread_count", lambda: 2, raising=False)
    _, paths, _ = exported
    load(paths["fp32"], threads=1)
    load(paths["fp32"])  # no threads: the pool is left as it is
    load(paths["fp32"], threads=2)  # already that size: not reset under the loaded programs
    assert calls == [1]


@pytest.mark.slow
def test_programs_load_and_run_in_fresh_processes_without_crashing(exported):
    # Two programs in one process, each opened with a thread count: resetting the pool after a program loaded
    # crashed most such processes.
    import subprocess
    import sys

    _, paths, _ = exported
    code = (
        "import sys, numpy as np; from aestheticnet.runtime import load; t = int(sys.argv[1]); "
        "x = np.zeros((1, 3, 64, 64), np.float32); "
        "[load(p, threads=t).run(x) for p in sys.argv[2:]]; print('ok')"
    )
    failures = []
    for run in range(20):
        threads = 1 + run % 2
        cmd = [sys.executable, "-c", code, str(threads), str(paths["fp32"]), str(paths["int8"])]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
        if proc.returncode != 0 or "ok" not in proc.stdout:
            failures.append((threads, proc.returncode, proc.stderr[-300:]))
    assert not failures, failures


def test_bad_export_requests_are_refused(tmp_path):
    from aestheticnet.export.errors import ExportError
    from aestheticnet.export.executorch.convert import convert_executorch
    from aestheticnet.export.plan import ExportOptions, make_plan
    from aestheticnet.models import create_model, save

    model = create_model("aestheticnet_star", layers=3, init_channels=4).eval()
    with pytest.raises(ExportError, match="ExecuTorch precision 'fp16' is not offered; expected one of fp32, int8"):
        convert_executorch(model, tmp_path / "m.pte", precision=Precision.FP16)
    ckpt = save(model, tmp_path / "m.safetensors")
    with pytest.raises(ExportError, match="int8 for ONNX/TFLite/ExecuTorch is calibrated on real images"):
        make_plan(ckpt, [Format.EXECUTORCH], [Precision.INT8], tmp_path, ExportOptions())
    assert not (tmp_path / "m.pte").exists()


def test_bench_runner_measures_a_pte(exported, tmp_path):
    from aestheticnet.bench.devices import runner_path

    _, paths, _ = exported
    proc = subprocess.run(
        [sys.executable, str(runner_path()), str(paths["fp32"]), "--threads", "1", "--shape", "2x64x96", "--runs", "3"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert proc.returncode == 0 and result["ok"], result
    assert result["backend"] == "executorch" and result["input_shape"] == [2, 3, 64, 96] and result["p50_ms"] > 0


def test_pipeline_config_takes_executorch():
    from aestheticnet.pipeline.config import BenchSection, ExportSection

    assert ExportSection(formats=["onnx", "executorch"]).formats == (Format.ONNX, Format.EXECUTORCH)
    assert BenchSection(formats=["executorch"]).formats == (Format.EXECUTORCH,)
