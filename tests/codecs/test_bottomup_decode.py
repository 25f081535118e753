"""Bottom-up decoding (codecs.bottomup_decode): adjust, person score, refine, the transform, worked by hand;
the whole decode against the original's parser (reference.bottomup_parser); COCOeval ignores keypoint scores."""
import dataclasses

import numpy as np
import pytest
import torch

from srpose_fast.benchmarking.bottomup_outputs import synthetic_bottomup_outputs
from srpose_fast.codecs.associative_embedding import AssociativeEmbedding
from srpose_fast.codecs.bottomup_decode import adjust, decode_bottomup, person_scores, refine, to_image
from srpose_fast.engine.coco_metrics import coco_keypoint_eval
from srpose_fast.keypoint_sets import COCO
from srpose_fast.reference.bottomup_parser import reference_decode_bottomup


def test_adjust_moves_toward_the_higher_neighbour_then_half_a_pixel():
    heatmaps = torch.zeros(2, 4, 5)
    # joint 0 at (x2, y1): below 0.3 > above 0.1 -> y + 0.25; right 0.2 == left 0.2 -> x - 0.25 (ties go down)
    heatmaps[0, 2, 2], heatmaps[0, 0, 2], heatmaps[0, 1, 3], heatmaps[0, 1, 1] = 0.3, 0.1, 0.2, 0.2
    # joint 1 at the corner (x4, y3): the clamped neighbours are the pixel itself: below (y3) 0.5 vs above (y2) 0.6
    # -> y - 0.25; right (x4, itself) 0.5 > left (x3) 0.4 -> x + 0.25
    heatmaps[1, 3, 4], heatmaps[1, 2, 4], heatmaps[1, 3, 3] = 0.5, 0.6, 0.4
    people = np.zeros((1, 3, 4), np.float32)
    people[0, 0] = (2, 1, 0.9, 7)
    people[0, 1] = (4, 3, 0.5, 7)
    out = adjust(people, heatmaps)
    np.testing.assert_array_equal(out[0, :, :2], np.float32([[2 - 0.25 + 0.5, 1 + 0.25 + 0.5],
                                                             [4 + 0.25 + 0.5, 3 - 0.25 + 0.5], [0, 0]]))
    np.testing.assert_array_equal(out[0, :, 2:], people[0, :, 2:])  # values and tags untouched


def test_person_score_is_the_mean_over_all_joints():
    people = np.zeros((2, 17, 4), np.float32)
    people[0, :2, 2] = (0.9, 0.8)
    people[1, 5, 2] = 0.34
    np.testing.assert_array_equal(person_scores(people), np.float32([np.float32(1.7) / 17, np.float32(0.34) / 17]))


def test_refine_fills_missing_joints_from_the_mean_tag():
    # One person, joints 0 and 1 found with tags 2.0 and 2.4 -> mean tag 2.2 (L = 1).
    # Joint 2 is missing. Its map: 0.9 at (x3, y0) where the tag is 5.2 (distance 3 -> score 0.9 - 3 = -2.1),
    # 0.4 at (x1, y2) where the tag is 2.1 (distance 0.1 -> 0.4), elsewhere 0 with tag 9 (-> 0 - 7).
    # argmax (x1, y2), value 0.4 > 0: x = 1.5 + 0.25 (right 0.2 > left 0), y = 2.5 - 0.25 (below 0 == above 0).
    # Joint 3 is missing too, its map is all 0: the best value is 0, not > 0: it stays missing.
    heatmaps = torch.zeros(4, 4, 4)
    tags = torch.full((4, 4, 4), 9.0)
    heatmaps[2, 0, 3], tags[2, 0, 3] = 0.9, 5.2
    heatmaps[2, 2, 1], tags[2, 2, 1] = 0.4, 2.1
    heatmaps[2, 2, 2] = 0.2
    people = np.zeros((1, 4, 4), np.float32)
    people[0, 0] = (0.75, 0.75, 0.5, 2.0)
    people[0, 1] = (2.25, 1.75, 0.6, 2.4)
    out = refine(people, heatmaps, [tags])
    np.testing.assert_array_equal(out[0, :2], people[0, :2])
    np.testing.assert_array_equal(out[0, 2], np.float32([1.75, 2.25, 0.4, 0.0]))
    np.testing.assert_array_equal(out[0, 3], np.zeros(4, np.float32))


