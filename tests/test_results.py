"""The results pages and the README's results table are what results/*.json give: a number changed in a JSON and
not rendered again fails here."""

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
