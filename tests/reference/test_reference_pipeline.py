"""The reference pipeline (SRPose as the original runs it) against the project's fast path."""
import numpy as np
import torch

from srpose_fast.models import build_model
from srpose_fast.ops import multi_stage_loss
from srpose_fast.reference.loss import srpose_losses
from srpose_fast.reference.pipeline import flip_back, make_targets, reference_inference, reference_train_step


def test_flip_back_swaps_mirrors_and_shifts():
    h = torch.arange(2 * 3 * 4, dtype=torch.float32).reshape(1, 2, 3, 4)
    out = flip_back(h, [(0, 1)])
    mirrored_other = h[0, 1].flip(-1)
    torch.testing.assert_close(out[0, 0, :, 1:], mirrored_other[:, :-1])
    torch.testing.assert_close(out[0, 0, :, 0], mirrored_other[:, 0])


def test_reference_train_step_uses_the_same_loss_as_the_op():
    torch.manual_seed(0)
    model = build_model("srpose_demo")
    images = torch.randn(2, 3, 64, 64)
    keypoints = np.random.default_rng(0).uniform(0, 64, size=(2, 17, 2)).astype(np.float32)
    visible = np.ones((2, 17), np.float32)
    model.train()
    for m in model.modules():  # fixed statistics so two forward passes agree
        if isinstance(m, torch.nn.BatchNorm2d):
            m.eval()
    outputs = model(images)
    target, weight = make_targets(keypoints, visible, (64, 64), model.codec.sigma)
    reference = sum(srpose_losses(outputs, torch.from_numpy(target), torch.from_numpy(weight)).values())
    fast = multi_stage_loss(outputs, torch.from_numpy(keypoints), torch.from_numpy(visible), sigma=model.codec.sigma)
    torch.testing.assert_close(fast, reference, rtol=1e-5, atol=0)

    optimizer = torch.optim.SGD(model.parameters(), lr=0.0)
    loss = reference_train_step(model, optimizer, images, keypoints, visible, sigma=model.codec.sigma)
    assert np.isfinite(loss) and loss > 0


def test_reference_inference_matches_predict():
    torch.manual_seed(1)
    model = build_model("srpose_demo")
    with torch.no_grad():  # a visible, tie-free signal instead of the near-zero initial output
        model.head.converge[-1].conv.bias.uniform_(0.1, 1.0)
        model.head.converge[-1].conv.weight.normal_(0, 0.05)
    images = torch.randn(3, 3, 128, 96)
    center = np.array([[100.0, 120.0], [40.0, 50.0], [300.0, 200.0]], np.float32)
    scale = np.array([[1.0, 1.3], [0.5, 0.6], [2.0, 2.6]], np.float32)
    ref_kpts, ref_scores = reference_inference(model, images, center, scale, model.keypoint_set.flip_indices)
    kpts, scores = model.predict(images, flip_test=True, method="shift", center=torch.from_numpy(center),
                                 scale=torch.from_numpy(scale))
    np.testing.assert_allclose(scores.numpy(), ref_scores, rtol=1e-5)
    np.testing.assert_allclose(kpts.numpy(), ref_kpts, atol=1e-3)
