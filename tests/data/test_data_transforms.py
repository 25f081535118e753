"""Top-down augmentation and affine crop (srpose_fast/data/transforms.py)."""
from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from srpose_fast.keypoint_sets import COCO, CROWDPOSE, MPII
from srpose_fast.data.transforms import (IMAGENET_MEAN, IMAGENET_STD, AugmentParams, affine_points,
                                         box_to_center_scale, eval_transform, flip_keypoints,
                                         get_affine_transform, half_body_center_scale, normalize_image,
                                         train_transform, upper_body_ids)


def _three_point_affine(center, scale, rot, output_size):
    """Independent oracle: the map defined by where the centre, a point above it and a third point
    at right angles go, solved by OpenCV (mmpose's construction), output_size = (H, W)."""
    h, w = output_size
    src_w = scale[0] * 200.0
    r = np.deg2rad(rot)
    up = np.array([0.0, -0.5 * src_w])
    src_up = np.array([up[0] * np.cos(r) - up[1] * np.sin(r), up[0] * np.sin(r) + up[1] * np.cos(r)])
    dst_up = np.array([0.0, -0.5 * w])
    c, d = np.asarray(center, float), np.array([w / 2, h / 2])
    perp = lambda v: np.array([v[1], -v[0]])  # noqa: E731
    src = np.float32([c, c + src_up, c + src_up + perp(src_up)])
    dst = np.float32([d, d + dst_up, d + dst_up + perp(dst_up)])
    return cv2.getAffineTransform(src, dst)


@pytest.mark.parametrize("rot", [0.0, 30.0, -75.0, 180.0])
def test_affine_matches_three_point_construction_and_inverts(rot):
    center, scale = np.array([123.4, 87.6]), np.array([0.9, 1.2])
    t = get_affine_transform(center, scale, rot, (256, 192))
    np.testing.assert_allclose(t, _three_point_affine(center, scale, rot, (256, 192)), atol=2e-4)
    # centre -> middle of the output; box width -> output width
    np.testing.assert_allclose(affine_points(center, t), [96, 128], atol=1e-9)
    inv = get_affine_transform(center, scale, rot, (256, 192), inv=True)
    pts = np.array([[0.0, 0.0], [191.0, 255.0], [17.5, 200.25]])
    np.testing.assert_allclose(affine_points(affine_points(pts, inv), t), pts, atol=1e-9)


def test_positive_rotation_turns_content_counter_clockwise():
    center, scale = np.array([100.0, 100.0]), np.array([1.0, 1.0])
    t = get_affine_transform(center, scale, 90.0, (200, 200))
    # a point to the right of the centre ends up above it in the output
    np.testing.assert_allclose(affine_points([150.0, 100.0], t), [100.0, 50.0], atol=1e-9)


@pytest.mark.parametrize("seed", range(6))
def test_warped_dot_lands_on_transformed_keypoint(seed):
    rng = np.random.default_rng(seed)
    img = np.zeros((300, 400, 3), np.uint8)
    pt = rng.uniform([120, 90], [280, 210])
    yy, xx = np.mgrid[0:300, 0:400]
    blob = np.exp(-((xx - pt[0]) ** 2 + (yy - pt[1]) ** 2) / (2 * 3.0 ** 2))
    img[..., 1] = np.round(255 * blob).astype(np.uint8)
    center = pt + rng.uniform(-30, 30, 2)
    scale = np.array([1.0, 4 / 3]) * rng.uniform(0.8, 1.4)
    rot = rng.uniform(-80, 80)
    t = get_affine_transform(center, scale, rot, (256, 192))
    out = cv2.warpAffine(img, t, (192, 256), flags=cv2.INTER_LINEAR)[..., 1].astype(float)
    oy, ox = np.mgrid[0:256, 0:192]
    found = np.array([(out * ox).sum(), (out * oy).sum()]) / out.sum()
    assert np.linalg.norm(found - affine_points(pt, t)) < 1.0


def test_box_to_center_scale_follows_mmpose():
    c, s = box_to_center_scale(10, 20, 30, 100, (256, 192))
    np.testing.assert_allclose(c, [25, 70])
    np.testing.assert_allclose(s, [75 / 200 * 1.25, 100 / 200 * 1.25])  # widened to 3:4
    c, s = box_to_center_scale(0, 0, 300, 100, (256, 192), padding=1.0)
    np.testing.assert_allclose(s, [1.5, 2.0])  # heightened to 3:4


