"""`aestheticnet bench` locally: every field of the report, --runs and --min-seconds, reports, clear errors.

Nothing here depends on how fast the machine is: the tests check fields, counts and relations, never timings.
"""

import json
import os
import shutil
import stat
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

pytest.importorskip("onnxruntime")

from aestheticnet.bench.devices import BenchError  # noqa: E402
from aestheticnet.bench.fixtures import tiny_onnx  # noqa: E402
from aestheticnet.bench.harness import ROW_FIELDS, BenchSettings, parse_threads, run_benchmark  # noqa: E402
from aestheticnet.bench.ssh import SshDevice, parse_device, parse_ssh_url  # noqa: E402
from aestheticnet.cli import main  # noqa: E402
from aestheticnet.sizes import Shape  # noqa: E402

# Keys that are null for a successful row only when they do not apply.
MAY_BE_NULL = {
    "xnnpack",
    "facts_note",
    "error_kind",
    "error",
    "params",
    "params_source",
    "macs",
    "macs_source",
    "achieved_gmacs_per_s",
    "warmup_mean_ms",
    "load_average",
    "planned_memory_bytes",  # ExecuTorch programs' only
}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return tiny_onnx(tmp_path_factory.mktemp("bench") / "tiny.onnx")


@pytest.fixture(scope="module")
def star_files(tmp_path_factory):
    """A tiny AestheticNet* as .safetensors and as ONNX (exporter of the project) with a manifest sidecar."""
    import torch

    from aestheticnet.artifacts import Format, Precision
    from aestheticnet.artifacts.manifest import SourceInfo, build_manifest, write_sidecar
    from aestheticnet.export.dynamic import DynamicSpec
    from aestheticnet.export.onnx.build import export_onnx
    from aestheticnet.io import sha256_file
    from aestheticnet.models import create_model, read_metadata, save

    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("star")
    model = create_model("aestheticnet_star", layers=5, init_channels=8).eval()
    st = save(model, folder / "star.safetensors")
    onnx_path = export_onnx(model, folder / "star.onnx", example_size=(64, 64))
    meta = read_metadata(st)
    # like an export manifest: variant and config rebuild the network, so MACs are exact at every shape
    # the manifest the exporter writes: its model section rebuilds the network, so MACs are exact at every shape
    source = SourceInfo(st.name, sha256_file(st), meta.get("package_version"))
    bounds = DynamicSpec().bounds()
    write_sidecar(onnx_path, build_manifest(meta, source, Format.ONNX, Precision.FP32, {}, bounds))
    # a manifest that describes no network: params and MACs are unknown, never guessed
    no_model = folder / "nomodel.onnx"
    shutil.copy(onnx_path, no_model)
    write_sidecar(no_model, build_manifest({}, source, Format.ONNX, Precision.FP32, {}, bounds))
    return {"safetensors": st, "onnx": onnx_path, "numbers": no_model, "model": model}


def invoke(*args):
    return CliRunner().invoke(main, ["bench", *map(str, args)], catch_exceptions=False)


def check_ok_row(row):
    assert set(ROW_FIELDS) <= set(row), set(ROW_FIELDS) - set(row)
    assert row["ok"], row["error"]
    for key in ROW_FIELDS:
        if key not in MAY_BE_NULL:
            assert row[key] is not None, key
    assert row["min_ms"] <= row["p50_ms"] <= row["p90_ms"] <= row["p99_ms"] <= row["max_ms"]
    assert row["throughput_ips"] > 0 and row["file_size_bytes"] > 0


