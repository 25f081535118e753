"""The zoo: every name builds, train/eval outputs, each head's codec, the loss hook, and predict."""
import pytest
import torch

from srpose_fast.codecs.conventions import SRPOSE_STAGE_WEIGHTS
from srpose_fast.data import MPII
from srpose_fast.keypoint_sets import COCO
from srpose_fast.models import build_model, list_models

pytestmark = pytest.mark.usefixtures("single_thread")  # tests/conftest.py


def count(module):
    return sum(p.numel() for p in module.parameters())


def test_zoo_has_the_required_names():
    assert {"srpose_hrnet_w32", "srpose_res50", "sr_hrnet_w32", "simple_hrnet_w32", "simple_res50",
            "srpose_demo"} <= set(list_models())


@pytest.mark.parametrize("name, backbone, head", [
    ("srpose_hrnet_w32", 29_305_536, 966_789),
    ("srpose_res50", 23_508_032, 1_606_533),
    ("sr_hrnet_w32", 28_535_552, 90_644),
])
def test_parameter_counts(name, backbone, head):
    model = build_model(name)
    assert count(model.backbone) == backbone
    assert count(model.head) == head


def test_unknown_model_names_the_known_ones():
    with pytest.raises(ValueError, match="srpose_demo"):
        build_model("srpose_w33")


@pytest.fixture(scope="module")
def demo_model():
    torch.manual_seed(0)
    return build_model("srpose_demo")


def test_demo_train_and_eval_outputs(demo_model):
    images = torch.randn(2, 3, 128, 96)
    demo_model.train()
    outs = demo_model(images)
    assert [tuple(o.shape) for o in outs] == [(2, 17, 4, 3), (2, 17, 32, 24), (2, 17, 32, 24), (2, 17, 32, 24),
                                              (2, 17, 128, 96)]
    loss = demo_model.loss(outs, {"keypoints": torch.rand(2, 17, 2) * 90, "target_weight": torch.ones(2, 17)})
    loss.backward()
    assert torch.isfinite(loss) and demo_model.head.converge[0].conv.weight.grad is not None
    demo_model.eval()
    assert demo_model(images).shape == (2, 17, 128, 96)


def test_simple_head_model_outputs_quarter_resolution():
    model = build_model("simple_res50", input_size=(64, 64))
    model.eval()
    assert model(torch.randn(1, 3, 64, 64)).shape == (1, 17, 16, 16)
    assert model.heatmap_size == (16, 16) and model.codec.heatmap_sizes == ((16, 16),)


@pytest.mark.parametrize("name, input_size, sizes, sigma, stage_weights", [
    ("srpose_demo", None, ((4, 3), (32, 24), (32, 24), (32, 24), (128, 96)), 4.0, SRPOSE_STAGE_WEIGHTS),
    # 64x64 crops: a quarter of 256 in height, so sigma is a quarter of SRPose's 8 and SimpleBaseline's 2.
    ("srpose_res50", (64, 64), ((2, 2), (16, 16), (16, 16), (16, 16), (64, 64)), 2.0, SRPOSE_STAGE_WEIGHTS),
    ("sr_hrnet_w32", (64, 64), ((64, 64),), 2.0, (1.0,)),
    ("simple_res50", (64, 64), ((16, 16),), 0.5, (1.0,)),
])
def test_each_head_gets_its_codec(name, input_size, sizes, sigma, stage_weights):
    model = build_model(name, input_size=input_size)
    codec = model.codec
    assert codec.input_size == (input_size or (128, 96)) and codec.heatmap_sizes == sizes
    assert codec.sigma == sigma and codec.stage_weights == stage_weights
    assert codec.flip_indices == COCO.flip_indices and codec.target_method == "msra"
    model.train()
    outs = model(torch.randn(1, 3, *codec.input_size))
    assert [tuple(o.shape[-2:]) for o in outs] == list(sizes)


def test_the_keypoint_set_sets_the_codecs_flip_indices():
    assert build_model("srpose_demo", keypoint_set="mpii").codec.flip_indices == MPII.flip_indices


def test_old_loss_form_warns_and_equals_the_new_one():
    torch.manual_seed(1)
    model = build_model("simple_res50", input_size=(64, 64)).train()
    outs = model(torch.randn(2, 3, 64, 64))
    keypoints = torch.rand(2, 17, 2) * 60
    weight = (torch.rand(2, 17) > 0.3).float()
    new = model.loss(outs, {"keypoints": keypoints, "target_weight": weight})
    with pytest.warns(DeprecationWarning, match="heatmap pixels"):
        old = model.loss(outs, keypoints / 4, weight)  # the old form: final-heatmap pixels (stride 4)
    torch.testing.assert_close(old, new, rtol=0, atol=0)
    assert new > 0


def test_keypoint_set_override_sets_k():
    model = build_model("srpose_demo", keypoint_set="mpii")
    assert model.keypoint_set is MPII
    model.eval()
    assert model(torch.randn(1, 3, 64, 64)).shape[1] == 16


def test_predict_runs_the_flipped_pass_in_the_same_batch(demo_model):
    calls = []
    hook = demo_model.backbone.register_forward_hook(lambda m, i, o: calls.append(i[0].shape[0]))
    try:
        keypoints, scores = demo_model.predict(torch.randn(3, 3, 128, 96), flip_test=True)
    finally:
        hook.remove()
    assert calls == [6]
    assert keypoints.shape == (3, 17, 2) and scores.shape == (3, 17)


def test_predict_restores_the_training_mode(demo_model):
    demo_model.train()
    demo_model.predict(torch.randn(1, 3, 128, 96), flip_test=False)
    assert demo_model.training


def test_predict_keypoints_are_in_crop_pixels_and_follow_center_scale(demo_model):
    images = torch.randn(2, 3, 128, 96)
    plain, _ = demo_model.predict(images, flip_test=False, method="argmax")
    assert torch.all(plain[..., 0] < 96) and torch.all(plain[..., 1] < 128)
    center = torch.tensor([[300.0, 200.0], [50.0, 60.0]])
    scale = torch.tensor([[96 / 100, 128 / 100], [96 / 200, 128 / 200]])  # twice and once the crop size
    mapped, _ = demo_model.predict(images, flip_test=False, method="argmax", center=center, scale=scale)
    expected = (plain - torch.tensor([48.0, 64.0])) * torch.tensor([[2.0], [1.0]])[:, :, None] + center[:, None]
    torch.testing.assert_close(mapped, expected)


def test_predict_rejects_bad_images(demo_model):
    with pytest.raises(ValueError, match="multiples of 32"):
        demo_model.predict(torch.randn(1, 3, 100, 96))
    with pytest.raises(ValueError, match=r"\(N, 3, H, W\)"):
        demo_model.predict(torch.randn(3, 128, 96))