def test_flip_keypoints_mirrors_swaps_and_zeroes_unlabelled():
    k = np.zeros((17, 2), np.float32)
    v = np.zeros(17, np.float32)
    k[9], v[9] = (10.0, 20.0), 1  # left wrist
    k[0], v[0] = (50.0, 5.0), 1  # nose
    k[4] = (33.0, 44.0)  # right ear, unlabelled but with junk coordinates
    fk, fv = flip_keypoints(k, v, 100, COCO.flip_indices)
    np.testing.assert_array_equal(fk[10], [89.0, 20.0])  # now the right wrist, x -> W - 1 - x
    np.testing.assert_array_equal(fk[0], [49.0, 5.0])
    assert fv[10] == 1 and fv[9] == 0 and fv[0] == 1
    np.testing.assert_array_equal(fk[3], [0.0, 0.0])


def test_upper_body_ids_are_mmposes():
    assert upper_body_ids(COCO) == tuple(range(11))
    assert upper_body_ids(MPII) == (7, 8, 9, 10, 11, 12, 13, 14, 15)
    assert upper_body_ids(CROWDPOSE) == (0, 1, 2, 3, 4, 5, 12, 13)


def test_half_body_center_scale():
    k = np.array([[x * 10.0, y * 10.0] for x, y in
                  [(5, 1), (6, 0), (4, 0), (7, 1), (3, 1), (8, 3), (2, 3), (9, 6), (1, 6), (10, 9), (0, 9),
                   (7, 9), (3, 9), (7, 13), (3, 13), (7, 17), (3, 17)]])
    v = np.ones(17)
    upper, lower = k[:11], k[11:]
    seen = set()
    for seed in range(30):
        c, s = half_body_center_scale(k, v, upper_body_ids(COCO), (256, 192), np.random.default_rng(seed))
        part = upper if np.allclose(c, upper.mean(0)) else lower
        np.testing.assert_allclose(c, part.mean(0), rtol=1e-6)
        w, h = part.max(0) - part.min(0)
        w, h = max(w, 0.75 * h), max(h, w / 0.75)
        np.testing.assert_allclose(s, np.array([w, h]) / 200 * 1.5, rtol=1e-6)
        seen.add(part is upper)
    assert seen == {True, False}
    # fewer than two chosen joints: no half-body box
    v2 = np.zeros(17)
    v2[0] = 1
    assert half_body_center_scale(k, v2, upper_body_ids(COCO), (256, 192), np.random.default_rng(0)) == (None, None)


def _dot_scene(k=17):
    """A 300x400 BGR image with a distinct-colour disc at each of k keypoints."""
    levels = (0, 128, 255)
    palette = np.array([(b, g, r) for b in levels for g in levels for r in levels][1:k + 1], np.uint8)
    img = np.zeros((300, 400, 3), np.uint8)
    kpts = np.array([[150 + 30 * (j % 4), 60 + 12 * j] for j in range(k)], np.float32)
    for j, (x, y) in enumerate(kpts):
        cv2.circle(img, (int(x), int(y)), 5, tuple(int(c) for c in palette[j]), -1)
    return img, kpts, palette


def _denorm_rgb(image):
    rgb = image.transpose(1, 2, 0) * np.array(IMAGENET_STD) + np.array(IMAGENET_MEAN)
    return rgb * 255


def test_train_transform_moves_image_and_keypoints_together():
    """Each labelled, in-crop keypoint sits on the disc of its joint (the mirrored joint's disc
    when the sample was flipped), whatever the flip, half-body, scale and rotation drawn."""
    img, kpts, palette = _dot_scene()
    vis = np.ones(17, np.float32)
    center, scale = box_to_center_scale(130, 50, 140, 220, (256, 192))
    params = AugmentParams(half_body_prob=0.5)
    flips = rots = 0
    for seed in range(40):
        s = train_transform(img, kpts, vis, center, scale, rng=np.random.default_rng(seed), keypoint_set=COCO,
                            input_size=(256, 192), params=params)
        rgb = _denorm_rgb(s.image)
        flips += s.flipped
        rots += s.rotation != 0
        x, y = np.round(s.keypoints).astype(int).T
        inside = (s.visible > 0) & (x >= 0) & (x < 192) & (y >= 0) & (y < 256)
        assert inside.any()
        for j in np.nonzero(inside)[0]:
            x, y = np.round(s.keypoints[j]).astype(int)
            bgr = rgb[y, x, ::-1]
            nearest = np.argmin(np.abs(palette.astype(float) - bgr).sum(1))
            assert nearest == (COCO.flip_indices[j] if s.flipped else j), (seed, j)
    assert 5 < flips < 35 and 5 < rots < 40


