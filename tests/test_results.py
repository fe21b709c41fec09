"""The results pages and the README's results table are what results/*.json give: a number changed in a JSON and
not rendered again fails here."""

import importlib.util
import json
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _check(root: Path) -> subprocess.CompletedProcess:
    cmd = [sys.executable, str(root / "scripts" / "render_results.py"), "--check"]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300)


def test_rendered_pages_are_up_to_date():
    proc = _check(ROOT)
    assert proc.returncode == 0, proc.stderr


def test_a_changed_number_is_caught(tmp_path):
    copy = tmp_path / "repo"
    for part in ("scripts", "results", "benchmarks", "docs"):
        shutil.copytree(ROOT / part, copy / part, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "README.md", copy / "README.md")
    assert _check(copy).returncode == 0
    path = copy / "results" / "phone_runtimes.json"
    result = json.loads(path.read_text())
    row = result["models"]["demo"]["rows"][0]
    row["p50_ms"]["median"] += 1.0
    path.write_text(json.dumps(result))
    proc = _check(copy)
    assert proc.returncode == 1 and "docs/results/phone-runtimes.md" in proc.stderr


def _render_module():
    spec = importlib.util.spec_from_file_location("render_results", ROOT / "scripts" / "render_results.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_every_result_and_every_benchmark_has_a_page():
    pages = _render_module().PAGES
    rendered = {page.json for page in pages}
    committed = {path.name for path in (ROOT / "results").glob("*.json")}
    assert committed - rendered == set(), "results/*.json without a Page in scripts/render_results.py"
    assert rendered - committed == set(), "Pages whose JSON is not in results/"
    # A benchmark prints a table (its markdown(result)); the helper that only feeds another script is exempt.
    scripts = {f"benchmarks/{p.name}" for p in (ROOT / "benchmarks").glob("*.py") if "def markdown" in p.read_text()}
    assert scripts - {page.script for page in pages} == set(), "benchmarks whose results are not in results/"


def test_every_result_names_its_machine():
    unnamed = [
        path.name
        for path in sorted((ROOT / "results").glob("*.json"))
        if not (json.loads(path.read_text()).get("machine") or json.loads(path.read_text()).get("machine_details"))
    ]
    assert unnamed == [], "results without the machine they ran on (run the benchmark again)"
