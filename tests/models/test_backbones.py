"""Backbones: parameter counts against the paper / torchvision, output strides, HRNet fusion, checkpoints."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from srpose_fast.models.backbones import (CheckpointMismatchError, HRNet, ResNet, build_backbone,
                                          load_pretrained)
from srpose_fast.models.backbones.hrnet import HRModule


def count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def randomize(module: torch.nn.Module, seed: int = 0) -> None:
    """Distinct values everywhere (BN init is all ones/zeros) so a wrong key mapping shows up."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for tensor in module.state_dict().values():
            if tensor.is_floating_point():
                tensor.copy_(torch.rand(tensor.shape, generator=gen) + 0.5)
            else:
                tensor.fill_(int(torch.randint(1, 1000, (), generator=gen)))


# ---------------------------------------------------------------- parameter counts

def test_resnet50_count_is_exact():
    assert count(ResNet(50)) == 23_508_032


@pytest.mark.parametrize("depth,expected", [(18, 11_176_512), (34, 21_284_672), (101, 42_500_160)])
def test_resnet_counts_match_torchvision_without_fc(depth, expected):
    # torchvision totals 11,689,512 / 21,797,672 / 44,549,160 minus fc (512*1000+1000 or 2048*1000+1000).
    assert count(ResNet(depth)) == expected


@pytest.mark.parametrize("name,multiscale,paper_millions", [
    ("hrnet_w32", False, 28.54), ("hrnet_w32", True, 29.30), ("hrnet_w48", False, 63.6),
])
def test_hrnet_counts_match_paper(name, multiscale, paper_millions):
    measured = count(build_backbone(name, multiscale_output=multiscale))
    assert abs(measured - paper_millions * 1e6) <= 0.002 * paper_millions * 1e6, measured


def test_hrnet_multiscale_adds_the_last_fuse_rows_only():
    single, multi = HRNet(32, multiscale_output=False), HRNet(32, multiscale_output=True)
    extra = set(multi.state_dict()) - set(single.state_dict())
    assert extra and all(k.startswith(("stage4.2.fuse_layers.1.", "stage4.2.fuse_layers.2.",
                                       "stage4.2.fuse_layers.3.")) for k in extra)
    assert set(single.state_dict()) < set(multi.state_dict())


def test_official_key_names():
    keys = set(HRNet(32).state_dict())
    for key in ("conv1.weight", "bn2.running_var", "layer1.0.downsample.0.weight", "layer1.3.conv3.weight",
                "transition1.0.0.weight", "transition1.1.0.0.weight", "transition2.2.0.0.weight",
                "transition3.3.0.1.bias", "stage2.0.branches.1.3.bn2.weight",
                "stage3.3.fuse_layers.0.2.0.weight",  # up: 1x1 conv of branch 2 into branch 0
                "stage4.2.fuse_layers.3.0.0.0.weight",  # down: first of three 3x3 stride-2 convs
                "stage4.2.fuse_layers.3.0.2.1.weight"):
        assert key in keys, key
    resnet = set(ResNet(50).state_dict())
    assert {"layer4.2.bn3.weight", "layer2.0.downsample.1.running_mean", "layer3.5.conv2.weight"} <= resnet
    assert not any(k.startswith("fc.") for k in resnet)
    assert ResNet(50).layer2[0].conv2.stride == (2, 2) and ResNet(50).layer2[0].conv1.stride == (1, 1)


# ---------------------------------------------------------------- shapes and strides

def expected_shapes(height, width, channels):
    return [(1, c, math.ceil(height / s), math.ceil(width / s)) for c, s in zip(channels, (4, 8, 16, 32))]


@pytest.mark.parametrize("name,size", [
    ("resnet18", (67, 45)), ("resnet34", (64, 48)), ("resnet50", (64, 48)),
    ("hrnet_w32", (64, 48)), ("hrnet_w8_small", (67, 45)), ("hrnet_w8_small", (128, 96)),
])
def test_multiscale_outputs_finest_first(name, size):
    model = build_backbone(name).eval()
    with torch.no_grad():
        outs = model(torch.randn(1, 3, *size))
    assert len(model.out_channels) == 4
    assert [tuple(o.shape) for o in outs] == expected_shapes(*size, model.out_channels)


def test_resnet_channels():
    assert ResNet(50).out_channels == (256, 512, 1024, 2048)
    assert ResNet(18).out_channels == (64, 128, 256, 512)
    assert ResNet(18, in_channels=1).eval()(torch.randn(1, 1, 32, 32))[0].shape == (1, 64, 8, 8)


