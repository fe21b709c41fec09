"""NIMA-MobileNetV2: the published MobileNetV2 1.0 size, NIMA's head, and the package's routes for every variant."""

import pytest
import torch
from click.testing import CliRunner

from aestheticnet.bench.profile import profile_model
from aestheticnet.models import MobileNetV2, count_parameters, create_model, load, read_metadata, save
from aestheticnet.models.mobilenet_v2 import InvertedResidual


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # OpenMP workers spin-wait on a busy machine
    yield
    torch.set_num_threads(threads)


# MobileNetV2 1.0 with the 1000-class ImageNet classifier: 3,504,872 parameters (the reference implementation's
# count; the paper prints 3.4M) and 300 M multiply-adds at 224x224 (the paper's table 3). The MACs are the
# package's counter (profile_model, as `aestheticnet info` prints them), pinned against regressions.
def test_imagenet_classifier_has_the_published_size():
    net = create_model("nima_mobilenet_v2", num_buckets=1000)
    profile = profile_model(net, (224, 224))
    assert count_parameters(net) == profile["params"] == 3_504_872
    assert round(profile["macs"] / 1e6, -1) == 300
    assert profile["macs"] == 300_774_272
    assert profile["output_shape"] == [1, 1000]


@pytest.mark.parametrize(("width", "mega_macs", "last"), [(0.5, 97, 1280), (0.75, 209, 1280), (1.4, 582, 1792)])
def test_width_multiplier_gives_the_published_sizes(width, mega_macs, last):
    # The paper's table 6 / the reference release: 97 M, 209 M and 582 M multiply-adds at 224x224; the last
    # convolution keeps 1280 channels below 1.0 and widens above it.
    net = create_model("nima_mobilenet_v2", num_buckets=1001, width=width)
    profile = profile_model(net, (224, 224))
    assert round(profile["macs"] / 1e6) == mega_macs
    assert net.head.in_features == last == net.features[-1][0].out_channels
    assert all(m.out_channels % 8 == 0 for m in net.modules() if isinstance(m, torch.nn.Conv2d))


def test_mscn_input_runs_in_front_of_the_stem():
    net = create_model("nima_mobilenet_v2", width=0.5, input_norm="mscn").eval()
    assert [p.name for p in net.parts()][:2] == ["input_norm", "features.0"]
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        # MSCN removes each channel's local mean and contrast: a brighter, contrastier copy scores the same
        assert torch.allclose(net(x), net(2.0 * x + 0.5), atol=2e-3)
    with pytest.raises(ValueError, match="input_norm='hsv'"):
        create_model("nima_mobilenet_v2", input_norm="hsv")


def test_nima_head_replaces_the_classifier():
    net = create_model("nima_mobilenet_v2")
    assert isinstance(net, MobileNetV2) and net.variant == "nima_mobilenet_v2"
    assert net.head_drop.p == 0.75 and (net.head.in_features, net.head.out_features) == (1280, 10)
    profile = profile_model(net, (224, 224))
    # the classifier's 1280 x (1000 - 10) weights and 990 biases fewer; its MACs fall by 1280 x 990
    assert profile["params"] == 3_504_872 - 1280 * 990 - 990 == 2_236_682
    assert profile["macs"] == 300_774_272 - 1280 * 990
    shapes = profile["output_shapes"]
    assert shapes["features.0"] == [1, 32, 112, 112] and shapes["features.18"] == [1, 1280, 7, 7]


def test_blocks_follow_the_inverted_residual_table():
    net = create_model("nima_mobilenet_v2")
    blocks = [m for m in net.features if isinstance(m, InvertedResidual)]
    assert len(blocks) == 17 and sum(b.residual for b in blocks) == 10
    assert all(isinstance(m, torch.nn.ReLU6) for m in net.modules() if isinstance(m, (torch.nn.ReLU, torch.nn.ReLU6)))
    # the projection is linear: each block ends with BN, not an activation
    assert all(isinstance(b.block[-1], torch.nn.BatchNorm2d) for b in blocks)
    expansions = [b.block[0][0].out_channels // b.block[0][0].in_channels for b in blocks[1:]]
    assert expansions == [6] * 16


def test_outputs_a_distribution_at_any_multiple_of_32_and_refuses_other_sizes():
    net = create_model("nima_mobilenet_v2").eval()
    with torch.no_grad():
        dist = net(torch.randn(2, 3, 96, 160))
    assert dist.shape == (2, 10) and torch.allclose(dist.sum(1), torch.ones(2))
    with pytest.raises(ValueError, match="multiples of 32"):
        net(torch.randn(1, 3, 100, 100))


def test_aestheticnet_options_are_refused_by_name():
    with pytest.raises(ValueError, match=r"unknown MobileNetV2Config key\(s\) \['genotype'\].*num_buckets"):
        create_model("nima_mobilenet_v2", genotype="PDARTS")


def test_checkpoint_round_trip(tmp_path):
    torch.manual_seed(0)
    net = create_model("nima_mobilenet_v2", head_dropout=0.5, width=0.75).eval()
    path = save(net, tmp_path / "nima.safetensors")
    meta = read_metadata(path)
    assert meta["variant"] == "nima_mobilenet_v2" and meta["genotype"] is None
    assert meta["config"] == {"num_buckets": 10, "head_dropout": 0.5, "width": 0.75, "input_norm": "none"}
    assert meta["preprocess"]["size"] == 224 and meta["preprocess"]["multiple"] == 32
    again = load(path)
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(net(x), again(x))


def test_info_prints_params_and_macs():
    from aestheticnet.cli import main

    result = CliRunner().invoke(main, ["info", "nima_mobilenet_v2", "--size", "224x224"])
    assert result.exit_code == 0, result.output
    assert "parameters: 2,236,682" in result.output and "MACs at 224x224: 299,507,072" in result.output
    assert "features.18  [1, 1280, 7, 7]" in result.output


@pytest.mark.slow
def test_exports_verify_and_bench_facts(tmp_path):
    """The same export route as AestheticNet (ONNX and TFLite fp32) and `verify` passes; the benchmark rebuilds
    params and MACs from the manifest."""
    from aestheticnet.artifacts import Format, Precision
    from aestheticnet.bench.manifest import model_facts
    from aestheticnet.export import VerifyOptions, export_checkpoint, verify_artifact
    from aestheticnet.sizes import Shape

    torch.manual_seed(0)
    net = create_model("nima_mobilenet_v2").eval()
    for m in net.modules():  # non-trivial BN statistics, so a wrong fold shows
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.2, 0.2)
            m.running_var.uniform_(0.5, 1.5)
    ckpt = save(net, tmp_path / "nima.safetensors")
    report = export_checkpoint(ckpt, [Format.ONNX, Format.TFLITE], [Precision.FP32], tmp_path, jobs=1, log=None)
    assert len(report.artifacts) == 2
    for artifact in report.artifacts:
        result = verify_artifact(artifact.path, ckpt, VerifyOptions(shapes=[Shape(224, 224), Shape(160, 96, batch=2)]))
        assert result.mismatches == [], artifact.path
        facts = model_facts(artifact.path, [(224, 224)])
        assert facts["variant"] == "nima_mobilenet_v2"
        assert (facts["params"], facts["macs"]["224x224"]) == (2_236_682, 299_507_072)
