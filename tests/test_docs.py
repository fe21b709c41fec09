"""The documentation site builds in MkDocs' strict mode: a broken link or a page left out of the navigation fails."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_docs_build_in_strict_mode(tmp_path):
    pytest.importorskip("mkdocs", reason="the docs extra is not installed (pip install -e '.[docs]')")
    pytest.importorskip("mkdocs_click", reason="the docs extra is not installed (pip install -e '.[docs]')")
    cmd = [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")]
    env = dict(os.environ, NO_MKDOCS_2_WARNING="1")
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600, env=env)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    assert "--device" in (tmp_path / "site" / "commands" / "verify" / "index.html").read_text()


def test_the_model_page_quotes_the_counters_figures():
    from aestheticnet.bench.profile import profile_model
    from aestheticnet.models import create_model

    text = (ROOT / "docs" / "concepts" / "model.md").read_text()
    for name in ("nima_mobilenet_v2", "aestheticnet_star"):
        profile = profile_model(create_model(name), (224, 224))
        figures = f"{profile['params'] / 1e6:.2f} M parameters, {profile['macs'] / 1e9:.2f} GMACs"
        assert figures in text, f"docs/concepts/model.md should say {figures!r} for {name}"
