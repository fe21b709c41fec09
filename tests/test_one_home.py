"""One concern, one home: each of these is defined once in the package (the device runner, which runs on boards
without the package, keeps its own copies and has its own tests)."""

import re
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "aestheticnet"
SELF_CONTAINED = {PACKAGE / "bench" / "runner.py"}

# concept -> (a definition's pattern, the module that must hold the only one)
HOMES = {
    "image suffixes": (r"^IMAGE_SUFFIXES\s*=", "data/images.py"),
    "ImageNet mean": (r"^IMAGENET_MEAN\s*=|0\.485,\s*0\.456,\s*0\.406", "imagenet.py"),
    "ImageNet std": (r"^IMAGENET_STD\s*=|0\.229,\s*0\.224,\s*0\.225", "imagenet.py"),
    "distribution -> mean score": (r"^def mean_score\(", "metrics.py"),
    "distribution -> score std": (r"^def score_std\(", "metrics.py"),
    "image file -> model input": (r"^def file_tensor\(", "data/preprocess.py"),
    "names -> formats": (r"^def parse_formats\(", "artifacts/formats.py"),
    "names -> precisions": (r"^def parse_precisions\(", "artifacts/formats.py"),
    "the size grammar": (r"^def parse_shape\(", "sizes.py"),
    "largest input side": (r"^MAX_SIDE\s*=", "sizes.py"),
    "children bound to their parent": (r"^def bind_to_parent\(", "lifetime.py"),
    "runtime names": (r"\"litert\"|'litert'", "runtime_names.py"),
    # outside comments: code that names a format's suffix instead of asking its FormatSpec
    "the ONNX file suffix": (r"^[^#]*\"\.onnx\"", "artifacts/builtin_formats.py"),
    "the TFLite file suffix": (r"^[^#]*\"\.tflite\"", "artifacts/builtin_formats.py"),
    "the CoreML package suffix": (r"^[^#]*\"\.mlpackage\"", "artifacts/builtin_formats.py"),
    "the ExecuTorch file suffix": (r"^[^#]*\"\.pte\"", "artifacts/builtin_formats.py"),
    "the format registry": (r"^EXPORTERS\b.*=", "export/registry.py"),
    "the manifest type": (r"^class Manifest\b", "artifacts/manifest_types.py"),
    "CoreML shape modes": (r"^\s+ENUMERATED = ", "export/options.py"),
    "ONNX exporter choices": (r"TORCHSCRIPT = ", "export/options.py"),
    "the export's options": (r"^class ExportOptions\b", "export/options.py"),
}


def definitions(pattern: str) -> list[str]:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path in SELF_CONTAINED:
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if re.search(pattern, line):
                found.append(f"{path.relative_to(PACKAGE)}:{number}")
    return found


@pytest.mark.parametrize("concept", sorted(HOMES))
def test_defined_once_in_its_home(concept):
    pattern, home = HOMES[concept]
    found = definitions(pattern)
    assert len(found) == 1 and found[0].startswith(home + ":"), f"{concept}: {found}, expected one in {home}"


def test_the_runner_copy_of_runtime_names_matches():
    """The device runner is self-contained, so it spells runtime names itself: every format's bench backend must be
    one it knows, under the name RuntimeName gives it."""
    from aestheticnet.bench import runner
    from aestheticnet.bench.manifest import PACKAGE_BACKEND
    from aestheticnet.export.registry import EXPORTERS
    from aestheticnet.runtime_names import RuntimeName

    named = {EXPORTERS.get(name).bench_backend for name in EXPORTERS.names()} - {None}
    assert named and named <= {r.value for r in RuntimeName} and named <= set(runner.BACKENDS)
    assert RuntimeName.PYTORCH.value in runner.BACKENDS and PACKAGE_BACKEND in runner.BACKENDS
