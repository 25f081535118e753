"""The heads: exact parameter counts from SPEC.md, module names, init, output shapes."""
import pytest
import torch

from srpose_fast.models.heads import SimpleHead, SRHead, SRPoseHead


def count(module):
    return sum(p.numel() for p in module.parameters())


def training_only(head):
    return sum(count(head.kp_encoder[i]) + count(head.converge[i]) for i in range(3))


@pytest.mark.parametrize("in_channels, total, inference", [
    ((256, 128, 64, 32), 966_789, 649_093),        # HRNet-W32 multiscale
    ((2048, 1024, 512, 256), 1_606_533, 1_288_837),  # ResNet-50
])
def test_srpose_head_parameter_counts(in_channels, total, inference):
    head = SRPoseHead(in_channels=in_channels)
    assert count(head) == total
    assert count(head) - training_only(head) == inference
    assert training_only(head) == 317_696


def test_sr_head_adds_about_0_09m_on_hrnet_w32():
    assert count(SRHead(32)) == 32 * 68 + 68 + 272 * 4 * 81 + 272


def test_srpose_head_module_names_match_the_original():
    keys = set(SRPoseHead().state_dict())
    for key in ["lr_head.0.weight", "lr_fuse.0.bias", "pre_fuse.3.1.running_mean", "pre_interpolate.2.0.weight",
                "pre_interpolate.0.2.weight", "fuse.1.weight", "post_fuse.0.1.pwconv2.weight",
                "post_fuse.2.0.dwconv.bias", "post_fuse.1.0.norm.weight", "kp_encoder.3.0.weight",
                "converge.3.conv.weight", "converge.0.conv.bias"]:
        assert key in keys


def test_srpose_head_kernel_sizes_and_upscales():
    head = SRPoseHead()
    assert [c.conv.kernel_size[0] for c in head.converge] == [3, 5, 7, 9]
    assert [c.conv.padding[0] for c in head.converge] == [1, 2, 3, 4]
    assert [c.upscale for c in head.converge] == [8, 4, 2, 4]
    assert [c.conv.groups for c in head.converge] == [17] * 4
    assert [c.conv.in_channels for c in head.converge] == [16 * 17, 8 * 17, 4 * 17, 4 * 17]


def test_srpose_head_init_follows_the_original():
    """SPEC.md section 1 "Init": only the converge convs get normal(0, 0.001) and bias 0, BN 1/0; every other
    conv and linear, kp_encoder included, keeps PyTorch's default (kaiming-uniform weights with
    a = sqrt(5): U(-b, b), b = 1 / sqrt(fan_in), std b / sqrt(3); uniform biases within the same bound)."""
    torch.manual_seed(0)
    head = SRPoseHead()
    for converge in head.converge:
        assert converge.conv.weight.std().item() == pytest.approx(0.001, rel=0.1)
        assert torch.all(converge.conv.bias == 0)
    converge_convs = {id(c.conv) for c in head.converge}
    defaults = [m for m in head.modules()
                if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear)) and id(m) not in converge_convs]
    assert {id(enc[0]) for enc in head.kp_encoder} <= {id(m) for m in defaults}
    for module in defaults:
        fan_in = module.weight[0].numel()
        bound = 1 / fan_in ** 0.5
        assert module.weight.abs().max().item() <= bound
        if module.weight.numel() >= 1000:  # enough samples for the std to be within 10%
            assert module.weight.std().item() == pytest.approx(bound / 3 ** 0.5, rel=0.1)
        assert module.bias.abs().max().item() <= bound and module.bias.abs().max().item() > 0
    for encoder in head.kp_encoder:  # what the project did before: std 0.001 and zero biases
        assert encoder[0].weight.std().item() > 0.01 and torch.any(encoder[0].bias != 0)
    for module in head.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            assert torch.all(module.weight == 1) and torch.all(module.bias == 0)


def _hrnet_like_features(n=1, h=64, w=48, channels=(32, 64, 128, 256)):
    return [torch.randn(n, c, h >> i, w >> i) for i, c in enumerate(channels)]


def test_srpose_head_train_and_eval_outputs():
    head = SRPoseHead()
    feats = _hrnet_like_features(n=2)
    outs = head(feats)
    assert [tuple(o.shape) for o in outs] == [(2, 17, 8, 6), (2, 17, 64, 48), (2, 17, 64, 48),
                                              (2, 17, 64, 48), (2, 17, 256, 192)]
    head.eval()
    final = head(feats)
    assert final.shape == (2, 17, 256, 192)


def test_srpose_head_eval_equals_last_training_output_with_frozen_bn():
    head = SRPoseHead(in_channels=(64, 32, 16, 8), out_channels=(32, 16, 8, 8), num_joints=5)
    feats = _hrnet_like_features(n=1, h=32, w=24, channels=(8, 16, 32, 64))
    head.eval()
    final = head(feats)
    head.train()
    for m in head.modules():  # batch statistics would differ from running ones
        if isinstance(m, torch.nn.BatchNorm2d):
            m.eval()
    torch.testing.assert_close(head(feats)[-1], final)


def test_srpose_head_rejects_wrong_number_of_maps():
    with pytest.raises(ValueError, match="expects 4 feature maps"):
        SRPoseHead()(_hrnet_like_features()[:3])


def test_simple_and_sr_heads_shapes():
    feats = _hrnet_like_features(n=1)
    simple = SimpleHead(32, num_deconv_layers=0, in_index=0)
    assert simple(feats)[0].shape == (1, 17, 64, 48)
    simple.eval()
    assert simple(feats).shape == (1, 17, 64, 48)
    sr = SRHead(32)
    assert sr(feats)[0].shape == (1, 17, 256, 192)
    resnet_like = [torch.randn(1, 64, 8, 6)]
    deconv = SimpleHead(64, num_deconv_layers=3, deconv_channels=16, in_index=-1)
    assert deconv(resnet_like)[0].shape == (1, 17, 64, 48)
    assert count(SimpleHead(2048)) == 2048 * 256 * 16 + 2 * 256 * 256 * 16 + 3 * 512 + 256 * 17 + 17
