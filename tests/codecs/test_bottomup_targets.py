"""Bottom-up targets against SPEC.md section 6's formulas, on constructed cases."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from pycocotools import mask as mask_utils

from srpose_fast.codecs.bottomup_targets import bottomup_heatmaps, ignore_mask, joint_indices
from srpose_fast.data.synthetic_multi import uncompressed_rle


def spec_heatmaps(joints: np.ndarray, height: int, width: int, sigma: float) -> np.ndarray:
    """SPEC's heatmap, one joint at a time: window [int(c) - 3s - 1, int(c) + 3s + 2) of exp(-d^2 / 2s^2)
    around the truncated position, maximum over people (integer sigma: the window is 6s + 3 wide)."""
    out = np.zeros((joints.shape[1], height, width), np.float32)
    r = int(3 * sigma + 1)
    for person in joints:
        for k, (x, y, v) in enumerate(person):
            xi, yi = int(x), int(y)
            if v <= 0 or not (0 <= xi < width and 0 <= yi < height):
                continue
            for py in range(max(0, yi - r), min(height, yi + r + 1)):
                for px in range(max(0, xi - r), min(width, xi + r + 1)):
                    g = np.exp(np.float32(-((px - xi) ** 2 + (py - yi) ** 2) / (2 * sigma ** 2)))
                    out[k, py, px] = max(out[k, py, px], g)
    return out


def test_one_joint_window_and_peak():
    # Truncated to (x, y) = (20, 10); sigma 2: window x in [20-7, 20+8) = [13, 28), peak 1 at (10, 20).
    joints = np.zeros((1, 2, 3), np.float32)
    joints[0, 1] = (20.9, 10.99, 2)
    hm = bottomup_heatmaps(joints, (32, 48), 2.0).numpy()
    assert hm.shape == (2, 32, 48)
    assert hm[0].max() == 0  # joint 0 is unlabelled
    assert hm[1, 10, 20] == 1.0
    assert hm[1, 10, 27] == pytest.approx(math.exp(-49 / 8), rel=1e-6)  # 7 pixels right: last in the window
    assert hm[1, 10, 28] == 0.0 and hm[1, 10, 12] == 0.0  # just outside the window
    assert hm[1, 3, 20] == pytest.approx(math.exp(-49 / 8), rel=1e-6) and hm[1, 2, 20] == 0.0
    assert hm[1, 13, 22] == pytest.approx(math.exp(-(9 + 4) / 8), rel=1e-6)


def test_sigma8_window_is_51_pixels():
    joints = np.array([[[30.2, 31.7, 1]]], np.float32)  # -> (30, 31)
    hm = bottomup_heatmaps(joints, 64, 8.0).numpy()[0]
    row = np.flatnonzero(hm[31] > 0)
    assert (row[0], row[-1]) == (5, 55)  # 30 - 25 .. 30 + 25: 51 pixels
    col = np.flatnonzero(hm[:, 30] > 0)
    assert (col[0], col[-1]) == (6, 56)
    assert hm[31, 55] == pytest.approx(math.exp(-625 / 128), rel=1e-6)


def test_truncation_toward_zero_and_border():
    # x = -0.5 truncates to 0 (counted); x = -1.0 is outside; y = 31.99 of a 32-row map is in; v = 0 is not.
    joints = np.array([[[-0.5, 5.0, 2], [-1.0, 5.0, 2], [3.0, 31.99, 2], [4.0, 4.0, 0]]], np.float32)
    hm = bottomup_heatmaps(joints, (32, 40), 2.0).numpy()
    assert hm[0, 5, 0] == 1.0 and hm[1].max() == 0 and hm[2, 31, 3] == 1.0 and hm[3].max() == 0


def test_max_over_people_matches_spec_loop():
    rng = np.random.default_rng(0)
    joints = np.zeros((2, 4, 3, 3), np.float32)  # batch of 2, up to 4 people, 3 joints
    joints[..., 0] = rng.uniform(-3, 50, joints.shape[:-1])
    joints[..., 1] = rng.uniform(-3, 35, joints.shape[:-1])
    joints[..., 2] = rng.integers(0, 3, joints.shape[:-1])
    joints[1, 3] = 0  # padding person
    joints[0, 1, 0, :2] = joints[0, 0, 0, :2] + (3, 1)  # two people's joint 0 close together: overlap
    joints[0, :2, 0, 2] = 2
    hm = bottomup_heatmaps(torch.from_numpy(joints), (32, 48), 2.0)
    for n in range(2):
        np.testing.assert_allclose(hm[n].numpy(), spec_heatmaps(joints[n], 32, 48, 2.0), rtol=1e-6, atol=0)


def test_joint_indices_pack_counted_joints_first():
    # Map 4 x 5 (H x W): index = k * 20 + y * 5 + x.
    joints = np.zeros((3, 3, 3), np.float32)
    joints[0] = [(1.5, 2.5, 0), (4.9, 3.2, 2), (0.0, 0.0, 1)]  # joints 1 and 2 counted
    joints[1] = [(5.0, 1.0, 2), (2.0, -0.9, 2), (2.0, 1.0, 2)]  # x = 5 is outside; y = -0.9 -> 0 counts
    out = joint_indices(joints, (4, 5), max_people=4)
    assert out.dtype == torch.int32 and out.shape == (4, 3, 2)
    expected = np.zeros((4, 3, 2), np.int32)
    expected[0, 0] = (1 * 20 + 3 * 5 + 4, 1)
    expected[0, 1] = (2 * 20 + 0, 1)
    expected[1, 0] = (1 * 20 + 0 * 5 + 2, 1)
    expected[1, 1] = (2 * 20 + 1 * 5 + 2, 1)
    np.testing.assert_array_equal(out.numpy(), expected)


def test_joint_indices_batched_and_too_many_people():
    joints = torch.zeros(2, 30, 17, 3)
    joints[1, 29, 16] = torch.tensor([7.0, 3.0, 2.0])
    out = joint_indices(joints, 512)
    assert out.shape == (2, 30, 17, 2)
    assert out[1, 29, 0].tolist() == [16 * 512 * 512 + 3 * 512 + 7, 1] and out.sum() == out[1, 29, 0].sum()
    with pytest.raises(IndexError, match="31 people"):
        joint_indices(torch.zeros(31, 17, 3), 512)


def test_ignore_mask_crowd_and_people_without_keypoints():
    h, w = 20, 30
    crowd = np.zeros((h, w), np.uint8)
    crowd[2:6, 3:9] = 1
    compressed = mask_utils.encode(np.asfortranarray(crowd[:, ::-1]))  # a second crowd, mirrored, compressed RLE
    compressed["counts"] = compressed["counts"].decode("ascii")
    anns = [
        {"iscrowd": 1, "num_keypoints": 0, "segmentation": uncompressed_rle(crowd)},
        {"iscrowd": 1, "num_keypoints": 0, "segmentation": compressed},
        # a person without keypoints: its polygon is ignored
        {"iscrowd": 0, "num_keypoints": 0, "segmentation": [[20, 10, 25, 10, 25, 15, 20, 15]]},
        # a labelled person: counts
        {"iscrowd": 0, "num_keypoints": 3, "segmentation": [[0, 12, 8, 12, 8, 19, 0, 19]]},
    ]
    m = ignore_mask(anns, h, w)
    assert m.dtype == bool and m.shape == (h, w)
    assert not m[2:6, 3:9].any() and not m[2:6, w - 9:w - 3].any() and m[6:, :10].all()
    polygon = mask_utils.decode(mask_utils.frPyObjects(anns[2]["segmentation"], h, w))[..., 0].astype(bool)
    assert not m[polygon].any()
    assert m.sum() == h * w - 2 * crowd.sum() - polygon.sum()