def test_runs_5_with_every_report(tmp_path, tiny):
    out = tmp_path / "out"
    r = invoke(
        tiny,
        "--runs",
        5,
        "--warmup",
        2,
        "--threads",
        "1,2",
        "--shapes",
        "64x64,32x96",
        "--quiet",
        "--json",
        out / "r.json",
        "--md",
        out / "r.md",
        "--plots",
        out / "plots",
    )
    assert r.exit_code == 0, r.output
    report = json.loads((out / "r.json").read_text())
    assert report["schema"] == "aestheticnet.bench/1" and report["device"] == "local"
    rows = report["results"]
    assert [(x["threads"], x["shape"]) for x in rows] == [(1, "64x64"), (1, "32x96"), (2, "64x64"), (2, "32x96")]
    for row in rows:
        check_ok_row(row)
        assert row["runs"] == 5 and row["warmup_runs"] == 2 and row["mode"] == "runs"
        assert row["params"] is None and "no manifest" in row["facts_note"]  # said, not guessed
    for info in (report["host"], report["device_info"]):
        assert info["cpu_model"] and info["logical_cores"] >= 1 and info["os"] and info["python"]
        assert "onnxruntime" in info["libraries"]
    md = (out / "r.md").read_text()
    assert "| p50 ms |" in md and md.count("| tiny.onnx |") == 4 and "no manifest" in md
    assert "p50 ms" in r.output  # the table is printed too
    pngs = sorted(p.name for p in (out / "plots").iterdir())
    assert pngs == ["latency_by_backend_threads.png", "size_vs_latency.png"]
    assert all((out / "plots" / p).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in pngs)


def test_min_seconds_1(tiny):
    r = invoke(tiny, "--min-seconds", 1, "--warmup", 1, "--shapes", "32x32", "--json", "-", "--quiet")
    assert r.exit_code == 0, r.output
    (row,) = json.loads(r.output)["results"]
    check_ok_row(row)
    assert row["mode"] == "min_seconds" and row["min_seconds"] == 1.0 and row["timed_wall_s"] >= 1.0


def test_tiny_aestheticnet_params_and_macs(star_files):
    """The local path on the real (tiny) network: ONNX with both manifest kinds, and PyTorch eager."""
    from aestheticnet.bench.profile import profile_model

    model = star_files["model"]
    report = run_benchmark(
        [star_files["onnx"], star_files["numbers"], star_files["safetensors"]],
        BenchSettings(shapes=(Shape(64, 96),), runs=2, warmup=1),
    )
    assert not report["errors"], report["errors"]
    by = {Path(r["path"]).name: r for r in report["results"]}
    exact = profile_model(model, (64, 96))
    for name in ("star.onnx", "star.safetensors"):
        row = by[name]
        check_ok_row(row)
        assert row["params"] == exact["params"] and row["macs"] == exact["macs"], name
        assert row["achieved_gmacs_per_s"] > 0 and row["shape"] == "64x96"
    row = by["nomodel.onnx"]
    assert row["params"] is None and row["macs"] is None and "params and MACs unknown" in row["facts_note"]
    assert by["star.safetensors"]["backend"] == "pytorch" and by["star.onnx"]["backend"] == "onnxruntime"


def test_unloadable_model_is_reported_and_exit_1(tmp_path, tiny):
    bad = tmp_path / "broken.onnx"
    bad.write_bytes(b"\x00garbage")
    r = invoke(
        tiny,
        bad,
        "--runs",
        1,
        "--warmup",
        0,
        "--threads",
        "1,2",
        "--shapes",
        "32x32",
        "--quiet",
        "--json",
        tmp_path / "r.json",
    )
    assert r.exit_code == 1
    assert "error: broken.onnx" in r.output and "cannot load broken.onnx" in r.output
    report = json.loads((tmp_path / "r.json").read_text())
    good, failed = report["results"][:2], report["results"][2:]
    assert all(x["ok"] for x in good) and not any(x["ok"] for x in failed)
    assert failed[0]["error_kind"] == "load_failed" and failed[1].get("skipped")  # the second is not re-tried