@pytest.mark.parametrize("name,size", [("hrnet_w32", (64, 48)), ("hrnet_w8_small", (67, 45))])
def test_hrnet_single_scale_returns_one_stride4_map(name, size):
    model = build_backbone(name, multiscale_output=False).eval()
    assert model.out_channels == (model.width,)
    with torch.no_grad():
        outs = model(torch.randn(1, 3, *size))
    assert [tuple(o.shape) for o in outs] == expected_shapes(*size, model.out_channels)[:1]


@pytest.mark.parametrize("multiscale", [True, False])
def test_every_parameter_gets_a_gradient(multiscale):
    model = build_backbone("hrnet_w8_small", multiscale_output=multiscale)
    outs = model(torch.randn(2, 3, 64, 48))
    sum(o.square().mean() for o in outs).backward()
    unused = [n for n, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert not unused


def test_hrnet_fusion_sums_scaled_branches():
    """Branches made identity (branch BN affine 0: block = ReLU(x) = x for x >= 0); check fuse rows by hand."""
    module = HRModule([4, 6, 8], num_blocks=1).eval()
    randomize(module)
    with torch.no_grad():
        for name, tensor in module.state_dict().items():
            if name.startswith("branches.") and ".bn" in name and name.endswith(("weight", "bias")):
                tensor.zero_()
    # Odd sizes, as the stride-2 convs produce them: 9 -> 5 -> 3.
    xs = [torch.rand(1, 4, 9, 7), torch.rand(1, 6, 5, 4), torch.rand(1, 8, 3, 2)]
    with torch.no_grad():
        outs = module([x.clone() for x in xs])

    def bn(t, layer):
        return F.batch_norm(t, layer.running_mean, layer.running_var, layer.weight, layer.bias, eps=layer.eps)

    def up(x, j, i):
        conv, norm = module.fuse_layers[i][j][0], module.fuse_layers[i][j][1]
        y = bn(F.conv2d(x, conv.weight), norm)
        k = 2 ** (j - i)
        y = y.repeat_interleave(k, dim=2).repeat_interleave(k, dim=3)
        return y[..., :xs[i].shape[2], :xs[i].shape[3]]

    def down(x, j, i):
        for step, seq in enumerate(module.fuse_layers[i][j]):
            x = bn(F.conv2d(x, seq[0].weight, stride=2, padding=1), seq[1])
            if step < i - j - 1:
                x = x.relu()
        return x

    with torch.no_grad():
        expected = [
            (xs[0] + up(xs[1], 1, 0) + up(xs[2], 2, 0)).relu(),
            (down(xs[0], 0, 1) + xs[1] + up(xs[2], 2, 1)).relu(),
            (down(xs[0], 0, 2) + down(xs[1], 1, 2) + xs[2]).relu(),
        ]
    for out, ref in zip(outs, expected):
        torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-5)


def test_build_backbone_overrides_and_unknown_name():
    assert build_backbone("hrnet_w32", multiscale_output=False).out_channels == (32,)
    assert build_backbone("hrnet_w48").out_channels == (48, 96, 192, 384)
    with pytest.raises(ValueError, match="resnet50.*hrnet_w8_small"):
        build_backbone("resnet51")
    with pytest.raises(ValueError, match="depth"):
        ResNet(42)


# ---------------------------------------------------------------- checkpoints

def save(tmp_path, state, name="ckpt.pth"):
    path = tmp_path / name
    torch.save(state, path)
    return path


def assert_same_state(a: torch.nn.Module, b: torch.nn.Module):
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for key in sa:
        assert torch.equal(sa[key], sb[key]), key


def test_round_trip_with_wrappers_prefixes_and_heads(tmp_path):
    source = build_backbone("hrnet_w8_small")
    randomize(source)
    state = {f"module.backbone.{k}": v for k, v in source.state_dict().items()}
    state["module.backbone.fc.weight"] = torch.zeros(3, 3)
    state["module.backbone.classifier.bias"] = torch.zeros(3)
    state["module.backbone.incre_modules.0.0.conv1.weight"] = torch.zeros(1)
    state["module.keypoint_head.final_layer.weight"] = torch.zeros(17, 8, 1, 1)
    path = save(tmp_path, {"meta": {"epoch": 3}, "state_dict": state})

    target = build_backbone("hrnet_w8_small")
    with pytest.warns(UserWarning, match=r"whole pose model; its 1 head keys are not loaded here .* checkpoint="):
        ignored = load_pretrained(target, path)
    assert_same_state(source, target)
    assert ignored == sorted(["module.backbone.fc.weight", "module.backbone.classifier.bias",
                              "module.backbone.incre_modules.0.0.conv1.weight",
                              "module.keypoint_head.final_layer.weight"])


