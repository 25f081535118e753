import json
import math

import cv2
import numpy as np
import pytest

from mpii_fixtures import HEAD_SIZES, write_mpii
from srpose_fast.data import TopDownCocoDataset
from srpose_fast.engine.evaluator import evaluate
from srpose_fast.engine.pckh import EXCLUDED_FROM_MEAN, head_box_sizes, head_sizes, pckh
from srpose_fast.keypoint_sets import COCO, MPII
from stub_models import GroundTruthModel

pytestmark = pytest.mark.usefixtures("single_thread")  # tests/conftest.py
J = {n: i for i, n in enumerate(MPII.names)}


def test_pckh_hand_example():
    gt = np.tile(np.arange(16, dtype=float)[:, None] * 10.0, (3, 1, 2))
    pred = gt.copy()
    visible = np.ones((3, 16))
    # Person 0, head size 10 (threshold 5): every error 4 except r_wrist 6 (wrong) and pelvis 100
    # (wrong, but pelvis is not in the Mean); thorax not labelled.
    pred[0] += [4.0, 0.0]
    pred[0, J["r_wrist"]] = gt[0, J["r_wrist"]] + [6.0, 0.0]
    pred[0, J["pelvis"]] = gt[0, J["pelvis"]] + [100.0, 0.0]
    visible[0, J["thorax"]] = 0
    # Person 1, head size 20 (threshold 10): every error exactly 10 (correct: <= threshold),
    # l_ankle 11 (wrong); head_top and l_wrist not labelled.
    pred[1] += [6.0, 8.0]
    pred[1, J["l_ankle"]] = gt[1, J["l_ankle"]] + [11.0, 0.0]
    visible[1, [J["head_top"], J["l_wrist"]]] = 0
    # Person 2 has no head size: left out entirely.
    pred[2] += 1000.0
    out = pckh(pred, gt, visible, [10.0, 20.0, np.nan])
    # Mean: the 14 joints but pelvis and thorax pooled: 13 of 14 (person 0) + 11 of 12 (person 1).
    assert out["Mean"] == pytest.approx(24 / 26)
    # Per joint, then each column the mean of its left and right joint, as the MPII table:
    # Wrist = (l_wrist 1/1 + r_wrist 1/2) / 2 = 0.75, not the pooled 2/3.
    assert out["l_wrist"] == 1.0 and out["r_wrist"] == 0.5 and out["Wrist"] == 0.75
    assert out["Ankle"] == 0.75 and out["Head"] == 1.0 and out["Shoulder"] == 1.0
    assert out["pelvis"] == 0.5 and out["thorax"] == 1.0
    assert set(EXCLUDED_FROM_MEAN) == {"pelvis", "thorax"}


def test_head_sizes_box_and_fallback():
    def ann(head_top, upper_neck, **extra):
        k = np.zeros((16, 3))
        k[J["head_top"]] = head_top
        k[J["upper_neck"]] = upper_neck
        return {"id": 1, "keypoints": k.reshape(-1).tolist(), **extra}

    sizes = head_sizes([ann((0, 0, 0), (0, 0, 0), head_box=[5, 5, 35, 45]),  # 0.6 * 50
                        ann((10, 10, 2), (10, 22, 1)),  # head segment: 12
                        ann((10, 10, 2), (0, 0, 0))])  # no head size
    np.testing.assert_allclose(sizes, [30.0, 12.0, np.nan])
    np.testing.assert_allclose(head_box_sizes([[[1, 1], [31, 41]]]), [30.0])  # (N, 2, 2) corners too
    with pytest.raises(ValueError, match="head_box"):
        head_sizes([{"id": 3, "keypoints": [0] * 51}], COCO)


# --------------------------------------------------------------------------- mmpose's MPII layout


@pytest.fixture
def mpii(tmp_path):
    return write_mpii(tmp_path)


def test_evaluate_mmpose_mpii_with_the_official_ground_truth(mpii, tmp_path):
    dataset = TopDownCocoDataset(mpii.ann, mpii.images, keypoint_set="mpii", input_size=(64, 64), train=False)
    assert len(dataset) == 4 and dataset.coco is None
    exact = evaluate(GroundTruthModel(dataset), dataset, progress=False, out_dir=tmp_path / "out")
    assert exact["PCKh@0.5"] == 1.0 and exact["PCKh@0.1"] == 1.0
    assert all(exact[g] == 1.0 for g in ("Head", "Shoulder", "Elbow", "Wrist", "Hip", "Knee", "Ankle"))
    assert list(json.loads((tmp_path / "out" / "metrics.json").read_text()))[:2] == ["PCKh@0.5", "PCKh@0.1"]
    table = (tmp_path / "out" / "metrics.md").read_text()
    assert "| Head | Shoulder | Elbow | Wrist | Hip | Knee | Ankle | PCKh@0.5 | PCKh@0.1 |" in table
    assert "| r_ankle |" in table
    results = json.loads((tmp_path / "out" / "keypoints_results.json").read_text())
    assert [r["image_id"] for r in results] == [11, 22, 22, 33]  # every person, in file order, no NMS

    # Each person moved by 5 px: within 0.5 x head size for head sizes 30 and 15, not 3; within
    # 0.1 x head size for nobody (5 > 3). The head sizes come from the .mat's head boxes.
    counted = mpii.labelled[:, [n not in EXCLUDED_FROM_MEAN for n in MPII.names]].sum(1)
    off = evaluate(GroundTruthModel(dataset, offset=(3.0, 4.0)), dataset, progress=False)
    assert off["PCKh@0.5"] == pytest.approx(counted[:3].sum() / counted.sum())
    assert off["PCKh@0.1"] == 0.0
    # 2 px: at 0.1 only the head size 30 counts (2 <= 3).
    near = evaluate(GroundTruthModel(dataset, offset=(2.0, 0.0)), dataset, progress=False)
    assert near["PCKh@0.1"] == pytest.approx(counted[0] / counted.sum())
    assert HEAD_SIZES == (30.0, 15.0, 15.0, 3.0)


