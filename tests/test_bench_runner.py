"""The self-contained runner: one JSON object on stdout, every metric, clear errors, nothing gated on timing."""

import json
import subprocess
import sys

import numpy as np
import pytest

from aestheticnet.bench import runner as runner_mod
from aestheticnet.bench.devices import runner_path
from aestheticnet.bench.fixtures import tiny_onnx

pytest.importorskip("onnxruntime")

METRICS = (
    "load_ms",
    "first_inference_ms",
    "warmup_mean_ms",
    "p50_ms",
    "p90_ms",
    "p99_ms",
    "mean_ms",
    "std_ms",
    "min_ms",
    "max_ms",
    "throughput_ips",
    "peak_rss_delta_bytes",
    "peak_rss_bytes",
    "file_size_bytes",
)


def run_runner(*args, python=sys.executable):
    proc = subprocess.run([python, str(runner_path()), *map(str, args)], capture_output=True, text=True, timeout=300)
    lines = [ln for ln in proc.stdout.splitlines() if ln.strip()]
    assert len(lines) == 1, f"expected one JSON line on stdout, got {proc.stdout!r} (stderr {proc.stderr[-500:]})"
    return proc.returncode, json.loads(lines[0])


@pytest.fixture(scope="module")
def onnx_model(tmp_path_factory):
    return tiny_onnx(tmp_path_factory.mktemp("runner") / "tiny.onnx")


def test_runner_module_imports_only_the_standard_library():
    # The file is copied to devices that have neither aestheticnet nor torch: nothing else at module level.
    source = runner_path().read_text()
    top_level = [ln for ln in source.splitlines() if ln.startswith(("import ", "from "))]
    allowed = {"__future__", "argparse", "json", "math", "os", "platform", "re", "sys", "time"}
    for line in top_level:
        module = line.split()[1].split(".")[0]
        assert module in allowed, line


def test_onnx_fixed_runs_reports_every_metric(onnx_model):
    rc, r = run_runner(onnx_model, "--runs", 5, "--warmup", 2, "--shape", "64x96", "--threads", 1, "--batch", 2)
    assert rc == 0 and r["ok"], r
    assert r["backend"] == "onnxruntime" and r["layout"] == "NCHW" and r["input_shape"] == [2, 3, 64, 96]
    assert r["runs"] == 5 and r["warmup_runs"] == 2 and r["mode"] == "runs" and r["batch"] == 2
    for key in METRICS:
        assert isinstance(r[key], (int, float)) and r[key] >= 0, key
    assert r["min_ms"] <= r["p50_ms"] <= r["p90_ms"] <= r["p99_ms"] <= r["max_ms"]
    assert r["min_ms"] <= r["mean_ms"] <= r["max_ms"]
    machine = r["machine"]
    for key in ("cpu_model", "logical_cores", "os", "python", "libraries"):
        assert machine[key], key
    assert machine["libraries"]["onnxruntime"] and machine["libraries"]["numpy"]


def test_min_seconds_mode(onnx_model):
    rc, r = run_runner(onnx_model, "--min-seconds", 0.3, "--warmup", 0, "--shape", "32x32")
    assert rc == 0 and r["ok"] and r["mode"] == "min_seconds"
    assert r["timed_wall_s"] >= 0.3 and r["runs"] >= 3 and r["total_timed_s"] <= r["timed_wall_s"]
    assert r["warmup_mean_ms"] is None and r["warmup_runs"] == 0


def test_bad_shape_is_a_clear_error(onnx_model):
    rc, r = run_runner(onnx_model, "--shape", "100x96")
    assert rc == 2 and not r["ok"] and r["error_kind"] == "bad_shape"
    assert "multiples of 32" in r["error"] and "100x96" in r["error"]


def test_unloadable_model_is_a_clear_error(tmp_path):
    bad = tmp_path / "broken.onnx"
    bad.write_bytes(b"this is not an onnx model")
    rc, r = run_runner(bad, "--runs", 1)
    assert rc == 4 and not r["ok"] and r["error_kind"] == "load_failed"
    assert "broken.onnx" in r["error"] and "onnxruntime" in r["error"]
    bad_tfl = tmp_path / "broken.tflite"
    bad_tfl.write_bytes(b"nope")
    rc, r = run_runner(bad_tfl, "--runs", 1)
    if r["error_kind"] == "missing_runtime":
        pytest.skip("no TFLite runtime here")
    assert rc == 4 and r["error_kind"] == "load_failed" and "broken.tflite" in r["error"]


def test_unknown_file_type_and_missing_file(tmp_path):
    odd = tmp_path / "model.bin"
    odd.write_bytes(b"x")
    rc, r = run_runner(odd)
    assert rc == 4 and r["error_kind"] == "unsupported_model" and ".onnx" in r["error"]
    rc, r = run_runner(tmp_path / "absent.onnx")
    assert rc == 2 and "no such model file" in r["error"]


