"""Faults a hostile but realistic user causes: broken numbers, edited files, killed commands, bad values.

Each case ends in a clear error that names the file or key (exit code 2 for bad input, 1 for a failed check), never
a traceback; NaN never passes; a killed command leaves no process behind and no file changes after the kill.
"""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from aestheticnet.artifacts import Format, Precision
from aestheticnet.cli import main
from aestheticnet.models import create_model, save
from aestheticnet.models.checkpoint import METADATA_KEY, read_metadata
from aestheticnet.state import read_tensors, write_safetensors

PRE = {
    "policy": "aspect",
    "size": 64,
    "max_side": 128,
    "multiple": 32,
    "mean": [0.485, 0.456, 0.406],
    "std": [0.229, 0.224, 0.225],
}
LINUX = sys.platform.startswith("linux")


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    torch.manual_seed(0)
    model = create_model("aestheticnet_star", layers=3, init_channels=4)
    return save(model, tmp_path_factory.mktemp("faults") / "m.safetensors", preprocess=PRE)


@pytest.fixture(scope="module")
def onnx_file(checkpoint, tmp_path_factory):
    from aestheticnet.export import export_checkpoint

    out = tmp_path_factory.mktemp("onnx")
    export_checkpoint(checkpoint, [Format.ONNX], [Precision.FP32], out, log=None)
    return out / "m.fp32.onnx"


def edited_checkpoint(checkpoint: Path, out: Path, meta_change=None, tensor_change=None) -> Path:
    meta = read_metadata(checkpoint)
    state = read_tensors(checkpoint, ValueError, "weights")
    if meta_change:
        meta_change(meta)
    if tensor_change:
        tensor_change(state)
    return write_safetensors(out, state, METADATA_KEY, meta)


def run_cli(*args: str):
    return CliRunner().invoke(main, [str(a) for a in args])


def assert_clean_error(result, code: int, *needles: str) -> None:
    """Exit ``code`` with every needle in the output, and no traceback."""
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output and not isinstance(result.exception, (TypeError, AttributeError))
    for needle in needles:
        assert needle in result.output, result.output


