"""The project's scoring against numbers xtcocotools computed on the same fixtures.

The constants below are the output of
    /work/team/xtco/bin/python tests/engine/xtcocotools_reference.py
(xtcocotools 1.14.3, numpy 1.26.4, in a venv outside the repository; the script's docstring says
how to make one). The fixtures come from tests/scoring_fixtures.py.
"""
import numpy as np
import pytest

from scoring_fixtures import coco_fixture, crowdpose_fixture, tie_fixture
from srpose_fast.engine.coco_metrics import STAT_NAMES, coco_keypoint_eval, keypoint_results
from srpose_fast.engine.crowdpose_metrics import CROWDPOSE_STAT_NAMES, crowd_levels, crowdpose_keypoint_eval
from srpose_fast.engine.rescoring import nms_per_image, rescore
from srpose_fast.keypoint_sets import COCO, CROWDPOSE

# xtcocotools COCOeval(gt, results, "keypoints_crowd", CrowdPose's sigmas, use_area=False).stats
CROWDPOSE_EXPECTED = [0.3816429440477695, 0.5507613786588743, 0.3712125636284337, 0.6636363636363637,
                      0.8181818181818182, 0.6818181818181818, 0.3778, 0.4084, 0.4551]
# xtcocotools COCOeval(gt, results, "keypoints", COCO's sigmas, use_area=True).stats
COCO_EXPECTED = [0.24938708676281407, 0.40542021764674296, 0.303729943616831, 0.2380952380952381,
                 0.3060726072607261, 0.5499999999999999, 0.7727272727272727, 0.6363636363636364,
                 0.5444444444444444, 0.47142857142857153]
# mmpose's rescoring and OKS-NMS rule (numpy 1.26's argsort), then "keypoints" COCOeval.
TIE_KEEP = [2, 1, 6, 5, 4]
TIE_EXPECTED = [0.9504950495049505, 0.9504950495049505, 0.9504950495049505, -1.0, 0.9504950495049505, 1.0, 1.0,
                1.0, -1.0, 1.0]


def test_crowdpose_matches_xtcocotools():
    gt, results = crowdpose_fixture()
    stats = crowdpose_keypoint_eval(gt, results, CROWDPOSE.sigmas)
    assert tuple(stats) == CROWDPOSE_STAT_NAMES
    assert list(stats.values()) == pytest.approx(CROWDPOSE_EXPECTED, abs=1e-12)
    # The fixture tells the rules apart: COCO's area rule inflates AP (the defect this replaces),
    # and the paper's 0.1 bound or inclusive bounds would move images between levels.
    assert coco_keypoint_eval(gt, results, CROWDPOSE.sigmas)["AP"] > stats["AP"] + 0.1
    levels = crowd_levels(gt["images"])
    by_id = {img["id"]: img["crowdIndex"] for img in gt["images"]}
    assert [by_id[i] for i in levels["AP(E)"]] == [0.0, 0.1, 0.15]
    assert [by_id[i] for i in levels["AP(M)"]] == [0.2, 0.35, 0.5, 0.79]
    assert [by_id[i] for i in levels["AP(H)"]] == [0.8, 0.9, 1.0]


def test_coco_matches_xtcocotools():
    gt, results = coco_fixture()
    stats = coco_keypoint_eval(gt, results, COCO.sigmas)
    assert tuple(stats) == STAT_NAMES
    assert list(stats.values()) == pytest.approx(COCO_EXPECTED, abs=1e-12)
    # Results whose keypoint scores are all 0 are not scored, as in xtcocotools: scoring them
    # (pycocotools' own behaviour) would count them as detections and lower AP.
    assert all(v == 0 for res in results[3:5] for v in res["keypoints"][2::3])
    with_them_scored = [dict(res, keypoints=[*res["keypoints"][:2], 1e-6, *res["keypoints"][3:]])
                        for res in results]
    assert coco_keypoint_eval(gt, with_them_scored, COCO.sigmas)["AP"] < stats["AP"] - 0.01


def test_tied_scores_match_mmpose():
    gt, pred = tie_fixture()
    keypoints = np.asarray(pred["keypoints"])
    scores = rescore(pred["box_score"], pred["keypoint_scores"])
    keep = nms_per_image(pred["image_id"], keypoints, scores, pred["area"], COCO.sigmas)
    assert keep.tolist() == TIE_KEEP
    results = keypoint_results(np.asarray(pred["image_id"])[keep], keypoints[keep],
                               np.asarray(pred["keypoint_scores"])[keep], scores[keep])
    assert list(coco_keypoint_eval(gt, results, COCO.sigmas).values()) == pytest.approx(TIE_EXPECTED, abs=1e-12)
    # The order of the kept tied instances matters as well: with 5 before 6, COCOeval matches the
    # poorer 5 to S first and AP drops.
    swapped = [results[i] for i in (0, 1, 3, 2, 4)]
    assert coco_keypoint_eval(gt, swapped, COCO.sigmas)["AP"] < TIE_EXPECTED[0] - 0.02  # 0.921
