import numpy as np
import pytest

from scoring_fixtures import tie_fixture
from srpose_fast.engine.rescoring import keypoint_extent_areas, nms_per_image, postprocess_results, rescore
from srpose_fast.keypoint_sets import COCO


def test_rescore_rule():
    box = [0.5, 0.8, 1.0, 1.0]
    kscores = [[0.9, 0.1, 0.5, 0.2],  # above 0.2 (strictly): 0.9, 0.5 -> 0.7 * 0.5
               [0.2, 0.1, 0.0, 0.15],  # none above 0.2 -> 0 (mmpose keeps the mean at 0)
               [0.3, np.nan, 0.3, 0.6],  # NaN never counts -> 0.4
               [1.0, 1.0, 1.0, 1.0]]
    np.testing.assert_allclose(rescore(box, kscores), [0.35, 0.0, 0.4, 1.0], rtol=1e-12)
    with pytest.raises(ValueError):
        rescore([1.0], kscores)


def test_rescore_arithmetic_is_mmpose_s():
    # The box score is float32 in mmpose's data sets: 0.1 enters as float32(0.1), not 0.1.
    assert rescore([0.1], [[0.5]])[0] == float(np.float32(0.1)) * 0.5
    # Keypoint scores are added one joint after the other, as mmpose's loop adds them: each 0.6 is
    # lost against 1e16 (half its spacing is 1), where numpy's pairwise sum adds them in pairs first.
    scores = np.array([[1e16] + [0.6] * 8])
    assert scores.sum() != 1e16
    assert rescore([1.0], scores)[0] == 1e16 / 9


def test_nms_per_image_groups_by_image():
    rng = np.random.default_rng(0)
    person = rng.uniform(0, 100, (17, 2))
    kpts = np.stack([person, person + 0.1, person, person + 0.1])
    keep = nms_per_image([7, 7, 3, 3], kpts, [0.2, 0.9, 0.8, 0.1], [5000] * 4, COCO.sigmas)
    np.testing.assert_array_equal(keep, [2, 1])  # image 3 first; one survivor per image


def test_tied_scores_keep_what_mmpose_keeps():
    # Image 1: instances 0 and 1 are duplicates of one person (OKS 0.996), 2 another; all score
    # 0.9. mmpose visits argsort(scores)[::-1] = [2, 1, 0]: keeps 2, keeps 1, drops 0 under 1.
    # Image 2: every score is 0 (no keypoint score above 0.2); 3 and 4 duplicate R, 5 and 6 are
    # both near S (OKS(5, 6) = 0.86 < 0.9). Visited [6, 5, 4, 3]: keeps 6, 5, 4, drops 3.
    # A stable first-come order would keep [0, 2] and [3, 5, 6]: the worse duplicates.
    _, pred = tie_fixture()
    scores = rescore(pred["box_score"], pred["keypoint_scores"])
    np.testing.assert_allclose(scores, [0.9] * 3 + [0.0] * 4, rtol=1e-15)
    assert scores[0] == scores[1] == scores[2]
    keep = nms_per_image(pred["image_id"], np.asarray(pred["keypoints"]), scores, pred["area"], COCO.sigmas)
    np.testing.assert_array_equal(keep, [2, 1, 6, 5, 4])


def _results(pred, scores=None):
    out = []
    for i, (xy, ks) in enumerate(zip(pred["keypoints"], pred["keypoint_scores"])):
        out.append({"image_id": pred["image_id"][i], "category_id": 1, "score": 0.5 if scores is None else scores[i],
                    "keypoints": [v for (x, y), s in zip(xy, ks) for v in (x, y, s)]})
    return out


def test_postprocess_results_is_the_array_path():
    _, pred = tie_fixture()
    results = _results(pred)
    assert postprocess_results(results, COCO.sigmas) is results  # nothing asked, nothing changed
    # Rescoring only: every result, new scores, box score 1.0 where a result has none.
    rescored = postprocess_results(results, COCO.sigmas, rescore_scores=True)
    assert [r["score"] for r in rescored] == pytest.approx([0.9] * 3 + [0.0] * 4, rel=1e-15)
    results[0]["box_score"] = 0.5
    assert postprocess_results(results, COCO.sigmas, rescore_scores=True)[0]["score"] == pytest.approx(0.45, rel=1e-15)
    del results[0]["box_score"]
    # Rescoring and NMS with the results' areas: the kept instances of the array path, in its order.
    for res, area in zip(results, pred["area"]):
        res["area"] = area
    kept = postprocess_results(results, COCO.sigmas, rescore_scores=True, nms_threshold=0.9)
    assert [r["keypoints"] for r in kept] == [results[i]["keypoints"] for i in (2, 1, 6, 5, 4)]
    # NMS alone keeps the file's scores; without "area" the keypoints' extent stands in (mmpose).
    for res in results:
        del res["area"]
    plain = postprocess_results(_results(pred, scores=[0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7]), COCO.sigmas,
                                nms_threshold=0.9)
    extent = keypoint_extent_areas(np.asarray(pred["keypoints"]))
    expected = nms_per_image(pred["image_id"], np.asarray(pred["keypoints"]), [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7],
                             extent, COCO.sigmas)
    assert [r["score"] for r in plain] == [[0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7][i] for i in expected]
    with pytest.raises(ValueError, match="result 0"):
        postprocess_results([{"image_id": 1, "keypoints": [0, 0, 1]}], COCO.sigmas, rescore_scores=True)


def test_keypoint_extent_areas():
    kpts = np.array([[[0, 0], [4, 1], [2, 3]], [[1, 1], [1, 1], [1, 1]]], float)
    np.testing.assert_array_equal(keypoint_extent_areas(kpts), [12.0, 0.0])
