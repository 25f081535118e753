import contextlib
import io
import math

import numpy as np
import pytest

from srpose_fast.keypoint_sets import COCO
from srpose_fast.engine.oks import keypoint_oks, oks_matrix, oks_nms

SIGMAS3 = (0.1, 0.2, 0.05)


def test_keypoint_oks_hand_computation():
    # k = 2 sigma -> k^2 = 0.04, 0.16, 0.01; area 100; e = d^2 / (2 * area * k^2).
    gt = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
    pred = gt + np.array([[1.0, 0.0], [0.0, 4.0], [5.0, 5.0]])
    visible = np.array([2, 1, 0])  # the third joint is not labelled: it does not count
    # joint 0: 1 / (2 * 100 * 0.04) = 0.125; joint 1: 16 / (2 * 100 * 0.16) = 0.5
    expected = (math.exp(-0.125) + math.exp(-0.5)) / 2  # 0.74451381...
    assert keypoint_oks(pred, gt, visible, 100.0, SIGMAS3) == pytest.approx(expected, rel=1e-12)
    assert expected == pytest.approx(0.7445138, abs=1e-7)
    # A batch of predictions; scores in a third column are ignored.
    batch = np.stack([np.c_[gt, np.ones(3)], np.c_[pred, np.zeros(3)]])
    np.testing.assert_allclose(keypoint_oks(batch, gt, visible, 100.0, SIGMAS3), [1.0, expected], rtol=1e-12)
    # No labelled joint: 0.
    assert keypoint_oks(pred, gt, np.zeros(3), 100.0, SIGMAS3) == 0.0


def test_keypoint_oks_matches_cocoeval():
    from pycocotools.coco import COCO as CocoApi
    from pycocotools.cocoeval import COCOeval

    rng = np.random.default_rng(0)
    gt = rng.uniform(20, 180, (17, 2))
    vis = rng.integers(0, 3, 17)
    vis[0] = 2
    preds = gt + rng.normal(0, 6, (3, 17, 2))
    area = 4321.0
    gt_ann = {"id": 1, "image_id": 1, "category_id": 1, "iscrowd": 0, "area": area, "bbox": [10, 10, 180, 180],
              "num_keypoints": int((vis > 0).sum()),
              "keypoints": [float(v) for x, y, s in zip(gt[:, 0], gt[:, 1], vis) for v in (x, y, s)]}
    with contextlib.redirect_stdout(io.StringIO()):
        coco = CocoApi()
        coco.dataset = {"images": [{"id": 1, "width": 200, "height": 200}], "annotations": [gt_ann],
                        "categories": [{"id": 1, "name": "person"}]}
        coco.createIndex()
        dt = coco.loadRes([{"image_id": 1, "category_id": 1, "score": 1.0 - 0.1 * i,
                            "keypoints": [float(v) for xy in p for v in (*xy, 1.0)]} for i, p in enumerate(preds)])
        ev = COCOeval(coco, dt, iouType="keypoints")
        ev.params.kpt_oks_sigmas = np.asarray(COCO.sigmas)
        ev._prepare()
        ious = ev.computeOks(1, 1)  # (dets sorted by score, gts)
    np.testing.assert_allclose(keypoint_oks(preds, gt, vis, area, COCO.sigmas), ious[:, 0], rtol=1e-10)


def test_oks_matrix_uses_mean_area_and_every_joint():
    a = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
    b = a + np.array([[2.0, 0.0], [0.0, 0.0], [0.0, 0.0]])
    m = oks_matrix(np.stack([a, b]), [100.0, 300.0], SIGMAS3)
    # joint 0 moved by 2: e = 4 / (2 * 200 * 0.04) = 0.25; the other two are equal (all joints count).
    expected = (math.exp(-0.25) + 2.0) / 3
    np.testing.assert_allclose(m, [[1.0, expected], [expected, 1.0]], rtol=1e-12)