def test_torchvision_style_resnet_file(tmp_path):
    # torchvision's file: bare state dict, fc present, no num_batches_tracked (pre-1.0 checkpoints).
    source = ResNet(18)
    randomize(source)
    state = {k: v for k, v in source.state_dict().items() if not k.endswith("num_batches_tracked")}
    state["fc.weight"], state["fc.bias"] = torch.zeros(1000, 512), torch.zeros(1000)
    target = ResNet(18)
    assert load_pretrained(target, save(tmp_path, {"model": state})) == ["fc.bias", "fc.weight"]
    for key, value in state.items():
        if not key.startswith("fc."):
            assert torch.equal(target.state_dict()[key], value), key


def test_multiscale_file_into_single_scale_model(tmp_path):
    source = build_backbone("hrnet_w8_small", multiscale_output=True)
    randomize(source)
    target = build_backbone("hrnet_w8_small", multiscale_output=False)
    ignored = load_pretrained(target, save(tmp_path, source.state_dict()))
    assert ignored and all(k.startswith(("stage4.0.fuse_layers.1.", "stage4.0.fuse_layers.2.",
                                         "stage4.0.fuse_layers.3.")) for k in ignored)
    for key, value in target.state_dict().items():
        assert torch.equal(value, source.state_dict()[key]), key


def test_unknown_key_is_named(tmp_path):
    state = ResNet(18).state_dict()
    state["layer5.0.conv1.weight"] = torch.zeros(1)
    with pytest.raises(CheckpointMismatchError, match=r"unexpected in the file \(1\): layer5\.0\.conv1\.weight"):
        load_pretrained(ResNet(18), save(tmp_path, state))
    # A non-last fuse row is not a single-scale leftover: still unplaceable.
    state = build_backbone("hrnet_w8_small").state_dict()
    state["stage2.0.fuse_layers.5.0.0.weight"] = torch.zeros(1)
    with pytest.raises(CheckpointMismatchError, match=r"stage2\.0\.fuse_layers\.5\.0\.0\.weight"):
        load_pretrained(build_backbone("hrnet_w8_small"), save(tmp_path, state))


def test_missing_key_is_named(tmp_path):
    state = ResNet(18).state_dict()
    del state["layer3.1.bn2.running_var"]
    with pytest.raises(CheckpointMismatchError, match=r"missing from the file \(1\): layer3\.1\.bn2\.running_var") as err:
        load_pretrained(ResNet(18), save(tmp_path, state))
    assert err.value.missing == ["layer3.1.bn2.running_var"] and not err.value.unexpected


def test_shape_mismatch_names_both_shapes(tmp_path):
    state = {f"backbone.{k}": v for k, v in ResNet(18).state_dict().items()}
    state["backbone.conv1.weight"] = torch.zeros(64, 4, 7, 7)
    with pytest.raises(CheckpointMismatchError, match=r"other shapes, file vs model \(1\): backbone\.conv1\.weight \(64, 4, 7, 7\) vs \(64, 3, 7, 7\)"):
        load_pretrained(ResNet(18), save(tmp_path, state))
    with pytest.raises(CheckpointMismatchError, match="shape"):  # even when not strict
        load_pretrained(ResNet(18), save(tmp_path, state), strict=False)


def test_not_strict_ignores_extra_and_keeps_missing(tmp_path):
    source = ResNet(18)
    randomize(source)
    state = source.state_dict()
    state["extra.weight"] = torch.zeros(2)
    del state["conv1.weight"]
    target = ResNet(18)
    before = target.conv1.weight.detach().clone()
    with pytest.warns(UserWarning, match="conv1.weight"):
        ignored = load_pretrained(target, save(tmp_path, state), strict=False)
    assert ignored == ["extra.weight"]
    assert torch.equal(target.conv1.weight, before)
    assert torch.equal(target.layer4[1].bn2.bias, source.layer4[1].bn2.bias)


def test_missing_file_names_the_path(tmp_path):
    path = tmp_path / "nowhere" / "resnet50.pth"
    with pytest.raises(FileNotFoundError, match="resnet50.pth"):
        load_pretrained(ResNet(18), path)


def test_file_without_tensors_is_rejected(tmp_path):
    with pytest.raises(ValueError, match="no tensors"):
        load_pretrained(ResNet(18), save(tmp_path, {"state_dict": {"epoch": 1}}))
