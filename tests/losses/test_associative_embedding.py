"""The bottom-up loss against values worked by hand from SPEC.md section 6's formulas."""
from __future__ import annotations

import math

import pytest
import torch

from srpose_fast.losses.associative_embedding import (associative_embedding_loss, masked_heatmap_loss,
                                                      tag_loss)
from srpose_fast.reference.bottomup_loss import original_loss


def indices_of(people, max_people=3, num_joints=2):
    """Joint indices (1, M, K, 2) from lists of flat indices, one list per person."""
    out = torch.zeros(1, max_people, num_joints, 2, dtype=torch.int32)
    for m, flat in enumerate(people):
        for j, index in enumerate(flat):
            out[0, m, j] = torch.tensor([index, 1])
    return out


def tag_map(values: dict[int, float], shape=(1, 2, 2, 3)) -> torch.Tensor:
    tags = torch.zeros(shape).flatten()
    for index, value in values.items():
        tags[index] = value
    return tags.reshape(shape)


def test_two_people_by_hand():
    # K = 2 tag maps of 2 x 3: flat index = k * 6 + y * 3 + x.
    # Person A: joint 0 at (x 1, y 0) -> index 1, tag 1; joint 1 at (x 2, y 1) -> index 11, tag 3.
    #   r_A = (1 + 3) / 2 = 2, pull_A = ((1 - 2)^2 + (3 - 2)^2) / 2 = 1.
    # Person B: joint 0 at (x 0, y 1) -> index 3, tag -1. r_B = -1, pull_B = 0.
    # P = 2: pull = (1 + 0) / 2 = 0.5; push ('exp') = 0.5 (e^-9 + e^-9) / (2 * 1) = 0.5 e^-9;
    # push ('max') = 0.5 * 2 max(0, 1 - 3) / 2 = 0.
    tags = tag_map({1: 1.0, 11: 3.0, 3: -1.0})
    indices = indices_of([[1, 11], [3]])
    push, pull = tag_loss(tags, indices, "exp")
    assert pull.item() == pytest.approx(0.5, rel=1e-6)
    assert push.item() == pytest.approx(0.5 * math.exp(-9), rel=1e-5)
    push, pull = tag_loss(tags, indices, "max")
    assert push.item() == 0.0 and pull.item() == pytest.approx(0.5, rel=1e-6)


def test_three_people_push_by_hand():
    # One joint each, r = 0, 1, 3: pull = 0; P = 3, P (P - 1) = 6;
    # push ('exp') = 0.5 * 2 (e^-1 + e^-9 + e^-4) / 6; push ('max') = 0.5 * 2 (0 + 0 + 0) / 6 with
    # |d| = 1, 3, 2 -> 0. With r = 0, 0.25, 3: 'max' = 0.5 * 2 * 0.75 / 6 = 0.125.
    tags = tag_map({0: 0.0, 1: 1.0, 2: 3.0})
    indices = indices_of([[0], [1], [2]])
    push, pull = tag_loss(tags, indices, "exp")
    assert pull.item() == 0.0
    assert push.item() == pytest.approx((math.exp(-1) + math.exp(-9) + math.exp(-4)) / 6, rel=1e-6)
    assert tag_loss(tags, indices, "max")[0].item() == 0.0
    tags = tag_map({0: 0.0, 1: 0.25, 2: 3.0})
    assert tag_loss(tags, indices, "max")[0].item() == pytest.approx(0.125, rel=1e-6)


def test_one_and_zero_people():
    # One person with tags 2 and 4: pull = ((2 - 3)^2 + (4 - 3)^2) / 2 = 1, push = 0 (P < 2).
    tags = torch.cat([tag_map({0: 2.0, 7: 4.0}), tag_map({})])
    indices = torch.cat([indices_of([[0, 7]]), indices_of([])])
    push, pull = tag_loss(tags, indices)
    assert push.tolist() == [0.0, 0.0]
    assert pull.tolist() == [pytest.approx(1.0), 0.0]


