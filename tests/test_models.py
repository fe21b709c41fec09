import pytest
import torch

from aestheticnet.models import (
    AestheticNetConfig,
    AestheticNetStarConfig,
    count_parameters,
    create_model,
    list_models,
)
from aestheticnet.models.aestheticnet import AestheticNet
from aestheticnet.models.cbam import CBAM
from aestheticnet.models.registry import build_model
from aestheticnet.nas.operations import SepConv


def _reference_net(genotype: str, stem: str, c: int, layers: int, classes: int) -> AestheticNet:
    cfg = AestheticNetConfig().replace(
        genotype=genotype, stem=stem, init_channels=c, layers=layers, num_buckets=classes, auxiliary=True
    )
    return build_model("aestheticnet", cfg)


# Published sizes (auxiliary head excluded, as the reference code counts them). DARTS_V2 CIFAR is printed
# exactly by the DARTS training log ("param size = 3.349342MB"); the papers print the others to two
# decimals (DARTS: 3.3M CIFAR / 4.7M mobile ImageNet; P-DARTS: 3.4M / 4.9M; their released logs: 3.43M,
# 4.72M, 4.94M). The exact integers for those three are this implementation's, pinned against regressions.
@pytest.mark.parametrize(
    "genotype,stem,c,layers,classes,published_m,exact",
    [
        ("DARTS_V2", "cifar", 36, 20, 10, 3.35, 3_349_342),
        ("PDARTS", "cifar", 36, 20, 10, 3.43, 3_433_798),
        ("DARTS_V2", "imagenet", 48, 14, 1000, 4.72, 4_718_752),
        ("PDARTS", "imagenet", 48, 14, 1000, 4.94, 4_944_352),
    ],
)
def test_parameter_counts_match_published_networks(genotype, stem, c, layers, classes, published_m, exact):
    net = _reference_net(genotype, stem, c, layers, classes)
    n = count_parameters(net, exclude_auxiliary=True)
    assert round(n / 1e6, 2) == published_m
    assert n == exact
    assert count_parameters(net, exclude_auxiliary=False) > n  # the auxiliary head exists but is not counted


def test_cifar_stem_runs_at_cifar_resolution():
    net = _reference_net("DARTS_V2", "cifar", 8, 5, 10).eval()
    assert net(torch.randn(2, 3, 32, 32)).shape == (2, 10)


def test_registry_variants_and_unknown_name():
    assert {"aestheticnet", "aestheticnet_star"} <= set(list_models())
    with pytest.raises(ValueError, match="unknown model variant 'aestheticnet_plus'.*aestheticnet_star"):
        create_model("aestheticnet_plus")


def test_star_has_cbam_and_dilated_last_stage_only():
    star = create_model("aestheticnet_star", layers=8, init_channels=8)
    base = create_model("aestheticnet", layers=8, init_channels=8)
    assert isinstance(star.attention, CBAM) and not isinstance(base.attention, CBAM)
    r1, r2 = star.reduction_layers
    for i, cell in enumerate(star.cells):
        dilations = {m.op[1].dilation[0] for m in cell.ops if isinstance(m, SepConv)}
        expected = {2} if (i > r2 and not cell.reduction) else {1}
        if dilations:
            assert dilations == expected, f"cell {i}"
    assert all(m.op[1].dilation[0] == 1 for c in base.cells for m in c.ops if isinstance(m, SepConv))


@pytest.fixture(scope="module")
def star():
    torch.manual_seed(0)
    model = create_model("aestheticnet_star").eval()
    # BN with non-trivial running statistics so batch independence is a real check
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.8, 1.2)
    return model


@pytest.mark.parametrize("size", [(224, 224), (320, 256), (512, 384), (96, 640)])
def test_star_any_multiple_of_32_batch_1_and_3(star, size):
    torch.manual_seed(1)
    x = torch.randn(3, 3, *size)
    with torch.no_grad():
        batch = star(x)
        alone = star(x[1:2])
    assert batch.shape == (3, 10) and alone.shape == (1, 10)
    assert torch.isfinite(batch).all()
    torch.testing.assert_close(batch.sum(1), torch.ones(3), rtol=0, atol=1e-6)
    torch.testing.assert_close(alone[0], batch[1], rtol=0, atol=1e-6)


@pytest.mark.parametrize("size", [(224, 200), (100, 96), (31, 32)])
def test_size_not_multiple_of_32_is_a_clear_error(star, size):
    with pytest.raises(ValueError, match=rf"input size {size[0]}x{size[1]}.*multiples of 32"):
        star(torch.randn(1, 3, *size))


def test_wrong_channels_is_a_clear_error(star):
    with pytest.raises(ValueError, match=r"\(N, 3, H, W\)"):
        star(torch.randn(1, 4, 64, 64))


def test_timm_contract(star):
    x = torch.randn(2, 3, 64, 96)
    with torch.no_grad():
        feats = star.forward_features(x)
        assert feats.shape == (2, star.num_features, 2, 3)
        assert star.forward_head(feats, pre_logits=True).shape == (2, star.num_features)
        torch.testing.assert_close(star.forward_head(feats), star(x))


def test_auxiliary_head_only_in_training():
    model = create_model("aestheticnet_star", layers=5, init_channels=8, auxiliary=True, drop_path=0.2)
    model.train()
    model.set_drop_path(0.2)
    dist, aux = model.forward_train(torch.randn(2, 3, 64, 64))
    assert aux is not None and aux.shape == dist.shape == (2, 10)
    (dist.sum() + aux.sum()).backward()
    model.eval()
    assert model.forward_train(torch.randn(1, 3, 64, 64))[1] is None
    assert isinstance(model(torch.randn(1, 3, 64, 64)), torch.Tensor)


def test_drop_path_changes_training_output_but_not_eval():
    torch.manual_seed(0)
    model = create_model("aestheticnet", layers=5, init_channels=8)
    model.set_drop_path(0.5)
    x = torch.randn(4, 3, 64, 64)
    model.train()
    a, b = model(x), model(x)
    assert not torch.allclose(a, b)
    model.eval()
    torch.testing.assert_close(model(x), model(x))


def test_config_round_trip_and_validation():
    cfg = AestheticNetStarConfig().replace(genotype="DARTS_V2", layers=8)
    back = AestheticNetStarConfig.from_dict(cfg.to_dict())
    assert back == cfg and back.genotype_name == "DARTS_V2"
    with pytest.raises(ValueError, match="unknown AestheticNetStarConfig key.*'layer'"):
        AestheticNetStarConfig.from_dict({"layer": 3})
    with pytest.raises(ValueError, match="stem='resnet'"):
        AestheticNetConfig(stem="resnet")
    with pytest.raises(ValueError, match="init_channels=7"):
        AestheticNetConfig(init_channels=7)


def test_the_model_owns_its_drop_path_schedule():
    model = create_model("aestheticnet", layers=5, init_channels=8, drop_path=0.3)
    seen = []
    model.cells[0].register_forward_hook(lambda m, args, out: seen.append(args[2]))
    model.train()
    for epoch in (0, 5):
        model.set_training_progress(epoch, 10)
        model(torch.randn(2, 3, 64, 64))
    assert seen == [0.0, 0.3 * 5 / 10]
    with pytest.raises(ValueError, match="drop-path rate 1.5"):
        model.set_drop_path(1.5)