def test_to_image_follows_the_original_transform():
    # 480x640 image at 512x704: center (320, 240), scale (3.3, 2.4) -> 660 x 480 px; x step 660 / 704 = 0.9375,
    # y step 480 / 512 = 0.9375. x = 10.25 * 0.9375 + 320 - 330 = -0.390625; y = 100.75 * 0.9375 + 240 - 240.
    out = to_image(np.float32([[[10.25, 100.75]]]), (320, 240), (3.3, 2.4), (512, 704))
    np.testing.assert_allclose(out, [[[-0.390625, 94.453125]]], rtol=0, atol=2e-5)
    assert out.dtype == np.float32


def test_coco_keypoint_ap_ignores_keypoint_scores():
    # The original writes every keypoint score as 1.0; we write the heatmap values. COCOeval's OKS reads x and y.
    rng = np.random.default_rng(0)
    gt_kpts = np.concatenate([rng.uniform(20, 80, (17, 2)), np.full((17, 1), 2)], 1)
    gt = {"images": [{"id": 1, "width": 100, "height": 100}],
          "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "iscrowd": 0, "area": 3600.0,
                           "bbox": [20, 20, 60, 60], "num_keypoints": 17, "keypoints": gt_kpts.ravel().tolist()}]}
    guess = gt_kpts[:, :2] + rng.normal(0, 3, (17, 2))

    def results(keypoint_scores):
        kpts = np.concatenate([guess, keypoint_scores[:, None]], 1)
        return [{"image_id": 1, "category_id": 1, "keypoints": kpts.ravel().tolist(), "score": 0.8}]

    ones = coco_keypoint_eval(gt, results(np.ones(17)), COCO.sigmas)
    real = coco_keypoint_eval(gt, results(rng.uniform(0, 1, 17)), COCO.sigmas)
    assert ones == real and 0 < ones["AP"] < 1


CASES = [  # (people, K, height, width, input size, flip, margin)
    (4, 17, 48, 64, (48, 64), True, 0),
    (3, 17, 40, 24, (40, 24), False, 0),
    # A stride-4 head: maps resized to the input (project2image). Its border rows and columns repeat (the
    # resize clamps there), so a peak at the border is a plateau of equal candidates, which torch.topk (the
    # original's, here the reference's) orders as it likes: the margin keeps peaks off the border.
    (5, 17, 12, 16, (48, 64), True, 3),
    (2, 3, 20, 28, (20, 28), True, 0),  # not COCO: index joint order
]


@pytest.mark.parametrize("people,joints,height,width,size,flip,margin", CASES)
def test_decode_matches_the_original_parser(people, joints, height, width, size, flip, margin):
    flip_indices = COCO.flip_indices if joints == 17 else (1, 0, 2)
    codec = AssociativeEmbedding(nms_kernel=5, nms_padding=2, flip_indices=flip_indices)
    outputs, flipped = synthetic_bottomup_outputs(people, flip_indices, height, width, seed=people, flip=flip,
                                                  margin=margin)
    center, scale = (101.0, 57.0), (1.3, 0.9)
    fast = decode_bottomup(outputs, flipped, codec=codec, input_size=size, center=center, scale=scale,
                           backend="torch")[0]
    original = reference_decode_bottomup(outputs, flipped, codec=codec, input_size=size, center=center, scale=scale)
    assert len(fast) >= 2
    for name in ("keypoints", "keypoint_scores", "scores", "tags"):
        np.testing.assert_array_equal(getattr(fast, name), getattr(original, name), err_msg=name)
    unrefined = decode_bottomup(outputs, flipped, codec=dataclasses.replace(codec, refine=False), input_size=size,
                                center=center, scale=scale, backend="torch")[0]
    assert (fast.keypoint_scores > 0).sum() > (unrefined.keypoint_scores > 0).sum()  # refine filled joints


def test_decode_a_batch_and_without_center_scale():
    codec = AssociativeEmbedding(nms_kernel=5, nms_padding=2)
    first, _ = synthetic_bottomup_outputs(3, COCO.flip_indices, 32, 32, seed=1, flip=False)
    second, _ = synthetic_bottomup_outputs(2, COCO.flip_indices, 32, 32, seed=2, flip=False)
    both = decode_bottomup(torch.cat([first, second]), codec=codec, input_size=(32, 32), backend="torch")
    alone = decode_bottomup(second, codec=codec, input_size=(32, 32), backend="torch")[0]
    np.testing.assert_array_equal(both[1].keypoints, alone.keypoints)
    # without center/scale: input pixels, i.e. center (W/2, H/2), scale (W, H) / 200: x_img = x
    people = reference_decode_bottomup(second, None, codec=codec, input_size=(32, 32), center=(16, 16),
                                       scale=(0.16, 0.16))
    np.testing.assert_array_equal(alone.keypoints, people.keypoints)
    with pytest.raises(ValueError, match="both center and scale"):
        decode_bottomup(second, codec=codec, input_size=(32, 32), center=(1, 1))