def test_missing_runtime_is_a_clear_error(onnx_model, monkeypatch):
    # A python whose onnxruntime import fails, like a board without it: hide the module with a meta-path blocker.
    code = (
        "import sys, runpy\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] == 'onnxruntime':\n"
        "            raise ImportError('No module named onnxruntime')\n"
        "sys.meta_path.insert(0, Block())\n"
        f"sys.argv = ['runner.py', {str(onnx_model)!r}, '--runs', '1']\n"
        f"runpy.run_path({str(runner_path())!r}, run_name='__main__')\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    r = json.loads(proc.stdout.strip().splitlines()[-1])
    assert proc.returncode == 3 and r["error_kind"] == "missing_runtime"
    assert "onnxruntime is not installed" in r["error"] and "pip install onnxruntime" in r["error"]


def test_conflicting_arguments(onnx_model):
    rc, r = run_runner(onnx_model, "--runs", 3, "--min-seconds", 1)
    assert rc == 2 and "not both" in r["error"]


def test_statistics_match_numpy():
    rng = np.random.default_rng(0)
    values = list(rng.gamma(2.0, 3.0, size=101))
    s = runner_mod.summarize(values, batch=4)
    for q in (50, 90, 99):
        assert s[f"p{q}_ms"] == pytest.approx(np.percentile(values, q))
    assert s["std_ms"] == pytest.approx(np.std(values, ddof=1))
    assert s["throughput_ips"] == pytest.approx(4 * 101 / (sum(values) / 1000))
    one = runner_mod.summarize([2.0], batch=1)
    assert one["p50_ms"] == one["p99_ms"] == 2.0 and one["std_ms"] == 0.0


def test_safetensors_runs_with_pytorch(tmp_path):
    torch = pytest.importorskip("torch")
    from aestheticnet.models import create_model, save

    torch.manual_seed(0)
    path = save(create_model("aestheticnet_star", layers=5, init_channels=8), tmp_path / "star.safetensors")
    rc, r = run_runner(path, "--runs", 2, "--warmup", 1, "--shape", "64x64")
    assert rc == 0 and r["ok"], r
    assert r["backend"] == "pytorch" and r["layout"] == "NCHW" and r["runs"] == 2


@pytest.fixture(scope="module")
def tflite_model(tmp_path_factory):
    pytest.importorskip("ai_edge_litert")
    pytest.importorskip("tensorflow")
    out = tmp_path_factory.mktemp("tfl") / "tiny.tflite"
    # tensorflow is heavy and noisy: convert in a child process
    code = f"from aestheticnet.bench.fixtures import tiny_tflite; tiny_tflite({str(out)!r})"
    proc = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=600,
        env={**__import__("os").environ, "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": ""},
    )
    if proc.returncode != 0 or not out.exists():
        pytest.skip(f"could not build a tiny .tflite: {proc.stderr[-300:]}")
    return out


@pytest.mark.slow
def test_tflite_nhwc_with_resize_and_threads(tflite_model):
    rc, r = run_runner(tflite_model, "--runs", 3, "--shape", "64x96", "--threads", 2, "--batch", 2)
    assert rc == 0 and r["ok"], r
    assert r["backend"] == "litert" and r["layout"] == "NHWC" and r["input_shape"] == [2, 64, 96, 3]
    assert r["xnnpack"] is True and r["threads"] == 2
    rc, r = run_runner(tflite_model, "--runs", 2, "--shape", "32x32", "--no-xnnpack")
    assert rc == 0 and r["ok"] and r["xnnpack"] is False


def _runtime_outputs(model, inputs):
    from aestheticnet.runtime import load

    backend = load(model, threads=1)
    return {key: backend.run(x) for key, x in inputs.items()}


@pytest.mark.parametrize("kind", ["onnx", pytest.param("tflite", marks=pytest.mark.slow)])
def test_inputs_mode_returns_each_inputs_outputs(kind, onnx_model, request, tmp_path):
    # Two sizes and batches: the TFLite interpreter is resized between them, and NCHW inputs become NHWC.
    model = onnx_model if kind == "onnx" else request.getfixturevalue("tflite_model")
    rng = np.random.default_rng(0)
    inputs = {
        "b": rng.standard_normal((2, 3, 64, 96), np.float32),
        "a": rng.standard_normal((1, 3, 32, 32), np.float32),
    }
    np.savez(tmp_path / "in.npz", **inputs)
    rc, r = run_runner(model, "--inputs", tmp_path / "in.npz")
    assert rc == 0 and r["ok"], r
    assert list(r["outputs"]) == ["a", "b"] and r["machine"]["machine"]
    for key, want in _runtime_outputs(model, inputs).items():
        np.testing.assert_allclose(np.asarray(r["outputs"][key], np.float32), want, rtol=0, atol=1e-6)


def test_inputs_mode_refuses_a_non_image_array(onnx_model, tmp_path):
    np.savez(tmp_path / "in.npz", x=np.zeros((3, 32, 32), np.float32))
    rc, r = run_runner(onnx_model, "--inputs", tmp_path / "in.npz")
    assert rc == 2 and r["error_kind"] == "bad_argument" and "not NCHW" in r["error"]
    rc, r = run_runner(onnx_model, "--inputs", tmp_path / "missing.npz")
    assert rc == 2 and "not a readable .npz" in r["error"]


def test_an_emulated_device_is_labelled_in_the_report(onnx_model, monkeypatch):
    from aestheticnet.bench.harness import BenchSettings, run_benchmark
    from aestheticnet.bench.report import markdown_report
    from aestheticnet.sizes import Shape

    monkeypatch.setenv("AESTHETICNET_EMULATED", "qemu-user 7.2 cpu=neoverse-n1")
    report = run_benchmark([onnx_model], BenchSettings(shapes=(Shape(32, 32),), runs=2, warmup=0))
    assert report["device_info"]["emulated"] == "qemu-user 7.2 cpu=neoverse-n1"
    assert "EMULATED (qemu-user 7.2 cpu=neoverse-n1): timings are the emulator's" in markdown_report(report)
    monkeypatch.delenv("AESTHETICNET_EMULATED")
    report = run_benchmark([onnx_model], BenchSettings(shapes=(Shape(32, 32),), runs=2, warmup=0))
    assert report["device_info"]["emulated"] is None and "EMULATED" not in markdown_report(report)