@pytest.mark.parametrize(
    "args, message",
    [
        (["--shapes", "100x96"], "multiples of 32"),
        (["--shapes", "224x"], "expected HxW"),
        (["--shapes", "224"], "expected HxW"),
        (["--shapes", "2x64x64,4x64x64"], "one batch"),
        (["--shapes", "2x64x64", "--batch", "3"], "one batch"),
        (["--threads", "0"], "counts >= 1"),
        (["--device", "ssh://"], "has no host"),
        (["--device", "ssh://user@:2222"], "has no host"),
        (["--device", "ssh://user@host:99999"], "port"),
        (["--device", "ftp://host"], "expected 'local' or ssh://"),
    ],
)
def test_bad_input_is_a_clear_error(tiny, args, message):
    r = invoke(tiny, "--runs", 1, *args)
    assert r.exit_code == 2 and message in r.output, r.output


def test_settings_take_the_batch_of_nxhxw_shapes():
    settings = BenchSettings(shapes=(Shape(64, 64, 2), Shape(32, 96)), runs=1)
    assert settings.batch == 2 and settings.sizes == ((64, 64), (32, 96))
    assert {job.batch for job in settings.jobs()} == {2}
    with pytest.raises(BenchError, match="Shape values"):
        BenchSettings(shapes=((64, 64),))


def test_bad_files_and_conflicting_options(tmp_path, tiny):
    r = invoke(tmp_path / "absent.onnx")
    assert r.exit_code == 2 and "no such model file" in r.output
    odd = tmp_path / "m.bin"
    odd.write_bytes(b"x")
    r = invoke(odd)
    assert r.exit_code == 2 and "unknown model type" in r.output
    (tmp_path / "m.mlpackage").mkdir()  # timed only by Core ML on a device, never by the evaluator
    r = invoke(tmp_path / "m.mlpackage")
    assert r.exit_code == 2 and "CoreML packages are not timed here" in r.output
    r = invoke(tiny, "--runs", 5, "--min-seconds", 1)
    assert r.exit_code == 2 and "not both" in r.output


def test_parsers():
    assert parse_threads("1,2,4") == (1, 2, 4) and parse_threads("2,2") == (2,)
    t = parse_ssh_url("ssh://pi@board.local:2222")
    assert (t.user, t.host, t.port, t.destination) == ("pi", "board.local", 2222, "pi@board.local")
    t = parse_ssh_url("ssh://myalias")
    assert (t.user, t.host, t.port, t.destination) == (None, "myalias", None, "myalias")
    t = parse_ssh_url("ssh://root@[::1]:22")
    assert t.destination == "root@::1" and t.port == 22
    for bad in ("ssh://", "ssh://@", "ssh://u@", "ssh://:22", "ssh://-oProxyCommand=x", "ssh://h/path", "ssh://a b"):
        with pytest.raises(BenchError):
            parse_ssh_url(bad)
    assert parse_device("local").remote is False


@pytest.mark.skipif(shutil.which("ssh") is None, reason="no OpenSSH client")
def test_unreachable_host_is_a_clear_error(tiny):
    r = invoke(tiny, "--device", "ssh://nobody@127.0.0.1:1", "--runs", 1, "--quiet")
    assert r.exit_code == 2 and "cannot reach ssh://nobody@127.0.0.1:1 over SSH" in r.output, r.output


@pytest.fixture
def fake_ssh(tmp_path):
    """An 'ssh' that runs the remote command with sh on this machine: the whole remote protocol without a server."""
    script = tmp_path / "fake-ssh"
    script.write_text(
        f"#!{sys.executable}\n"
        "import os, sys\n"
        "args = sys.argv[1:]\n"
        "i = args.index('--')\n"
        "os.execvp('sh', ['sh', '-c', args[i + 2]])\n"
    )
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return str(script)


