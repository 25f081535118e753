"""The bottom-up augmentation against SPEC.md section 6's formulas, on constructed cases."""
from __future__ import annotations

import math

import numpy as np
import pytest

from srpose_fast.data import bottomup_transforms as bt
from srpose_fast.keypoint_sets import COCO


def test_draws_follow_the_original_ranges_and_truncation():
    rng = np.random.default_rng(0)
    h, w = 37, 53  # 40 s / 200 = 0.2 s with s in [27.75, 55.5): bounds 5.55 .. 11.1, never whole
    lows, highs = set(), set()
    for _ in range(3000):
        d = bt.draw_affine(rng, h, w)
        assert 0.75 * 37 <= d.side < 1.5 * 37 and -30 <= d.rotation <= 30
        bound = 40 * d.side / 200
        dx, dy = d.center[0] - w / 2, d.center[1] - h / 2
        for v in (dx, dy):
            assert v == int(v) and int(-bound) <= v < int(bound)  # truncated toward 0, high excluded
            lows.add(v - int(-bound))
            highs.add(int(bound) - v)
    assert 0 in lows and min(highs) == 1  # the low bound is reached, the high one never


def test_matrix_by_hand_without_and_with_rotation():
    # Centre (100, 50), side 200, output 64: x -> 64/200 x + 64 (0.5 - 100/200) = 0.32 x, y -> 0.32 y + 16.
    d = bt.AffineDraw((100.0, 50.0), 200.0, 0.0)
    m = bt.affine_matrix(d, 64)
    np.testing.assert_allclose(m, [[0.32, 0, 0], [0, 0.32, 16]], atol=1e-12)
    np.testing.assert_allclose(bt.warp_points(np.array([[100.0, 50.0], [0.0, -50.0]]), m), [[32, 32], [0, 0]])
    # theta = 90: phi = -90, [[cos, -sin], [sin, cos]] = [[0, 1], [-1, 0]] about (32, 32).
    # (150, 50) -> unrotated (48, 32) -> offset (16, 0) -> (0, -16) -> (32, 16).
    m = bt.affine_matrix(bt.AffineDraw((100.0, 50.0), 200.0, 90.0), 64)
    np.testing.assert_allclose(bt.warp_points(np.array([150.0, 50.0]), m), [32, 16], atol=1e-9)
    # theta = 30: offset (16, 0) -> (16 cos(-30), 16 sin(-30)) = (13.856, -8).
    m = bt.affine_matrix(bt.AffineDraw((100.0, 50.0), 200.0, 30.0), 64)
    np.testing.assert_allclose(bt.warp_points(np.array([150.0, 50.0]), m),
                               [32 + 16 * math.cos(math.radians(30)), 32 - 8], atol=1e-9)


def _fixed(monkeypatch, draw, flip):
    monkeypatch.setattr(bt, "draw_affine", lambda rng, h, w: draw)
    monkeypatch.setattr(bt, "FLIP_PROB", 1.0 if flip else 0.0)


@pytest.mark.parametrize("flip", [False, True])
def test_image_mask_and_joints_move_together(monkeypatch, flip):
    h, w = 60, 80
    image = np.zeros((h, w, 3), np.uint8)
    image[20:24, 50:54] = 255  # a bright square around (51.5, 21.5)
    mask = np.ones((h, w), bool)
    mask[32:48, 20:36] = False  # an ignored square around (27.5, 39.5)
    joints = np.zeros((2, 17, 3), np.float32)
    joints[0, 5] = (51.5, 21.5, 2)  # left shoulder on the square
    joints[1, 0] = (10.0, 50.0, 1)
    draw = bt.AffineDraw((40.0, 30.0), 60.0, 20.0)
    _fixed(monkeypatch, draw, flip)
    out = bt.bottomup_train_transform(image, joints, mask, rng=np.random.default_rng(0), input_size=128,
                                      heatmap_size=32, flip_indices=COCO.flip_indices)
    to_input, to_heatmap = bt.affine_matrix(draw, 128), bt.affine_matrix(draw, 32)
    centre = bt.warp_points(np.array([51.5, 21.5]), to_input)
    if flip:
        centre[0] = 127 - centre[0]
    ys, xs = np.nonzero(out.image[..., 0] > 128)
    assert abs(xs.mean() - centre[0]) < 0.6 and abs(ys.mean() - centre[1]) < 0.6
    expected = bt.warp_points(np.array([51.5, 21.5]), to_heatmap)
    joint = 6 if flip else 5  # the flip swaps left and right shoulders
    if flip:
        expected[0] = 32 - expected[0] - 1
    np.testing.assert_allclose(out.joints[0, joint, :2], expected, rtol=1e-5)
    assert out.joints[0, joint, 2] == 2 and out.joints[0, 11 - joint, 2] == 0
    ignored = bt.warp_points(np.array([27.5, 39.5]), to_heatmap)
    cx, cy = int(ignored[0]), int(ignored[1])
    if flip:
        cx = 31 - cx
    assert out.mask[cy, cx] == 0 and out.mask.dtype == np.float32
    counted = bt.warp_points(np.array([50.0, 20.0]), to_heatmap)
    cx, cy = int(counted[0]), int(counted[1])
    assert out.mask[cy, 31 - cx if flip else cx] == 1
    # outside the image the mask is 0 (zero border), as the original's warp gives
    assert out.mask.min() == 0 and set(np.unique(out.mask)) <= {0.0, 1.0}
