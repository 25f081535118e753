"""Bottom-up models: the heads' parameter counts (SPEC.md section 6), the original's module names and
initialisation, the output layout, the SR head through the sr_head op, the loss and predict wiring, and an
SRPose-fork checkpoint loaded by name."""
from __future__ import annotations

import pytest
import torch

from srpose_fast.cli import main
from srpose_fast.codecs.bottomup_targets import bottomup_heatmaps, joint_indices
from srpose_fast.losses.associative_embedding import associative_embedding_loss
from srpose_fast.models import build_model, list_models
from srpose_fast.models.bottomup_zoo import BOTTOMUP_SPECS, build_bottomup_model
from srpose_fast.models.heads.bottomup import BottomUpSimpleSRHead
from srpose_fast.ops.sr_head import sr_head_reference

pytestmark = pytest.mark.usefixtures("single_thread")

# SPEC.md section 6: BottomUpSimpleSRHead as the original builds it. The baselines' heads follow from the
# original's BottomUpSimpleHead: Conv1x1(C -> 34) after the same deconvolutions (32 * 34 + 34 = 1,122;
# 10,487,296 + 256 * 34 + 34 = 10,496,034).
HEAD_PARAMETERS = {"bottomup_sr_hrnet_w32": 91_205, "bottomup_sr_res50": 10_597_541,
                   "bottomup_simple_hrnet_w32": 1_122, "bottomup_simple_res50": 10_496_034}
BACKBONE_PARAMETERS = {"hrnet_w32": 28_535_552, "resnet50": 23_508_032}
DECONV_KEYS = {f"deconv_layers.{i}.{p}" for i in (0, 3, 6) for p in ("weight",)} | {
    f"deconv_layers.{i}.{p}" for i in (1, 4, 7) for p in ("weight", "bias", "running_mean", "running_var",
                                                             "num_batches_tracked")}
SR_KEYS = {"tag_head.weight", "tag_head.bias", "kp_encoder.0.weight", "kp_encoder.0.bias",
           "heatmap_head.weight", "heatmap_head.bias"}


def count(module) -> int:
    return sum(p.numel() for p in module.parameters())


@pytest.mark.parametrize("name", sorted(HEAD_PARAMETERS))
def test_parameter_counts_names_and_init(name):
    model = build_bottomup_model(name)
    assert count(model.head) == HEAD_PARAMETERS[name]
    assert count(model.backbone) == BACKBONE_PARAMETERS[BOTTOMUP_SPECS[name].backbone]
    keys = set(model.head.state_dict())
    deconv = DECONV_KEYS if "res50" in name else set()
    assert keys == (SR_KEYS if "_sr_" in name else {"final_layer.weight", "final_layer.bias"}) | deconv
    for module in model.head.modules():  # the original's init_weights: N(0, 0.001), zero bias; BN (1, 0)
        if isinstance(module, (torch.nn.Conv2d, torch.nn.ConvTranspose2d)):
            assert module.weight.std().item() == pytest.approx(0.001, rel=0.2 if module.weight.numel() > 500 else 0.6)
            assert module.bias is None or not module.bias.any()
        elif isinstance(module, torch.nn.BatchNorm2d):
            assert (module.weight == 1).all() and not module.bias.any()
    codec = model.codec
    sr = "_sr_" in name
    assert (codec.input_size, codec.heatmap_size, codec.sigma) == ((512, 512, 8.0) if sr else (512, 128, 2.0))
    assert (codec.nms_kernel, codec.nms_padding) == ((11, 5) if name == "bottomup_sr_hrnet_w32" else (5, 2))
    assert model.kind == "bottom_up"


def test_sr_head_output_layout_through_the_op():
    # HRNet-W32 with the SR head on a 128 x 128 input: 17 heatmaps then 17 tags at the input's resolution.
    torch.manual_seed(0)
    model = build_bottomup_model("bottomup_sr_hrnet_w32", backend="torch").eval()
    for p in model.head.parameters():  # away from the tiny init, so a wrong layout shows
        torch.nn.init.normal_(p, std=0.1)
    images = torch.randn(1, 3, 128, 128)
    with torch.no_grad():
        out = model(images)
        x = model.backbone(images)[0]
        head = model.head
        heatmaps = sr_head_reference(head.kp_encoder(x), head.heatmap_head.weight, head.heatmap_head.bias, 4)
        tags = head.tag_head(x)
    assert out.shape == (1, 34, 128, 128)
    torch.testing.assert_close(out[:, :17], heatmaps)
    torch.testing.assert_close(out[:, 17:], tags.repeat_interleave(4, 2).repeat_interleave(4, 3))  # nearest
    model.train()
    train_out = model(images)
    assert isinstance(train_out, list) and len(train_out) == 1 and train_out[0].shape == (1, 34, 128, 128)


def test_simple_head_output_at_a_quarter():
    model = build_bottomup_model("bottomup_simple_res50", input_size=128).eval()
    with torch.no_grad():
        out = model(torch.randn(1, 3, 128, 128))
    assert out.shape == (1, 34, 32, 32) and model.codec.heatmap_size == 32 and model.codec.sigma == 0.5