def test_remote_protocol_quotes_arguments_and_cleans_up(tmp_path, tiny, fake_ssh):
    # A python path with a space and a quote, a model name with shell characters: all must arrive intact.
    odd_dir = tmp_path / "py dir 'q'"
    odd_dir.mkdir()
    python = odd_dir / "python"
    python.write_text(f'#!/bin/sh\nexec {sys.executable} "$@"\n')
    python.chmod(0o755)
    model = tmp_path / "m $(touch pwned) ;x.onnx"
    shutil.copy(tiny, model)
    device = SshDevice(parse_ssh_url("ssh://someone@device:2022"), remote_python=str(python), ssh_binary=fake_ssh)
    report = run_benchmark([model], BenchSettings(threads=(1, 2), shapes=(Shape(32, 32),), runs=2, warmup=0), device)
    assert not report["errors"], report["errors"]
    assert [r["threads"] for r in report["results"]] == [1, 2]
    assert report["device_info"]["python_executable"]  # the device's own machine info came back
    (remote_dir,) = report["remote_dirs"]
    assert "aestheticnet-bench." in remote_dir and not os.path.exists(remote_dir)  # nothing left behind
    assert not (Path.cwd() / "pwned").exists() and not (Path(remote_dir).parent / "pwned").exists()


def test_remote_errors_through_the_protocol(tmp_path, tiny, fake_ssh):
    device = SshDevice(parse_ssh_url("ssh://device"), remote_python=str(tmp_path / "no-python3"), ssh_binary=fake_ssh)
    with pytest.raises(BenchError, match="was not found on the device"):
        run_benchmark([tiny], BenchSettings(shapes=(Shape(32, 32),), runs=1), device)
    # a measurement that runs past its timeout: killed on the device, clear error, folder removed
    device = SshDevice(parse_ssh_url("ssh://device"), remote_python=sys.executable, ssh_binary=fake_ssh)
    if shutil.which("timeout") is None:
        pytest.skip("no timeout command")
    report = run_benchmark([tiny], BenchSettings(shapes=(Shape(32, 32),), min_seconds=60, timeout_s=1), device)
    (row,) = report["results"]
    assert not row["ok"] and row["error_kind"] == "timeout" and "timed out after 1 s" in row["error"]
    assert not os.path.exists(report["remote_dirs"][0])


@pytest.fixture(scope="module")
def tiny_program(tmp_path_factory):
    pytest.importorskip("executorch")
    from aestheticnet.bench.fixtures import tiny_pte

    return tiny_pte(tmp_path_factory.mktemp("pte") / "tiny.pte")


def test_pte_locally_and_through_the_remote_protocol(tiny_program, fake_ssh):
    settings = BenchSettings(threads=(1, 2), shapes=(Shape(64, 96),), batch=2, runs=2, warmup=0)
    local = run_benchmark([tiny_program], settings)
    device = SshDevice(parse_ssh_url("ssh://device"), remote_python=sys.executable, ssh_binary=fake_ssh)
    remote = run_benchmark([tiny_program], settings, device)
    for report in (local, remote):
        assert not report["errors"], report["errors"]
        assert [r["threads"] for r in report["results"]] == [1, 2]
        for row in report["results"]:
            assert row["ok"] and row["backend"] == "executorch" and row["runtime_version"], row
            assert row["format"] == "executorch" and row["batch"] == 2 and row["runs"] == 2
    (remote_dir,) = remote["remote_dirs"]
    assert not os.path.exists(remote_dir)
    # beyond the program's bounds (batch 1-8): a clear error from the runtime, not a crash
    over = run_benchmark([tiny_program], BenchSettings(shapes=(Shape(64, 64),), batch=9, runs=1, warmup=0))
    (row,) = over["results"]
    assert not row["ok"] and row["error_kind"] and row["error"], row


def test_a_benchmark_result_is_saved_with_its_machine_and_markdown(tmp_path):
    from aestheticnet.bench import save_result

    text = save_result({"rows": [1, 2]}, tmp_path / "out", "thing", lambda r: f"{len(r['rows'])} rows\n")
    saved = json.loads((tmp_path / "out" / "thing.json").read_text())
    assert text == (tmp_path / "out" / "thing.md").read_text() == "2 rows\n"
    assert saved["rows"] == [1, 2] and saved["machine"]["logical_cores"] >= 1
    kept = save_result({"machine": {"cpu_model": "board"}}, tmp_path, "other", lambda r: "")
    assert kept == "" and json.loads((tmp_path / "other.json").read_text())["machine"] == {"cpu_model": "board"}