def _person(x0, rng, jitter=0.0):
    base = np.array([[30, 5], [35, 0], [25, 0], [40, 3], [20, 3], [45, 25], [15, 25], [55, 50], [5, 50],
                     [60, 75], [0, 75], [40, 75], [20, 75], [42, 100], [18, 100], [44, 125], [16, 125]], float)
    return base + [x0, 20.0] + rng.normal(0, jitter, base.shape)


def test_oks_nms_keeps_the_higher_scored_duplicate():
    rng = np.random.default_rng(1)
    a = _person(40, rng)
    b = a + rng.normal(0, 0.3, a.shape)  # near-identical
    kpts = np.stack([a, b])
    assert oks_matrix(kpts, [8000, 8000], COCO.sigmas)[0, 1] > 0.9
    np.testing.assert_array_equal(oks_nms(kpts, [0.5, 0.8], [8000, 8000], COCO.sigmas), [1])
    np.testing.assert_array_equal(oks_nms(kpts, [0.8, 0.5], [8000, 8000], COCO.sigmas), [0])


def test_oks_nms_keeps_distant_instances_highest_first():
    rng = np.random.default_rng(2)
    kpts = np.stack([_person(0, rng), _person(300, rng)])
    np.testing.assert_array_equal(oks_nms(kpts, [0.3, 0.6], [8000, 8000], COCO.sigmas), [1, 0])


def test_oks_nms_is_greedy_and_threshold_inclusive():
    # Along a line: A overlaps B, B overlaps C, A does not overlap C -> A and C survive.
    k = 3
    sig = (0.1,) * k
    area = 100.0
    # OKS of an offset d on every joint: exp(-d^2 / (2 * 100 * 0.04)) = exp(-d^2 / 8).
    d_ab = math.sqrt(-8 * math.log(0.95))  # OKS 0.95 between neighbours
    pts = np.zeros((3, k, 2))
    pts[1, :, 0] = d_ab
    pts[2, :, 0] = 2 * d_ab  # OKS(A, C) = 0.95^4 ~ 0.81
    keep = oks_nms(pts, [0.9, 0.8, 0.7], [area] * 3, sig, threshold=0.9)
    np.testing.assert_array_equal(keep, [0, 2])
    # An OKS exactly at the threshold is not suppressed (mmpose keeps oks <= thr).
    m = oks_matrix(pts[:2], [area, area], sig)
    np.testing.assert_array_equal(oks_nms(pts[:2], [0.9, 0.8], [area] * 2, sig, threshold=m[0, 1]), [0, 1])


def test_oks_nms_edge_cases():
    assert oks_nms(np.zeros((0, 17, 2)), [], [], COCO.sigmas).shape == (0,)
    # Equal scores: the later instance is kept, as mmpose's reversed argsort visits it first.
    a = np.zeros((2, 3, 2))
    np.testing.assert_array_equal(oks_nms(a, [0.5, 0.5], [10, 10], SIGMAS3), [1])
    with pytest.raises(ValueError, match="sigmas"):
        oks_matrix(a, [10, 10], COCO.sigmas)
    with pytest.raises(ValueError, match="areas"):
        oks_matrix(a, [10], SIGMAS3)


def test_oks_nms_compares_in_float32_as_mmpose():
    # Every joint moved by d such that OKS = 0.9 + 1e-9: above 0.9 in float64, but mmpose holds the
    # OKS in a float32 array, where it equals float32(0.9): kept, not suppressed.
    area, sig = 100.0, (0.1,) * 3
    d = math.sqrt(-math.log(0.9 + 1e-9) * 2 * area * (2 * 0.1) ** 2)
    pts = np.zeros((2, 3, 2))
    pts[1, :, 0] = d
    assert oks_matrix(pts, [area, area], sig)[0, 1] > 0.9
    np.testing.assert_array_equal(oks_nms(pts, [0.9, 0.8], [area] * 2, sig, threshold=0.9), [0, 1])
