"""`aestheticnet bench --device ssh://...` against a real OpenSSH server.

`.ci/run` starts one on 127.0.0.1 with generated keys and exports
  AESTHETICNET_TEST_SSH=ssh://user@127.0.0.1:PORT
  AESTHETICNET_TEST_SSH_OPTS='-i KEY -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null ...'
  AESTHETICNET_TEST_SSH_PYTHON=/path/to/.venv/bin/python   (a python with numpy and onnxruntime on the device)
Without AESTHETICNET_TEST_SSH these tests skip.
"""

import json
import os
import shlex
import subprocess
import sys

import pytest
from click.testing import CliRunner

URL = os.environ.get("AESTHETICNET_TEST_SSH")
OPTS = os.environ.get("AESTHETICNET_TEST_SSH_OPTS", "")
PYTHON = os.environ.get("AESTHETICNET_TEST_SSH_PYTHON") or sys.executable

pytestmark = pytest.mark.skipif(not URL, reason="AESTHETICNET_TEST_SSH is not set (.ci/run starts a test sshd)")

from aestheticnet.bench.devices import BenchError  # noqa: E402
from aestheticnet.bench.fixtures import tiny_onnx  # noqa: E402
from aestheticnet.bench.harness import ROW_FIELDS, BenchSettings, run_benchmark  # noqa: E402
from aestheticnet.bench.ssh import SshDevice, parse_ssh_url  # noqa: E402
from aestheticnet.cli import main  # noqa: E402
from aestheticnet.sizes import Shape  # noqa: E402


def device(python=PYTHON):
    return SshDevice(parse_ssh_url(URL), ssh_options=[OPTS] if OPTS else [], remote_python=python)


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return tiny_onnx(tmp_path_factory.mktemp("ssh") / "tiny model.onnx")


def assert_gone(dev, remote_dirs):
    assert remote_dirs, "the report names the remote folders it used"
    for d in remote_dirs:
        assert "aestheticnet-bench." in d
        assert not dev.check_remote_path_exists(d), f"{d} was left on the device"


def test_bench_over_ssh_cli(tmp_path, model):
    out = tmp_path / "r.json"
    args = [
        "bench",
        str(model),
        "--device",
        URL,
        "--remote-python",
        PYTHON,
        "--threads",
        "1,2",
        "--shapes",
        "32x32,64x96",
        "--runs",
        "5",
        "--warmup",
        "1",
        "--json",
        str(out),
        "--md",
        str(tmp_path / "r.md"),
        "--quiet",
    ]
    if OPTS:
        args += ["--ssh-option", OPTS]
    r = CliRunner().invoke(main, args, catch_exceptions=False)
    assert r.exit_code == 0, r.output
    report = json.loads(out.read_text())
    assert report["device"] == parse_ssh_url(URL).url()
    assert report["device_info"]["cpu_model"] and "onnxruntime" in report["device_info"]["libraries"]
    rows = report["results"]
    assert [(x["threads"], x["shape"]) for x in rows] == [(1, "32x32"), (1, "64x96"), (2, "32x32"), (2, "64x96")]
    for row in rows:
        assert set(ROW_FIELDS) <= set(row)
        assert row["ok"] and row["runs"] == 5 and row["backend"] == "onnxruntime", row
        assert row["min_ms"] <= row["p50_ms"] <= row["p99_ms"] <= row["max_ms"]
        assert row["peak_rss_delta_bytes"] is not None and row["file_size_bytes"] == model.stat().st_size
    assert_gone(device(), report["remote_dirs"])
    assert "| tiny model.onnx |" in (tmp_path / "r.md").read_text()