def test_triton_head_matches_torch():
    # A small head (2 joints, 6 channels, 5 x 7 features) keeps the interpreter quick; the op itself is
    # tested for every backend in tests/ops/test_sr_head.py.
    pytest.importorskip("triton")
    torch.manual_seed(1)
    head = BottomUpSimpleSRHead(6, num_joints=2, backend="torch").eval()
    for p in head.parameters():
        torch.nn.init.normal_(p, std=0.1)
    feats = [torch.randn(2, 6, 5, 7)]
    with torch.no_grad():
        reference = head(feats)
        head.set_backend("triton")
        fused = head(feats)
    assert fused.shape == (2, 4, 20, 28)
    torch.testing.assert_close(fused, reference, rtol=1e-4, atol=1e-5)


def test_loss_goes_through_the_head_and_the_codec():
    torch.manual_seed(2)
    model = build_bottomup_model("bottomup_demo", input_size=64, backend="torch")
    images = torch.randn(2, 3, 64, 64)
    joints = torch.zeros(2, 30, 17, 3)
    joints[:, :3, :, :2] = torch.rand(2, 3, 17, 2) * 64
    joints[:, :3, :, 2] = 2
    mask = torch.ones(2, 64, 64)
    mask[1, :20] = 0
    outputs = model(images)
    batch = {"image": images, "joints": joints, "mask": mask}
    loss = model.loss(outputs, batch)
    # bottomup_demo: sigma = 64 / 32 = 2 at this size, and the "max" push
    assert model.codec.sigma == 2.0 and model.head.loss_type == "max"
    expected = associative_embedding_loss(outputs[0], bottomup_heatmaps(joints, 64, 2.0), mask,
                                          joint_indices(joints, 64), loss_type="max")
    torch.testing.assert_close(loss, expected["loss"])
    assert set(model.loss_terms(outputs, batch)) == {"heatmap_loss", "push_loss", "pull_loss", "loss"}
    loss.backward()
    assert model.head.heatmap_head.weight.grad.abs().sum() > 0 and model.head.tag_head.weight.grad.abs().sum() > 0


def test_predict_runs_the_flipped_images_in_one_batch():
    torch.manual_seed(3)
    model = build_bottomup_model("bottomup_demo", input_size=64, backend="torch").train()
    for p in model.head.parameters():
        torch.nn.init.normal_(p, std=0.3)
    images = torch.randn(1, 3, 64, 64)
    center, scale = (40.0, 30.0), (0.5, 0.5)
    people = model.predict(images, center=center, scale=scale)
    assert model.training  # restored
    model.eval()
    with torch.no_grad():
        out = model.head(model.backbone(images))
        flipped = model.head(model.backbone(images.flip(3)))
    expected = model.codec.decode(out, flipped, input_size=(64, 64), center=center, scale=scale)
    assert len(people) == 1 and len(people[0]) == len(expected[0]) > 0
    torch.testing.assert_close(torch.from_numpy(people[0].keypoints), torch.from_numpy(expected[0].keypoints))
    assert people[0].keypoints.shape[1:] == (17, 2)
    assert len(model.predict(images, flip_test=False)[0].scores.shape) == 1


def test_srpose_fork_checkpoint_loads_by_name(tmp_path):
    torch.manual_seed(4)
    source = build_bottomup_model("bottomup_demo")
    for p in source.head.parameters():
        torch.nn.init.normal_(p)
    state = {("keypoint_head." + k[len("head."):] if k.startswith("head.") else k): v
             for k, v in source.state_dict().items()}
    path = tmp_path / "epoch_300.pth"
    torch.save({"meta": {"epoch": 300}, "state_dict": state}, path)
    loaded = build_model("bottomup_demo", checkpoint=str(path))
    for key, value in source.state_dict().items():
        torch.testing.assert_close(loaded.state_dict()[key], value)


@pytest.mark.parametrize("kwargs, message", [
    (dict(input_size=(128, 96)), "square"),
    (dict(input_size=100), "multiple of 64"),
    (dict(backend="gpu"), "backend"),
    (dict(loss_type="square"), "loss_type"),
])
def test_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        build_bottomup_model("bottomup_demo", **kwargs)
    with pytest.raises(ValueError, match="unknown bottom-up model"):
        build_bottomup_model("bottomup_sr_hrnet_w64")
    with pytest.raises(ValueError, match="unknown model"):
        build_model("bottomup_sr_hrnet_w64")


def test_zoo_lists_and_builds_the_bottomup_models(capsys):
    assert set(BOTTOMUP_SPECS) <= set(list_models())
    assert main(["models"]) == 0
    listing = capsys.readouterr().out
    assert "bottomup_sr_hrnet_w32      512x512  AE + SR head, HRNet-W32 (paper: 67.1 AP)" in listing
    assert all(name in listing for name in BOTTOMUP_SPECS)
    model = build_model("bottomup_demo", input_size=64, backend="torch")
    assert model.kind == "bottom_up" and model.input_size == (64, 64) and model.backend == "torch"