def nan_onnx(onnx_path: Path, out: Path) -> Path:
    """A copy of ``onnx_path`` whose classifier bias (the 10-value initializer) is NaN, sidecar copied as is."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(onnx_path))
    bias = next(t for t in model.graph.initializer if list(t.dims) == [10])
    bias.CopyFrom(numpy_helper.from_array(np.full(10, np.nan, np.float32), bias.name))
    onnx.save(model, str(out))
    Path(str(out) + ".json").write_text(Path(str(onnx_path) + ".json").read_text())
    return out


# ---- NaN and Inf never pass --------------------------------------------------------------------------------------


def test_verify_fails_an_artifact_whose_outputs_are_nan(onnx_file, checkpoint, tmp_path):
    broken = nan_onnx(onnx_file, tmp_path / "m.fp32.onnx")
    result = run_cli("verify", broken, "--reference", checkpoint, "--shapes", "64x64", "--no-integrity-check")
    assert_clean_error(result, 1, "finite artifact outputs", "FAILED")
    assert "PASSED" not in result.output


def test_score_reports_nan_outputs_as_failures(onnx_file, tmp_path):
    from PIL import Image

    broken = nan_onnx(onnx_file, tmp_path / "m.fp32.onnx")
    Image.new("RGB", (80, 64), (120, 30, 200)).save(tmp_path / "a.png")
    result = run_cli("score", tmp_path / "a.png", "--model", broken, "--no-integrity-check", "--quiet")
    assert_clean_error(result, 1, "NaN or infinite", "1 of 1 files could not be scored")


def test_a_checkpoint_with_nan_weights_is_refused_by_every_command(checkpoint, onnx_file, tmp_path, tiny_synth):
    def poison(state):
        name = next(k for k, t in state.items() if t.is_floating_point() and t.numel() > 1)
        state[name][0] = float("nan")

    broken = edited_checkpoint(checkpoint, tmp_path / "nan.safetensors", tensor_change=poison)
    from PIL import Image

    Image.new("RGB", (64, 64)).save(tmp_path / "a.png")
    commands = [
        ("score", tmp_path / "a.png", "--model", broken),
        ("evaluate", broken, "--data", tiny_synth, "--split", "all", "--out", tmp_path / "eval"),
        ("export", broken, "--format", "onnx", "--precision", "fp32", "--out", tmp_path / "export"),
        ("verify", onnx_file, "--reference", broken),
    ]
    for command in commands:
        assert_clean_error(run_cli(*command), 2, "nan.safetensors", "NaN or infinite")
    assert not (tmp_path / "eval" / "metrics.json").exists()


@pytest.mark.parametrize(
    "change, needle",
    [
        (lambda m: m["preprocess"].update(std=[0, 0, 0]), "preprocess.std"),
        (lambda m: m.update(num_buckets=7), "num_buckets = 7"),
        (lambda m: m["preprocess"].update(mean=[0.5, "x", 0.5]), "preprocess.mean"),
    ],
    ids=["std-zero", "num-buckets", "mean-not-numbers"],
)
def test_contradicting_or_degenerate_metadata_is_refused_before_export(checkpoint, tmp_path, change, needle):
    broken = edited_checkpoint(checkpoint, tmp_path / "edited.safetensors", meta_change=change)
    result = run_cli("export", broken, "--format", "onnx", "--precision", "fp32", "--out", tmp_path / "o")
    assert_clean_error(result, 2, "edited.safetensors", needle)
    assert not (tmp_path / "o").exists() or not any((tmp_path / "o").iterdir())


# ---- manifests are checked ---------------------------------------------------------------------------------------


def test_an_artifact_that_no_longer_matches_its_manifest_is_refused(onnx_file, checkpoint, tmp_path):
    from aestheticnet.runtime import load

    from PIL import Image

    changed = nan_onnx(onnx_file, tmp_path / "m.fp32.onnx")  # other bytes, the old sidecar
    Image.new("RGB", (64, 64)).save(tmp_path / "a.png")
    for result in (
        run_cli("verify", changed, "--reference", checkpoint),
        run_cli("bench", changed, "--runs", "1"),
        run_cli("score", tmp_path, "--model", changed),
    ):
        assert_clean_error(result, 2, "m.fp32.onnx", "sha256", "--no-integrity-check")
    with pytest.raises(ValueError, match="changed after it was exported"):
        load(changed)
    assert load(changed, check_integrity=False).run(np.zeros((1, 3, 64, 64), np.float32)).shape == (1, 10)
    assert load(onnx_file) is not None  # the untouched file still loads


def test_shapes_beyond_the_exported_bounds_stop_before_any_work(onnx_file, checkpoint):
    for result in (
        run_cli("verify", onnx_file, "--reference", checkpoint, "--shapes", "100000x100000"),
        run_cli("bench", onnx_file, "--shapes", "4096x32"),
        run_cli("info", "aestheticnet_star", "--size", "100000x100000"),
    ):
        assert_clean_error(result, 2, "at most a batch of 64 and sides of 2048")


# ---- bad values stop before any work, naming the key ------------------------------------------------------------


@pytest.mark.parametrize(
    "config, needle",
    [({"epochs": "3"}, "epochs must be int, got '3'"), ({"data": {"path": "x"}}, "data must be str")],
    ids=["epochs-string", "data-object"],
)
def test_train_config_with_wrong_types_names_the_key(tmp_path, config, needle):
    path = tmp_path / "train.json"
    path.write_text(json.dumps(config))
    result = run_cli("train", "--config", path, "--out", tmp_path / "run")
    assert_clean_error(result, 2, needle)
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    "toml, needle",
    [("[train]\nepochs = 'x'\n", "epochs must be int, got 'x'"), ("[bench]\nthreads = [-1]\n", "bench.threads=[-1]")],
    ids=["train-epochs", "bench-threads"],
)
def test_pipeline_values_stop_the_run_before_any_step(tmp_path, toml, needle):
    config = tmp_path / "pipeline.toml"
    config.write_text(toml)
    result = run_cli("pipeline", "--config", config, "--out", tmp_path / "out")
    assert_clean_error(result, 2, needle)
    assert not (tmp_path / "out").exists()


def test_data_synth_refuses_a_folder_under_a_file_and_a_folder_of_other_files(tmp_path):
    (tmp_path / "f").write_text("a file")
    assert_clean_error(run_cli("data", "synth", tmp_path / "f" / "sub", "--quiet"), 2, "is a file, not a folder")
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "thesis.tex").write_text("precious")
    assert_clean_error(run_cli("data", "synth", mine, "--quiet"), 2, "not a synthetic dataset")
    assert (mine / "thesis.tex").read_text() == "precious" and len(list(mine.iterdir())) == 1


def test_csv_without_rows_and_a_generic_csv_reached_from_the_command_line(tiny_synth, tmp_path):
    from PIL import Image

    empty = tmp_path / "empty.csv"
    empty.write_text("path,mean\n")
    result = run_cli("train", "--data", empty, "--mean-column", "mean", "--out", tmp_path / "r0")
    assert_clean_error(result, 2, "empty.csv", "no rows under the header")
    images = tmp_path / "images"
    images.mkdir()
    rows = ["path," + ",".join(f"v{k}" for k in range(1, 11))]
    for i in range(12):
        Image.new("RGB", (64, 64), (20 * i, 100, 50)).save(images / f"{i}.png")
        rows.append(f"images/{i}.png," + ",".join(str((i + k) % 5) for k in range(10)))
    generic = tmp_path / "generic.csv"
    generic.write_text("\n".join(rows) + "\n")
    common = ["--data", generic, "--layers", "3", "--init-channels", "4", "--epochs", "1", "--image-size", "32"]
    asked = run_cli("train", *common, "--out", tmp_path / "r1")
    assert_clean_error(asked, 2, "--vote-columns")
    columns = ",".join(f"v{k}" for k in range(1, 11))
    trained = run_cli("train", *common, "--vote-columns", columns, "--batch-size", "4", "--out", tmp_path / "r2")
    assert trained.exit_code == 0, trained.output
    saved = json.loads((tmp_path / "r2" / "train_config.json").read_text())
    assert saved["vote_columns"] == [f"v{k}" for k in range(1, 11)]
    evaluated = run_cli("evaluate", tmp_path / "r2" / "last.safetensors", "--data", generic)
    assert evaluated.exit_code == 0, evaluated.output  # the columns come from the checkpoint's training config


# ---- killed commands leave no process and no late file ---------------------------------------------------------


def process_table() -> dict[int, tuple[int, str, str]]:
    """pid -> (parent pid, state, command line) of every process, from /proc."""
    table = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        table[int(entry.name)] = (int(fields[1]), fields[0], cmdline)
    return table


def descendants(pid: int) -> dict[int, str]:
    table = process_table()
    found, frontier = {}, [pid]
    while frontier:
        parent = frontier.pop()
        for child, (ppid, _, cmdline) in table.items():
            if ppid == parent and child not in found:
                found[child] = cmdline
                frontier.append(child)
    return found


def alive(pids) -> list[int]:
    table = process_table()
    return [p for p in pids if p in table and table[p][1] != "Z"]  # a zombie has ended; it awaits its reaper


def snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns) for p in folder.rglob("*")}


def kill_when(proc: subprocess.Popen, ready, sig: int, timeout: float = 240) -> dict[int, str]:
    """Wait until ``ready(descendants)`` holds, then send ``sig`` to ``proc`` alone; returns its descendants."""
    deadline = time.time() + timeout
    while time.time() < deadline and proc.poll() is None:
        children = descendants(proc.pid)
        if ready(children):
            os.kill(proc.pid, sig)
            proc.wait()
            return children
        time.sleep(0.1)
    proc.kill()
    pytest.fail(f"the command ended or never started its workers:\n{proc.log_text()}")


def assert_no_orphans_and_no_late_files(children: dict[int, str], out: Path) -> None:
    deadline = time.time() + 5
    while alive(children) and time.time() < deadline:
        time.sleep(0.1)
    assert not alive(children), {p: children[p] for p in alive(children)}
    before = snapshot(out) if out.exists() else {}
    time.sleep(2)
    assert (snapshot(out) if out.exists() else {}) == before


class CliProcess(subprocess.Popen):
    """``python -m aestheticnet.cli ARGS`` in its own session, its output in ``log`` (a pipe could fill and stall it)."""

    def __init__(self, log: Path, *args: str):
        self.log = log
        env = {**os.environ, "OMP_NUM_THREADS": "1"}
        with open(log, "w") as sink:
            command = [sys.executable, "-m", "aestheticnet.cli", *map(str, args)]
            super().__init__(command, env=env, stdout=sink, stderr=subprocess.STDOUT, start_new_session=True)

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")[-2000:]


@pytest.mark.skipif(not LINUX, reason="reads the process table from /proc")
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM], ids=["kill-9", "sigterm"])
def test_killed_synth_leaves_no_worker_and_the_rerun_removes_its_leftovers(tmp_path, sig):
    from aestheticnet.data.synthetic import build_synthetic

    out = tmp_path / "synth"
    proc = CliProcess(tmp_path / "log.txt", "data", "synth", out, "--crops", "1", "--workers", "2", "--quiet")
    children = kill_when(proc, lambda c: sum("spawn_main" in cmd for cmd in c.values()) >= 2, sig)
    assert_no_orphans_and_no_late_files(children, tmp_path)
    assert [p for p in tmp_path.iterdir() if p.name.startswith(".synth.tmp-")], "the killed build left its temp"
    build_synthetic(
        out, seed=1, n_crops_per_photo=1, photos=("chelsea", "coins"), distortions=("blur",), workers=1, progress=False
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["log.txt", "synth"]


@pytest.mark.skipif(not LINUX, reason="reads the process table from /proc")
def test_killed_export_leaves_no_converter_that_writes_later(checkpoint, tmp_path):
    out = tmp_path / "export"
    proc = CliProcess(
        tmp_path / "log.txt", "export", checkpoint, "--format", "onnx,tflite", "--precision", "fp32", "--out", out
    )
    children = kill_when(proc, lambda c: any("aestheticnet.export.worker" in cmd for cmd in c.values()), signal.SIGKILL)
    assert_no_orphans_and_no_late_files(children, out)
    assert not (out / "m.fp32.tflite").exists()  # only the parent renames a converted file into place


@pytest.mark.slow
@pytest.mark.skipif(not LINUX or (os.cpu_count() or 1) < 2, reason="needs /proc and 2 cores for parallel trainers")
def test_killed_pipeline_leaves_no_trainer_running(tiny_synth, tmp_path):
    config = tmp_path / "pipeline.toml"
    config.write_text(
        textwrap.dedent(f"""
        [data]
        path = "{tiny_synth}"
        [search]
        enabled = false
        genotype = "DARTS_V2"
        [train]
        variants = ["aestheticnet", "aestheticnet_star"]
        parallel = true
        layers = 3
        init_channels = 4
        image_size = 32
        max_side = 64
        epochs = 200
        batch_size = 8
        num_workers = 0
    """)
    )
    out = tmp_path / "out"
    proc = CliProcess(tmp_path / "log.txt", "pipeline", "--config", config, "--out", out)
    children = kill_when(proc, lambda c: sum("spawn_main" in cmd for cmd in c.values()) >= 2, signal.SIGTERM)
    assert_no_orphans_and_no_late_files(children, out)
