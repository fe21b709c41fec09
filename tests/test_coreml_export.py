"""CoreML image input: ImageType with the normalisation as scale/bias (+ std folded into the first conv),
EnumeratedShapes, metadata. Prediction needs macOS, so these tests read the spec."""

import dataclasses
import json

import pytest
import torch

from aestheticnet.artifacts import Format, Manifest, Precision
from aestheticnet.artifacts.manifest import SourceInfo, build_manifest

from aestheticnet.artifacts.embedded import EMBED_KEY
from aestheticnet.export.coreml.spec import check_spec, summarize_spec
from aestheticnet.export.prepare import prepare_for_export
from aestheticnet.models import create_model

pytest.importorskip("coremltools")
pytestmark = pytest.mark.slow

MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


@pytest.fixture(scope="module")
def image_package(tmp_path_factory):
    from aestheticnet.export.coreml.convert import convert_coreml
    from aestheticnet.export.options import DEFAULT_ENUMERATED, CoreMLInput, CoreMLOptions, CoreMLShapes

    torch.manual_seed(0)
    prepared, _ = prepare_for_export(create_model("aestheticnet_star", layers=3, init_channels=8).eval())
    meta = {"variant": "aestheticnet_star", "preprocess": {"mean": list(MEAN), "std": list(STD), "multiple": 32}}
    extra = {
        "image_scale": 1 / 255,
        "image_bias": [-m for m in MEAN],
        "enumerated": [[1, 3, h, w] for h, w in DEFAULT_ENUMERATED],
    }
    source = SourceInfo("m.safetensors", "0" * 64, "0.1.0")
    manifest = build_manifest(
        meta, source, Format.COREML, Precision.FP16, {}, None, input_kind="image", extra_input=extra
    )
    path = tmp_path_factory.mktemp("coreml") / "m.fp16.mlpackage"
    options = CoreMLOptions(shapes=CoreMLShapes.ENUMERATED, input_kind=CoreMLInput.IMAGE, mean=MEAN, std=STD)
    result = convert_coreml(prepared, path, Precision.FP16, options, metadata=manifest)
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
    from aestheticnet.export.options import DEFAULT_ENUMERATED

    path, _, _ = image_package
    summary = summarize_spec(path)
    assert sorted(map(tuple, summary["inputs"][0]["enumerated"])) == sorted(DEFAULT_ENUMERATED)
    meta = summary["metadata"]
    assert json.loads(meta[EMBED_KEY])["input"]["kind"] == "image"
    assert meta["input_kind"] == "image" and json.loads(meta["std"]) == list(STD)
    assert summary["outputs"][0]["dtype"] == "FLOAT32"  # float32 out even with FLOAT16 compute


def test_spec_check_reports_a_wrong_promise(image_package):
    path, manifest, _ = image_package
    wrong = dataclasses.replace(
        manifest, input=dataclasses.replace(manifest.input, extra={**manifest.input.extra, "image_bias": [0.0] * 3})
    )
    problems = check_spec(summarize_spec(path), wrong)
    assert [p["check"] for p in problems] == ["image bias"]


def test_bad_coreml_options_are_refused(tmp_path):
    from aestheticnet.export.coreml.convert import convert_coreml
    from aestheticnet.export.errors import ExportError
    from aestheticnet.export.options import CoreMLOptions, CoreMLShapes

    model = torch.nn.Identity()
    with pytest.raises(ExportError, match="expected one of fp32, fp16, int8"):
        convert_coreml(model, tmp_path / "x.mlpackage", Precision.INT8_DYNAMIC, CoreMLOptions())
    with pytest.raises(ExportError, match="expected one of CoreMLShapes.RANGE, CoreMLShapes.ENUMERATED"):
        CoreMLOptions(shapes="any")
    with pytest.raises(ExportError, match="not multiples of 32"):
        CoreMLOptions(shapes=CoreMLShapes.ENUMERATED, enumerated=((100, 224),))
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
    assert backend.manifest == Manifest.from_json(manifest.to_json(), "fixture")  # embedded, read back typed
    x = np.random.default_rng(0).standard_normal((2, 3, 224, 288)).astype(np.float32)
    with torch.no_grad():
        want = model(torch.from_numpy(x)).numpy()
    assert np.abs(backend.run(x) - want).max() < 1e-2  # float16 compute
    with pytest.raises(ValueError, match="not one of the package's enumerated shapes"):
        backend.run(np.zeros((1, 3, 96, 640), np.float32))
