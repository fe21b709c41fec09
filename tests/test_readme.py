"""The README's promises: at most 160 lines, a pip install line, and its Python block runs as printed."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_is_short_and_says_how_to_install():
    text = README.read_text()
    assert len(text.splitlines()) <= 160
    assert "pip install -e '.[export]'" in text and "make demo" in text and "make test" in text


@pytest.mark.slow
def test_readme_python_block_runs(tmp_path):
    (block,) = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)
    (tmp_path / "readme_block.py").write_text(block)
    proc = subprocess.run(
        [sys.executable, "readme_block.py"], cwd=tmp_path, capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = proc.stdout.strip().splitlines()[-3:]  # after the export's progress lines
    assert lines[0] == "True" and lines[1] == "(1, 10)", proc.stdout
    assert "'path': 'photo.jpg'" in lines[2] and "'mean':" in lines[2]


def test_getting_started_shows_the_tested_python_block():
    docs = README.parent / "docs" / "getting-started.md"
    pattern = re.compile(r"```python\n(.*?)```", re.S)
    assert pattern.findall(docs.read_text()) == pattern.findall(README.read_text())
