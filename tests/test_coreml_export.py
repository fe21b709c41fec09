"""CoreML image input: ImageType with the normalisation as scale/bias (+ std folded into the first conv),
EnumeratedShapes, metadata. Prediction needs macOS, so these tests read the spec."""

import json

import pytest
import torch

from aestheticnet.artifacts.embedded import EMBED_KEY
from aestheticnet.export.coreml.spec import check_spec, summarize_spec
from aestheticnet.export.prepare import prepare_for_export
from aestheticnet.models import create_model

pytest.importorskip("coremltools")
pytestmark = pytest.mark.slow

MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


@pytest.fixture(scope="module")
def image_package(tmp_path_factory):
    from aestheticnet.export.coreml.convert import DEFAULT_ENUMERATED, convert_coreml

    torch.manual_seed(0)
    prepared, _ = prepare_for_export(create_model("aestheticnet_star", layers=3, init_channels=8).eval())
    manifest = {
        "model": {"variant": "aestheticnet_star", "score_buckets": list(range(1, 11))},
        "input": {
            "layout": "NCHW",
            "kind": "image",
            "multiple": 32,
            "mean": list(MEAN),
            "std": list(STD),
            "image_scale": 1 / 255,
            "image_bias": [-m for m in MEAN],
            "dynamic": None,
            "enumerated": [[1, 3, h, w] for h, w in DEFAULT_ENUMERATED],
        },
        "artifact": {"precision": "fp16", "format": "coreml"},
        "source": {"sha256": "0" * 64, "package_version": "0.1.0"},
    }
    path = tmp_path_factory.mktemp("coreml") / "m.fp16.mlpackage"
    result = convert_coreml(
        prepared, path, precision="fp16", shapes="enumerated", input_kind="image", mean=MEAN, std=STD, metadata=manifest
    )
    return path, manifest, result


def test_image_input_carries_scale_and_bias(image_package):
    path, manifest, result = image_package
    summary = summarize_spec(path)
    (inp,) = summary["inputs"]
    assert inp["type"] == "imageType" and inp["color_space"] == "RGB"
    pre = inp["preprocessing"]
    assert pre["scale"][0] == pytest.approx(1 / 255, rel=1e-3)
    assert pre["bias"] == pytest.approx([-m for m in MEAN], abs=1e-3)
    assert result["input"]["std_folded_into_first_conv"] is True
    assert check_spec(summary, manifest) == []


def test_enumerated_shapes_and_metadata(image_package):
    from aestheticnet.export.coreml.convert import DEFAULT_ENUMERATED

    path, _, _ = image_package
    summary = summarize_spec(path)
    assert sorted(map(tuple, summary["inputs"][0]["enumerated"])) == sorted(DEFAULT_ENUMERATED)
    meta = summary["metadata"]
    assert json.loads(meta[EMBED_KEY])["input"]["kind"] == "image"
    assert meta["input_kind"] == "image" and json.loads(meta["std"]) == list(STD)
    assert summary["outputs"][0]["dtype"] == "FLOAT32"  # float32 out even with FLOAT16 compute


def test_spec_check_reports_a_wrong_promise(image_package):
    path, manifest, _ = image_package
    wrong = json.loads(json.dumps(manifest))
    wrong["input"]["image_bias"] = [0.0, 0.0, 0.0]
    problems = check_spec(summarize_spec(path), wrong)
    assert [p["check"] for p in problems] == ["image bias"]


def test_bad_coreml_options_are_refused(tmp_path):
    from aestheticnet.export.coreml.convert import convert_coreml
    from aestheticnet.export.errors import ExportError

    model = torch.nn.Identity()
    with pytest.raises(ExportError, match="expected fp32, fp16 or int8"):
        convert_coreml(model, tmp_path / "x.mlpackage", precision="int4")
    with pytest.raises(ExportError, match="expected one of range, enumerated"):
        convert_coreml(model, tmp_path / "x.mlpackage", shapes="any")
    with pytest.raises(ExportError, match="not multiples of 32"):
        convert_coreml(model, tmp_path / "x.mlpackage", shapes="enumerated", enumerated=[(100, 224)])
    assert list(tmp_path.iterdir()) == []


def test_image_package_evaluates_like_pytorch(image_package):
    """The MIL evaluator feeds pixels through the package's own scale, bias and folded std; enumerated shapes are
    the only ones it accepts, as on a device."""
    import numpy as np

    from aestheticnet.runtime import CoreMLRunner, load

    path, manifest, _ = image_package
    torch.manual_seed(0)  # the fixture's network
    model = create_model("aestheticnet_star", layers=3, init_channels=8).eval()
    backend = load(path, coreml=CoreMLRunner.MIL)
    backend.metadata = manifest  # the fixture's manifest is embedded; say so explicitly for the pixel conversion
    x = np.random.default_rng(0).standard_normal((2, 3, 224, 288)).astype(np.float32)
    with torch.no_grad():
        want = model(torch.from_numpy(x)).numpy()
    assert np.abs(backend.run(x) - want).max() < 1e-2  # float16 compute
    with pytest.raises(ValueError, match="not one of the package's enumerated shapes"):
        backend.run(np.zeros((1, 3, 96, 640), np.float32))
