"""The original's bottom-up targets as it runs them (per sample, numpy loops) against the vectorised codec."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from srpose_fast.codecs.bottomup_targets import bottomup_heatmaps, joint_indices
from srpose_fast.reference.bottomup_loss import original_batch_targets


@pytest.mark.parametrize("size, sigma", [(64, 2.0), (96, 8.0)])
def test_vectorised_targets_equal_the_original_loops(size, sigma):
    rng = np.random.default_rng(int(sigma))
    joints = np.zeros((3, 5, 17, 3), np.float32)
    joints[..., :2] = rng.uniform(-30, size + 30, (3, 5, 17, 2))
    joints[..., 2] = rng.integers(0, 3, (3, 5, 17))
    joints[0, 1, :, :2] = joints[0, 0, :, :2] + 1.5  # overlapping people
    joints[1, 4] = 0
    joints[2, 0, 0] = (-0.5, 3.0, 2)  # truncates to 0: counted
    targets, indices = original_batch_targets(joints, size, sigma, max_people=30)
    np.testing.assert_allclose(bottomup_heatmaps(torch.from_numpy(joints), size, sigma).numpy(), targets,
                               rtol=1e-6, atol=0)
    np.testing.assert_array_equal(joint_indices(torch.from_numpy(joints), size).numpy(), indices)
    assert targets.max() == 1.0 and indices[..., 1].sum() > 20