def test_mpii_predictions_are_compared_in_matlab_pixels(mpii):
    # The .mat is 1-based; predictions are 0-based pixels. Predicting the .mat's numbers unconverted
    # is a 1-pixel error: beyond 0.1 x 3 for the small head, within it for the others.
    dataset = TopDownCocoDataset(mpii.ann, mpii.images, keypoint_set="mpii", input_size=(64, 64), train=False)
    stats = evaluate(GroundTruthModel(dataset, offset=(1.0, 0.0)), dataset, progress=False)
    counted = mpii.labelled[:, [n not in EXCLUDED_FROM_MEAN for n in MPII.names]].sum(1)
    assert stats["PCKh@0.5"] == 1.0
    assert stats["PCKh@0.1"] == pytest.approx(counted[:3].sum() / counted.sum())


def test_mpii_ground_truth_file_errors(tmp_path):
    def dataset_of(fixture):
        return TopDownCocoDataset(fixture.ann, fixture.images, keypoint_set="mpii", input_size=(64, 64), train=False)

    fixture = write_mpii(tmp_path / "a")
    fixture.mat.unlink()
    with pytest.raises(FileNotFoundError, match="mpii_gt_val.mat"):
        evaluate(GroundTruthModel(dataset_of(fixture)), dataset_of(fixture), progress=False)
    short = write_mpii(tmp_path / "b", gt_persons=3)
    with pytest.raises(ValueError, match="holds 3 persons"):
        evaluate(GroundTruthModel(dataset_of(short)), dataset_of(short), progress=False)
    shuffled = write_mpii(tmp_path / "c", names=("lank", "rkne") + tuple(f"j{i}" for i in range(14)))
    with pytest.raises(ValueError, match="dataset_joints"):
        evaluate(GroundTruthModel(dataset_of(shuffled)), dataset_of(shuffled), progress=False)


# --------------------------------------------------------------------------- MPII in COCO format


def _write_coco_mpii(tmp_path):
    """Two noise images with three MPII persons in COCO format; the first has a head box (head size
    30), the others fall back on their head segment (12 px)."""
    rng = np.random.default_rng(0)
    images, anns = [], []
    for image_id in (1, 2):
        cv2.imwrite(str(tmp_path / f"{image_id}.jpg"), rng.integers(0, 256, (200, 160, 3), dtype=np.uint8))
        images.append({"id": image_id, "file_name": f"{image_id}.jpg", "width": 160, "height": 200})
    for ann_id, (image_id, x0) in enumerate(((1, 20.0), (1, 90.0), (2, 40.0)), start=1):
        k = np.zeros((16, 3))
        k[:, 0] = x0 + rng.uniform(0, 50, 16)
        k[:, 1] = rng.uniform(40, 180, 16)
        k[:, 2] = 2
        k[J["upper_neck"], :2] = (x0 + 25, 40)
        k[J["head_top"], :2] = (x0 + 25, 28)
        ann = {"id": ann_id, "image_id": image_id, "category_id": 1, "iscrowd": 0, "num_keypoints": 16,
               "keypoints": k.reshape(-1).tolist(), "bbox": [x0, 20.0, 55.0, 165.0], "area": 55.0 * 165.0}
        if ann_id == 1:
            ann["head_box"] = [x0 + 7, 10.0, x0 + 37, 50.0]
        anns.append(ann)
    path = tmp_path / "mpii.json"
    path.write_text(json.dumps({"images": images, "annotations": anns,
                                "categories": [{"id": 1, "name": "person", "keypoints": list(MPII.names)}]}))
    return path


def test_evaluate_coco_format_mpii(tmp_path):
    dataset = TopDownCocoDataset(_write_coco_mpii(tmp_path), tmp_path, keypoint_set="mpii", train=False)
    assert len(dataset) == 3
    with pytest.warns(UserWarning, match="head segment"):
        exact = evaluate(GroundTruthModel(dataset), dataset, progress=False)
    assert exact["PCKh@0.5"] == 1.0 and exact["PCKh@0.1"] == 1.0 and exact["Head"] == 1.0
    # An error of 10 px: within 0.5 x 30 for the person with the head box, beyond 0.5 x 12 for the others.
    with pytest.warns(UserWarning, match="head segment"):
        off = evaluate(GroundTruthModel(dataset, offset=10.0 / math.sqrt(2)), dataset, progress=False)
    assert off["PCKh@0.5"] == pytest.approx(1 / 3)
    assert off["PCKh@0.1"] == 0.0
    # COCO-style AP of the same file, on request.
    assert evaluate(GroundTruthModel(dataset), dataset, progress=False, benchmark="coco")["AP"] == pytest.approx(1.0)