def test_target_weight_is_the_visibility_and_the_window_rule_decides_the_rest():
    """SPEC.md section 2: target weight = the joint's visibility; only the heatmap window rule (window wholly
    outside the map) sets it to 0, so a labelled joint just outside the crop still trains on its cut-off
    Gaussian. The crop here cuts the legs: the knees lie just below the crop, the ankles far below."""
    from srpose_fast.codecs.targets import encode_heatmaps
    from srpose_fast.reference.targets import generate_target

    img, kpts, _ = _dot_scene()
    vis = np.ones(17, np.float32)
    vis[3] = 0
    center, scale = box_to_center_scale(150, 60, 90, 100, (256, 192))
    s = eval_transform(img, kpts, vis, center, scale, input_size=(256, 192))
    np.testing.assert_array_equal(s.target_weight, vis)  # inside the crop or not
    np.testing.assert_array_equal(s.visible, vis)
    np.testing.assert_array_equal(s.keypoints[3], [0, 0])
    t = get_affine_transform(center, scale, 0, (256, 192))
    np.testing.assert_allclose(s.keypoints[vis > 0], affine_points(kpts[vis > 0], t), atol=1e-4)

    sigma, below = 8.0, s.keypoints[:, 1] - 255
    just_outside = (vis > 0) & (below > 0) & (below < 3 * sigma)
    far_outside = (vis > 0) & (below > 3 * sigma + 1)
    assert just_outside.any() and far_outside.any()
    maps, weight = encode_heatmaps(torch.from_numpy(s.keypoints)[None], torch.from_numpy(s.target_weight)[None],
                                   (256, 192), sigma)
    weight, maps = weight[0].numpy(), maps[0].numpy()
    assert (weight[just_outside] == 1).all() and (maps[just_outside].max(axis=(1, 2)) > 0).all()
    assert (weight[far_outside] == 0).all() and (maps[far_outside] == 0).all()
    # The original's per-sample target generator agrees on every joint's weight.
    _, reference = generate_target(s.keypoints, s.target_weight, (192, 256), sigma)
    np.testing.assert_array_equal(weight, reference[:, 0])


def test_augmentation_is_deterministic_per_generator_seed():
    img, kpts, _ = _dot_scene()
    vis = np.ones(17, np.float32)
    center, scale = box_to_center_scale(130, 50, 140, 220, (256, 192))

    def run(seed):
        return train_transform(img, kpts, vis, center, scale, rng=np.random.default_rng(seed), keypoint_set=COCO,
                               input_size=(128, 96))
    a, b = run(11), run(11)
    np.testing.assert_array_equal(a.image, b.image)
    np.testing.assert_array_equal(a.keypoints, b.keypoints)
    assert (a.rotation, a.flipped) == (b.rotation, b.flipped)
    others = [run(s) for s in range(12, 16)]
    assert any(not np.array_equal(a.image, o.image) for o in others)


def test_scale_and_rotation_ranges():
    img = np.zeros((64, 64, 3), np.uint8)
    k, v = np.zeros((17, 2), np.float32), np.zeros(17, np.float32)
    base = np.array([1.0, 1.0], np.float32)
    params = AugmentParams(flip_prob=0.0)
    ratios, rots = [], []
    for seed in range(300):
        s = train_transform(img, k, v, (32, 32), base, rng=np.random.default_rng(seed), keypoint_set=COCO,
                            input_size=(16, 12), params=params)
        ratios.append(s.scale[0])
        rots.append(s.rotation)
    ratios, rots = np.array(ratios), np.array(rots)
    assert ratios.min() >= 0.5 - 1e-6 and ratios.max() <= 1.5 + 1e-6 and (ratios == 0.5).any()
    assert np.abs(rots).max() <= 80 and np.abs(rots).max() > 60
    assert 0.3 < (rots == 0).mean() < 0.5  # applied with p 0.6


def test_normalize_image():
    px = np.array([[[255, 0, 128]]], np.uint8)  # RGB
    out = normalize_image(px)
    assert out.shape == (3, 1, 1) and out.dtype == np.float32
    expected = (np.array([1.0, 0.0, 128 / 255]) - IMAGENET_MEAN) / IMAGENET_STD
    np.testing.assert_allclose(out[:, 0, 0], expected, rtol=1e-5)
