"""The multi-stage loss (torch backend) against a hand computation and the per-joint reference."""
import math

import pytest
import torch

from srpose_fast.ops import multi_stage_loss
from srpose_fast.reference.loss import srpose_losses
from srpose_fast.reference.pipeline import make_targets


def test_single_joint_matches_hand_computation():
    # One visible joint at an integer centre far from the border, a zero prediction:
    # the loss is sum(g^2) / (N K H W) with g the windowed Gaussian, radius 3 sigma.
    sigma, height, width = 1.0, 16, 12
    pred = torch.zeros(1, 2, height, width, requires_grad=True)
    keypoints = torch.tensor([[[5.0, 7.0], [3.0, 3.0]]])
    weight = torch.tensor([[1.0, 0.0]])
    loss = multi_stage_loss([pred], keypoints, weight, sigma=sigma, stage_weights=(1.0,))
    one_axis = sum(math.exp(-d * d / (2 * sigma ** 2)) ** 2 for d in range(-3, 4))
    assert loss.item() == pytest.approx(one_axis ** 2 / (2 * height * width), rel=1e-6)
    loss.backward()
    # d/dpred of mean((pred - t)^2) = 2 (pred - t) / count, zero for the weightless joint.
    assert pred.grad[0, 0, 7, 5].item() == pytest.approx(-2.0 / (2 * height * width), rel=1e-6)
    assert torch.all(pred.grad[0, 1] == 0)


def test_stage_weights_and_pooled_targets():
    torch.manual_seed(0)
    full = torch.rand(2, 3, 32, 24)
    low = torch.rand(2, 3, 4, 3)
    keypoints = torch.rand(2, 3, 2) * torch.tensor([24.0, 32.0])
    weight = torch.ones(2, 3)
    both = multi_stage_loss([low, full], keypoints, weight, sigma=2.0, stage_weights=(0.5, 2.0))
    only_low = multi_stage_loss([low, full], keypoints, weight, sigma=2.0, stage_weights=(1.0, 0.0))
    only_full = multi_stage_loss([low, full], keypoints, weight, sigma=2.0, stage_weights=(0.0, 1.0))
    torch.testing.assert_close(both, 0.5 * only_low + 2.0 * only_full)
    # The low-resolution stage is compared with the 8x8 block means of the full target.
    target, _ = make_targets(keypoints.numpy(), weight.numpy(), (24, 32), 2.0)
    pooled = target.reshape(2, 3, 4, 8, 3, 8).mean(axis=(3, 5))
    expected = ((low.numpy() - pooled) ** 2).mean()
    assert only_low.item() == pytest.approx(expected, rel=1e-5)


def test_matches_the_per_joint_reference_on_srpose_shapes():
    torch.manual_seed(1)
    n, k = 2, 17
    sizes = [(8, 6), (64, 48), (64, 48), (64, 48), (256, 192)]
    preds = [torch.rand(n, k, h, w, requires_grad=True) for h, w in sizes]
    keypoints = torch.rand(n, k, 2) * torch.tensor([230.0, 300.0]) - 20  # some fall off the map
    visible = (torch.rand(n, k) > 0.2).float()
    loss = multi_stage_loss(preds, keypoints, visible)
    target, target_weight = make_targets(keypoints.numpy(), visible.numpy(), (192, 256), 8.0)
    reference = sum(srpose_losses(preds, torch.from_numpy(target), torch.from_numpy(target_weight)).values())
    torch.testing.assert_close(loss, reference, rtol=1e-5, atol=1e-8)
    grads = torch.autograd.grad(loss, preds)
    reference_grads = torch.autograd.grad(reference, preds)
    for g, r in zip(grads, reference_grads):
        # fp32 sums in a different order: relative 1e-5 of the gradient's own scale.
        torch.testing.assert_close(g, r, rtol=1e-5, atol=1e-5 * r.abs().max().item())


def test_low_precision_predictions_give_a_float32_loss():
    preds = [torch.rand(1, 2, 8, 8, dtype=torch.bfloat16)]
    loss = multi_stage_loss(preds, torch.full((1, 2, 2), 4.0), torch.ones(1, 2), sigma=1.0, stage_weights=(1.0,))
    assert loss.dtype == torch.float32 and torch.isfinite(loss)


@pytest.mark.parametrize("kwargs, message", [
    (dict(preds=[], keypoints=torch.zeros(1, 2, 2), target_weight=torch.ones(1, 2)), "empty"),
    (dict(preds=[torch.zeros(1, 2, 8, 8)], keypoints=torch.zeros(1, 3, 2), target_weight=torch.ones(1, 2)),
     "keypoints must be"),
    (dict(preds=[torch.zeros(1, 2, 8, 8)], keypoints=torch.zeros(1, 2, 2), target_weight=torch.ones(2, 2)),
     "target_weight must be"),
    (dict(preds=[torch.zeros(1, 2, 8)], keypoints=torch.zeros(1, 2, 2), target_weight=torch.ones(1, 2)),
     "must be \\(N=1, K=2, H, W\\)"),
    (dict(preds=[torch.zeros(1, 2, 3, 3), torch.zeros(1, 2, 8, 8)], keypoints=torch.zeros(1, 2, 2),
          target_weight=torch.ones(1, 2)), "does not divide"),
])
def test_bad_inputs_raise_clear_errors(kwargs, message):
    stage_weights = (1.0,) * len(kwargs["preds"])
    with pytest.raises(ValueError, match=message):
        multi_stage_loss(**kwargs, stage_weights=stage_weights)


def test_stage_weight_count_and_sigma_and_method_are_checked():
    args = ([torch.zeros(1, 2, 8, 8)], torch.zeros(1, 2, 2), torch.ones(1, 2))
    with pytest.raises(ValueError, match="stage weights"):
        multi_stage_loss(*args)
    with pytest.raises(ValueError, match="sigma"):
        multi_stage_loss(*args, sigma=0.0, stage_weights=(1.0,))
    with pytest.raises(ValueError, match="target_method"):
        multi_stage_loss(*args, stage_weights=(1.0,), target_method="gaussian")
    with pytest.raises(ValueError, match="backend"):
        multi_stage_loss(*args, stage_weights=(1.0,), backend="opencl")