def test_pte_over_ssh(tmp_path):
    # The device's Python runs ExecuTorch's runtime (AESTHETICNET_TEST_SSH_PYTHON must have executorch).
    pytest.importorskip("executorch")
    from aestheticnet.bench.fixtures import tiny_pte

    program = tiny_pte(tmp_path / "tiny net.pte")
    dev = device()
    report = run_benchmark([program], BenchSettings(threads=(1, 2), shapes=(Shape(64, 96),), runs=3, warmup=1), dev)
    assert not report["errors"], report["errors"]
    assert "executorch" in report["device_info"]["libraries"]
    for row in report["results"]:
        assert row["ok"] and row["backend"] == "executorch" and row["runs"] == 3, row
        assert row["file_size_bytes"] == program.stat().st_size
    assert_gone(dev, report["remote_dirs"])


def test_min_seconds_over_ssh(model):
    dev = device()
    report = run_benchmark([model], BenchSettings(shapes=(Shape(32, 32),), min_seconds=1, warmup=0), dev)
    (row,) = report["results"]
    assert row["ok"] and row["mode"] == "min_seconds" and row["timed_wall_s"] >= 1.0
    assert_gone(dev, report["remote_dirs"])


def test_unloadable_model_over_ssh(tmp_path):
    bad = tmp_path / "broken.onnx"
    bad.write_bytes(b"not a model")
    dev = device()
    report = run_benchmark([bad], BenchSettings(threads=(1, 2), shapes=(Shape(32, 32),), runs=1), dev)
    first, second = report["results"]
    assert first["error_kind"] == "load_failed" and "cannot load broken.onnx" in first["error"]
    assert second.get("skipped") and not second["ok"]
    assert_gone(dev, report["remote_dirs"])


def test_missing_python_over_ssh(model):
    dev = device(python="/nonexistent/python3")
    with pytest.raises(BenchError, match="'/nonexistent/python3' was not found on the device"):
        run_benchmark([model], BenchSettings(shapes=(Shape(32, 32),), runs=1), dev)
    assert not dev.last_remote_dirs  # it stops before making a folder


def test_missing_runtime_over_ssh(model):
    # A python without site-packages on the device, like a board where numpy/onnxruntime are not installed.
    dev = device()
    made = subprocess.run(dev.ssh_command("mktemp -d"), capture_output=True, text=True, timeout=60)
    folder = made.stdout.strip()
    assert made.returncode == 0 and folder, made.stderr
    try:
        wrapper = f"{folder}/bare python"
        script = f'#!/bin/sh\nexec {shlex.quote(PYTHON)} -S "$@"\n'
        cmd = f"printf %s {shlex.quote(script)} > {shlex.quote(wrapper)} && chmod +x {shlex.quote(wrapper)}"
        subprocess.run(dev.ssh_command(cmd), check=True, capture_output=True, timeout=60)
        report = run_benchmark([model], BenchSettings(shapes=(Shape(32, 32),), runs=1), device(python=wrapper))
        (row,) = report["results"]
        assert not row["ok"] and row["error_kind"] == "missing_runtime" and "is not installed" in row["error"]
        assert_gone(dev, report["remote_dirs"])
    finally:
        subprocess.run(dev.ssh_command("rm -rf " + shlex.quote(folder)), capture_output=True, timeout=60)


def test_timeout_over_ssh_is_clear_and_cleans_up(model):
    dev = device()
    report = run_benchmark([model], BenchSettings(shapes=(Shape(32, 32),), min_seconds=120, timeout_s=1), dev)
    (row,) = report["results"]
    assert not row["ok"] and row["error_kind"] == "timeout" and "timed out" in row["error"]
    assert_gone(dev, report["remote_dirs"])


def test_wrong_port_is_unreachable(model):
    target = parse_ssh_url(URL)
    wrong = SshDevice(
        parse_ssh_url(f"ssh://{target.user + '@' if target.user else ''}{target.host}:1"),
        ssh_options=[OPTS] if OPTS else [],
        remote_python=PYTHON,
    )
    with pytest.raises(BenchError, match="cannot reach"):
        run_benchmark([model], BenchSettings(shapes=(Shape(32, 32),), runs=1), wrong)
