"""The pipeline's report: contents, the genotype as a table of edges, tables in format and precision order, plots
that name their model, and the HTML page rendered in headless Chromium with every image loaded."""

import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from aestheticnet.pipeline.config import PipelineConfig
from aestheticnet.pipeline.report import write_report

GENOTYPE = {
    "normal": [["sep_conv_3x3", 0], ["skip_connect", 1], ["dil_conv_5x5", 2], ["max_pool_3x3", 0]],
    "normal_concat": [2, 3],
    "reduce": [["avg_pool_3x3", 0], ["sep_conv_5x5", 1], ["skip_connect", 2], ["dil_conv_3x3", 1]],
    "reduce_concat": [2, 3],
}


def _png(path: Path) -> str:
    from aestheticnet.train.plots import plot_scatter

    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    return str(plot_scatter(rng.uniform(1, 10, 20), rng.uniform(1, 10, 20), path, title=path.stem))


def _evaluation(out: Path, model: str) -> dict:
    metrics = dict.fromkeys(("accuracy", "plcc", "srocc", "emd_r1", "emd_r2", "std_plcc", "std_srocc"), 0.5)
    files = {k: _png(out / "evaluate" / model / f"{k}.png") for k in ("distributions_png", "scatter_png")}
    return {"skipped": False, "seconds": 1.0, "result": {"metrics": metrics, "items": 10, "files": files}}


def _summary(out: Path) -> dict:
    _png(out / "search" / "cells.png")
    names = ["m.int8.onnx", "m.fp32.tflite", "m.fp16.onnx", "m.fp32.onnx", "m.int8.tflite"]
    reports = [{"artifact": n, "status": "PASS", "max_abs": 0.0, "evaluated_by": "x"} for n in names]
    rows = [{"model": n, "backend": "b", "threads": 1, "shape": "224x224", "p50_ms": 1.0} for n in names]
    return {
        "out": str(out),
        "wall_seconds": 3.0,
        "steps": {
            "data": {"skipped": True, "seconds": 0.0, "result": {"path": "data"}},
            "search": {"skipped": False, "seconds": 1.0, "result": {"genotype": GENOTYPE, "searched": True}},
            "evaluate_aestheticnet_star": _evaluation(out, "aestheticnet_star"),
            "evaluate_aestheticnet": _evaluation(out, "aestheticnet"),
            "verify": {"skipped": False, "seconds": 1.0, "result": {"reports": reports}},
            "bench": {"skipped": False, "seconds": 1.0, "result": {"rows": rows, "plots": []}},
        },
    }


@pytest.fixture
def report(tmp_path):
    files = write_report(PipelineConfig(), tmp_path, _summary(tmp_path))
    return Path(files["markdown"]).read_text(), Path(files["html"])


def test_contents_genotype_table_and_sorted_tables(report):
    md, html_path = report
    page = html_path.read_text()
    titles = re.findall(r"^## (.+)$", md, re.M)
    assert titles[0] == "Steps" and "Architecture search" in titles
    for i, title in enumerate(titles):
        assert f"[{title}](#section-{i + 1})" in md and f'<h2 id="section-{i + 1}">' in page
    assert "| normal | node 0 | c_{k-2} (cell before the previous) | sep_conv_3x3 |" in md
    assert "| reduction | node 1 | node 0 | skip_connect |" in md
    assert "| normal | output | concat of node 0, node 1 |  |" in md
    parity = md.split("## Parity with PyTorch")[1].split("##")[0]
    order = re.findall(r"^\| (m\.[\w.]+) \|", parity, re.M)
    assert order == ["m.fp32.onnx", "m.fp16.onnx", "m.int8.onnx", "m.fp32.tflite", "m.int8.tflite"]
    latency = md.split("## Latency on this machine")[1]
    assert re.findall(r"^\| (m\.[\w.]+) \|", latency, re.M) == order
    evaluation = page.split("Evaluation (validation split, by source photo)</h2>")[1].split("<h2")[0]
    assert evaluation.count("<table>") == 1 and "<th>model</th>" in evaluation
    assert 'src="../search/cells.png"' in page and "max-width:100%" in page


def test_evaluation_plots_name_their_model(tmp_path, monkeypatch):
    from aestheticnet.train import evaluate

    titles = []
    for name in ("plot_score_distributions", "plot_scatter"):
        monkeypatch.setattr(evaluate, name, lambda pm, tm, path, title="": titles.append(title) or path)
    report = {"checkpoint": "/runs/star/best.safetensors", "model": "aestheticnet_star", "split": "val"}
    pred = np.full((2, 10), 0.1, np.float32)
    evaluate._write_outputs(tmp_path, report, pred, pred, ["a", "b"])
    assert len(titles) == 2
    assert all("aestheticnet_star (best.safetensors)" in t for t in titles), titles


def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if shutil.which(name):
            return shutil.which(name)
    return None


@pytest.mark.skipif(_chromium() is None, reason="no Chromium on this machine (.ci/run installs Debian's chromium)")
def test_report_renders_in_chromium_with_every_image_loaded(report, tmp_path):
    _, html_path = report
    # A page beside the report loads it in a frame and lists each image's natural size once everything loaded.
    probe = html_path.with_name("probe.html")
    probe.write_text(
        "<html><body><iframe id='r' src='report.html'></iframe><pre id='out'></pre><script>"
        "document.getElementById('r').onload = () => {"
        " const imgs = [...document.getElementById('r').contentDocument.images];"
        " document.getElementById('out').textContent = JSON.stringify("
        "  imgs.map(i => [i.getAttribute('src'), i.complete, i.naturalWidth]));};"
        "</script></body></html>"
    )
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--allow-file-access-from-files", "--no-first-run"]
    flags += ["--disable-background-networking", "--disable-component-update", "--disable-sync"]
    flags += [f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=10000", "--dump-dom"]
    proc = subprocess.run(
        [_chromium(), *flags, probe.as_uri()], capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL
    )
    found = re.search(r'<pre id="out">(.*?)</pre>', proc.stdout, re.S)
    assert found and found.group(1), f"the probe page did not report: {proc.stderr[-500:]}"
    images = json.loads(found.group(1).replace("&quot;", '"'))
    assert len(images) == 5  # the cell picture and two plots per evaluated model
    broken = [src for src, complete, width in images if not (complete and width > 0)]
    assert not broken, broken
