"""Adding a format is one folder (here: a module in another package) and one registry line (here: its entry point):
a dummy format is then exported, loaded, verified and benched with no change to the package."""

from __future__ import annotations

import os
import sys
import textwrap
from pathlib import Path

import pytest
import torch

pytestmark = pytest.mark.slow

PLUGIN = '''
"""A dummy format: the fp32 ONNX graph under another suffix, run by ONNX Runtime."""

import shutil

from aestheticnet.artifacts import Format, FormatSpec, Precision, Tolerance
from aestheticnet.export.exporter import Exporter
from aestheticnet.runtime.backends import OnnxBackend


class DummyBackend(OnnxBackend):
    name = "dummy-runtime"


class DummyExporter(Exporter):
    spec = FormatSpec(
        Format._define("dummy"),
        ".dmy",
        "NCHW",
        "onnxruntime, under another name",
        {Precision.FP32: Tolerance(1e-5, 1e-4, psnr_db=90.0, agreement=1.0, srocc=0.999, plcc=0.999)},
    )
    backend = DummyBackend
    from_onnx = True

    def finish(self, ctx, precisions, started):
        for precision in precisions:
            dst = ctx.plan.path(self.format, precision)
            manifest = ctx.manifests.build(self.format, precision, {"exporter": "a copy of the fp32 ONNX file"})
            shutil.copyfile(ctx.onnx_fp32, dst)
            ctx.recorder.artifact(self.format, precision, dst, {"copy": 0.0}, manifest)
'''


@pytest.fixture()
def dummy_format(tmp_path, monkeypatch):
    """The plug-in as another package would ship it: a module and an ``aestheticnet.formats`` entry point."""
    from aestheticnet.artifacts import Format
    from aestheticnet.export import registry

    site = tmp_path / "site"
    (site / "dummy_format-0.1.dist-info").mkdir(parents=True)
    (site / "dummy_format.py").write_text(textwrap.dedent(PLUGIN))
    (site / "dummy_format-0.1.dist-info" / "METADATA").write_text("Metadata-Version: 2.1\nName: dummy-format\n")
    (site / "dummy_format-0.1.dist-info" / "entry_points.txt").write_text(
        f"[{registry.PLUGIN_GROUP}]\ndummy = dummy_format:DummyExporter\n"
    )
    monkeypatch.syspath_prepend(str(site))
    # The device runner is a fresh process: it finds the plug-in the same way.
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(site), *sys.path]))
    added = registry.load_plugins()
    assert [e.format.value for e in added] == ["dummy"]
    yield Format("dummy")
    registry.unregister_exporter(Format("dummy"))
    assert "dummy" not in registry.EXPORTERS


def test_a_plugin_format_is_exported_loaded_verified_and_benched(tmp_path, dummy_format):
    from aestheticnet.artifacts import Precision, read_manifest
    from aestheticnet.bench.harness import BenchSettings, run_benchmark
    from aestheticnet.export import VerifyOptions, export_checkpoint, verify_artifact
    from aestheticnet.models import create_model, save
    from aestheticnet.runtime import load, model_suffixes
    from aestheticnet.sizes import Shape

    torch.manual_seed(0)
    checkpoint = save(create_model("aestheticnet_star", layers=3, init_channels=8).eval(), tmp_path / "m.safetensors")
    report = export_checkpoint(checkpoint, [dummy_format], [Precision.FP32, Precision.INT8], tmp_path / "out", log=None)

    assert report.skipped == ["dummy/int8"]
    (artifact,) = report.artifacts
    path = Path(artifact.path)
    assert path.name == "m.fp32.dmy" and ".dmy" in model_suffixes()
    assert read_manifest(path).format == dummy_format
    assert sorted(p.name for p in path.parent.iterdir()) == ["m.export_report.json", "m.fp32.dmy", "m.fp32.dmy.json"]

    backend = load(path)
    assert backend.name == "dummy-runtime"
    x = torch.randn(2, 3, 64, 64).numpy()
    assert backend.run(x).shape == (2, 10)

    verified = verify_artifact(path, checkpoint, VerifyOptions(shapes=[Shape(64, 64), Shape(96, 64, batch=3)]))
    assert verified.passed, verified.mismatches
    assert verified.format == "dummy" and verified.runtime == "dummy-runtime"

    bench = run_benchmark([path], BenchSettings(shapes=(Shape(64, 64),), runs=2, warmup=1))
    assert not bench["errors"], bench["errors"]
    (row,) = bench["results"]
    assert row["ok"] and row["format"] == "dummy" and row["backend"] == "aestheticnet" and row["p50_ms"] > 0
    assert row["params"] is not None  # the manifest's model section rebuilds the network


def test_a_format_that_only_the_package_runs_is_not_sent_to_a_board(tmp_path, dummy_format):
    from aestheticnet.bench.devices import BenchError
    from aestheticnet.bench.harness import BenchSettings, run_benchmark
    from aestheticnet.bench.devices import remote_formats
    from aestheticnet.bench.ssh import parse_device

    assert "dummy" not in remote_formats() and "onnx" in remote_formats()
    model = tmp_path / "m.fp32.dmy"
    model.write_bytes(b"not run")
    with pytest.raises(BenchError, match="m.fp32.dmy: dummy models run only where this package runs"):
        run_benchmark([model], BenchSettings(), device=parse_device("ssh://user@board"), check_integrity=False)