def test_heatmap_loss_by_hand():
    # Image 0: pred (1, 2), target (0, 0), mask (1, 0): (1 + 0) / 2 = 0.5.
    # Image 1: pred (0.5, 0.5), target (0.5, 2.5), mask (1, 1): (0 + 4) / 2 = 2.
    pred = torch.tensor([[[[1.0, 2.0]]], [[[0.5, 0.5]]]])
    target = torch.tensor([[[[0.0, 0.0]]], [[[0.5, 2.5]]]])
    mask = torch.tensor([[[1.0, 0.0]], [[1.0, 1.0]]])
    assert masked_heatmap_loss(pred, target, mask).tolist() == [0.5, 2.0]


def test_total_is_batch_means_times_factors():
    # One image: heatmaps 0 against targets 0 except one pixel (pred 1, target 0, mask 1) of
    # 2 x 2 x 3 = 12: heatmap loss = 1 / 12. Tags as in test_two_people_by_hand.
    heat = torch.zeros(1, 2, 2, 3)
    heat[0, 1, 0, 2] = 1.0
    output = torch.cat([heat, tag_map({1: 1.0, 11: 3.0, 3: -1.0})], dim=1)
    losses = associative_embedding_loss(output, torch.zeros_like(heat), torch.ones(1, 2, 3),
                                        indices_of([[1, 11], [3]]))
    assert losses["heatmap_loss"].item() == pytest.approx(1 / 12, rel=1e-6)
    assert losses["push_loss"].item() == pytest.approx(1e-3 * 0.5 * math.exp(-9), rel=1e-5)
    assert losses["pull_loss"].item() == pytest.approx(1e-3 * 0.5, rel=1e-6)
    assert losses["loss"].item() == pytest.approx(1 / 12 + 1e-3 * (0.5 + 0.5 * math.exp(-9)), rel=1e-6)


@pytest.mark.parametrize("loss_type", ["exp", "max"])
def test_values_and_gradients_match_the_original_loops(loss_type):
    # reference.bottomup_loss runs the original's per-person loops (AELoss.singleTagLoss); the heatmap term is
    # compared too, with a random mask.
    torch.manual_seed(0)
    n, k, h, w, m = 3, 5, 7, 9, 6
    output = (torch.randn(n, 2 * k, h, w, dtype=torch.float64) * 0.7).requires_grad_()
    target = torch.rand(n, k, h, w, dtype=torch.float64)
    mask = (torch.rand(n, h, w) > 0.3).double()
    indices = torch.zeros(n, m, k, 2, dtype=torch.int32)
    for i in range(n):
        for p in range(i + 2 if i < 2 else 0):  # 2 and 3 people, then none
            count = int(torch.randint(1, k + 1, ()))
            joints = torch.randperm(k)[:count].sort().values
            flat = joints * h * w + torch.randint(0, h * w, (count,))
            indices[i, p, :count, 0] = flat.int()
            indices[i, p, :count, 1] = 1
    indices[0, 1, 0] = indices[0, 0, 0]  # two people indexing one pixel: both get its gradient
    terms = associative_embedding_loss(output, target, mask, indices, loss_type=loss_type)
    expected = original_loss(output, target, mask, indices, loss_type=loss_type)
    grads = torch.autograd.grad(terms["loss"], output)[0]
    expected_grads = torch.autograd.grad(expected["loss"], output)[0]
    for name in ("heatmap_loss", "push_loss", "pull_loss", "loss"):
        torch.testing.assert_close(terms[name], expected[name].to(terms[name].dtype), rtol=1e-9, atol=1e-12)
    torch.testing.assert_close(grads, expected_grads, rtol=1e-9, atol=1e-12)
    assert expected["push_loss"] > 0 and expected["pull_loss"] > 0


def test_bad_inputs_say_what_is_wrong():
    with pytest.raises(ValueError, match="loss_type"):
        tag_loss(torch.zeros(1, 2, 2, 3), indices_of([[1]]), "square")
    with pytest.raises(RuntimeError, match="out of bounds"):
        tag_loss(torch.zeros(1, 2, 2, 3), indices_of([[12]]))
    with pytest.raises(ValueError, match="mask"):
        masked_heatmap_loss(torch.zeros(1, 2, 3, 4), torch.zeros(1, 2, 3, 4), torch.zeros(1, 4, 3))
