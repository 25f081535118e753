import json
import math

import cv2
import numpy as np
import pytest
import torch

from srpose_fast.data import TopDownCocoDataset, generate_synthetic_coco
from srpose_fast.keypoint_sets import COCO, MPII
from srpose_fast.engine.coco_metrics import STAT_NAMES, coco_keypoint_eval, keypoint_results, metrics_markdown
from srpose_fast.engine.evaluator import evaluate, nms_per_image, rescore
from srpose_fast.engine.pckh import head_sizes, pckh


pytestmark = pytest.mark.usefixtures("single_thread")  # tests/conftest.py


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    """(ann_file, img_prefix) of 8 synthetic images."""
    root = tmp_path_factory.mktemp("synthetic_eval")
    ann = generate_synthetic_coco(root, num_images=8, split="val", seed=5, progress=False)
    return ann, root / "images" / "val"


class GroundTruthModel(torch.nn.Module):
    """Returns each sample's ground-truth keypoints (score 1), in data set order, and checks that
    evaluate passes every crop's center and scale."""

    def __init__(self, dataset, offset=0.0):
        super().__init__()
        self.samples = dataset.samples
        self.keypoint_set = dataset.keypoint_set
        self.input_size = dataset.input_size
        self.offset = offset
        self.seen = 0

    def predict(self, images, *, flip_test, method, center, scale, backend):
        chunk = self.samples[self.seen:self.seen + images.shape[0]]
        self.seen += len(chunk)
        torch.testing.assert_close(center, torch.tensor(np.stack([s["center"] for s in chunk])))
        torch.testing.assert_close(scale, torch.tensor(np.stack([s["scale"] for s in chunk])))
        keypoints = torch.tensor(np.stack([s["keypoints"] for s in chunk])) + self.offset
        return keypoints, torch.ones(keypoints.shape[:2])


def _gt_results(ann_file, shift=0.0):
    data = json.loads(ann_file.read_text())
    out = []
    for ann in data["annotations"]:
        kpts = np.asarray(ann["keypoints"], float).reshape(-1, 3)
        kpts[:, :2] += shift
        out.append({"image_id": ann["image_id"], "category_id": 1, "score": 1.0,
                    "keypoints": [float(v) for v in kpts.reshape(-1)]})
    return out


# ------------------------------------------------------------------------------------ rescoring, NMS


def test_rescore_rule():
    box = [0.5, 0.8, 1.0, 1.0]
    kscores = [[0.9, 0.1, 0.5, 0.2],  # above 0.2 (strictly): 0.9, 0.5 -> 0.7 * 0.5
               [0.2, 0.1, 0.0, 0.15],  # none above 0.2 -> 0 (mmpose keeps the mean at 0)
               [0.3, np.nan, 0.3, 0.6],  # NaN never counts -> 0.4
               [1.0, 1.0, 1.0, 1.0]]
    np.testing.assert_allclose(rescore(box, kscores), [0.35, 0.0, 0.4, 1.0], rtol=1e-12)
    with pytest.raises(ValueError):
        rescore([1.0], kscores)


def test_nms_per_image_groups_by_image():
    rng = np.random.default_rng(0)
    person = rng.uniform(0, 100, (17, 2))
    kpts = np.stack([person, person + 0.1, person, person + 0.1])
    keep = nms_per_image([7, 7, 3, 3], kpts, [0.2, 0.9, 0.8, 0.1], [5000] * 4, COCO.sigmas)
    np.testing.assert_array_equal(keep, [2, 1])  # image 3 first; one survivor per image


# ------------------------------------------------------------------------------------ COCOeval


def test_coco_eval_ground_truth_and_shifted(synthetic):
    ann, _ = synthetic
    exact = coco_keypoint_eval(ann, _gt_results(ann), COCO.sigmas)
    assert tuple(exact) == STAT_NAMES
    assert exact["AP"] == pytest.approx(1.0) and exact["AR"] == pytest.approx(1.0)
    shifted = coco_keypoint_eval(ann, _gt_results(ann, shift=4.0), COCO.sigmas)
    assert shifted["AP"] < 0.9
    assert 0.0 <= shifted["AP"] <= exact["AP"]


def test_coco_eval_clear_errors(synthetic):
    ann, _ = synthetic
    with pytest.raises(ValueError, match="no predictions"):
        coco_keypoint_eval(ann, [], COCO.sigmas)
    with pytest.raises(ValueError, match="keypoint values"):
        coco_keypoint_eval(ann, _gt_results(ann), MPII.sigmas)
    bad = _gt_results(ann)[:1]
    bad[0]["image_id"] = 10 ** 6
    with pytest.raises(ValueError, match="image ids"):
        coco_keypoint_eval(ann, bad, COCO.sigmas)


def test_keypoint_results_format_and_markdown():
    res = keypoint_results([4], np.arange(34, dtype=float).reshape(1, 17, 2), np.full((1, 17), 0.5), [0.25])
    assert res[0]["image_id"] == 4 and res[0]["category_id"] == 1 and res[0]["score"] == 0.25
    assert res[0]["keypoints"][:6] == [0.0, 1.0, 0.5, 2.0, 3.0, 0.5]
    md = metrics_markdown({"AP": 0.7512, "APm": -1.0}, title="t")
    assert "| AP | APm |" in md and "| 75.1 | -1 |" in md and md.startswith("**t**")


# ------------------------------------------------------------------------------------ evaluate


def test_evaluate_with_ground_truth_predictions(synthetic, tmp_path):
    ann, prefix = synthetic
    dataset = TopDownCocoDataset(ann, prefix, train=False)
    model = GroundTruthModel(dataset)
    stats = evaluate(model, dataset, batch_size=5, out_dir=tmp_path, progress=False)
    assert model.seen == len(dataset)
    assert stats["AP"] == pytest.approx(1.0) and stats["AR"] == pytest.approx(1.0)
    assert set(stats) == set(STAT_NAMES)
    assert json.loads((tmp_path / "metrics.json").read_text()) == pytest.approx(stats)
    assert "| AP | AP50 |" in (tmp_path / "metrics.md").read_text()
    results = json.loads((tmp_path / "keypoints_results.json").read_text())
    assert len(results) == len(dataset)  # ground-truth persons do not suppress each other
    assert all(r["category_id"] == 1 and len(r["keypoints"]) == 51 and r["score"] == 1.0 for r in results)

    # Far-off predictions score low: the stub's numbers are not an artefact of the pipeline.
    off = evaluate(GroundTruthModel(dataset, offset=15.0), dataset, batch_size=5, progress=False)
    assert off["AP"] < 0.5


def test_evaluate_real_model(synthetic, tmp_path):
    from srpose_fast.models import build_model

    torch.manual_seed(0)
    model = build_model("srpose_demo")
    ann, prefix = synthetic
    dataset = TopDownCocoDataset(ann, prefix, train=False, input_size=model.input_size)
    stats = evaluate(model, dataset, batch_size=8, method="dark", out_dir=tmp_path, progress=False)
    assert all(name in stats and (stats[name] == -1 or 0.0 <= stats[name] <= 1.0) for name in STAT_NAMES)
    for name in ("keypoints_results.json", "metrics.json", "metrics.md"):
        assert (tmp_path / name).stat().st_size > 0
    results = json.loads((tmp_path / "keypoints_results.json").read_text())
    assert 1 <= len(results) <= len(dataset)

    with pytest.raises(ValueError, match="input size"):
        evaluate(model, TopDownCocoDataset(ann, prefix, train=False), progress=False)


def test_evaluate_empty_dataset(tmp_path):
    ann = tmp_path / "empty.json"
    ann.write_text(json.dumps({"images": [{"id": 1, "file_name": "x.jpg", "width": 64, "height": 64}],
                               "annotations": [], "categories": [{"id": 1, "name": "person"}]}))
    dataset = TopDownCocoDataset(ann, tmp_path, train=False)
    with pytest.raises(ValueError, match="nothing to evaluate"):
        evaluate(GroundTruthModel(dataset), dataset, progress=False)


# ------------------------------------------------------------------------------------ PCKh


def test_pckh_hand_example():
    names = MPII.names
    j = {n: i for i, n in enumerate(names)}
    gt = np.tile(np.arange(16, dtype=float)[:, None] * 10.0, (3, 1, 2))
    pred = gt.copy()
    visible = np.ones((3, 16))
    # Person 0, head size 10 (threshold 5): every error 4 except r_wrist 6 (wrong) and pelvis 100
    # (wrong, but pelvis does not count in PCKh); thorax not labelled.
    pred[0] += [4.0, 0.0]
    pred[0, j["r_wrist"]] = gt[0, j["r_wrist"]] + [6.0, 0.0]
    pred[0, j["pelvis"]] = gt[0, j["pelvis"]] + [100.0, 0.0]
    visible[0, j["thorax"]] = 0
    # Person 1, head size 20 (threshold 10): every error exactly 10 (correct: <= threshold),
    # l_ankle 11 (wrong); head_top not labelled.
    pred[1] += [6.0, 8.0]
    pred[1, j["l_ankle"]] = gt[1, j["l_ankle"]] + [11.0, 0.0]
    visible[1, j["head_top"]] = 0
    # Person 2 has no head size: left out entirely.
    pred[2] += 1000.0
    out = pckh(pred, gt, visible, [10.0, 20.0, np.nan])
    assert out["PCKh"] == pytest.approx(25 / 27)  # 13/14 + 12/13 over the 14 counted joints
    assert out["Head"] == 1.0 and out["Wrist"] == 0.75 and out["Ankle"] == 0.75 and out["Shoulder"] == 1.0
    assert out["pelvis"] == 0.5 and out["thorax"] == 1.0 and out["r_wrist"] == 0.5


def test_head_sizes_box_and_fallback():
    def ann(head_top, upper_neck, **extra):
        k = np.zeros((16, 3))
        k[MPII.names.index("head_top")] = head_top
        k[MPII.names.index("upper_neck")] = upper_neck
        return {"id": 1, "keypoints": k.reshape(-1).tolist(), **extra}

    sizes = head_sizes([ann((0, 0, 0), (0, 0, 0), head_box=[5, 5, 35, 45]),  # 0.6 * 50
                        ann((10, 10, 2), (10, 22, 1)),  # head segment: 12
                        ann((10, 10, 2), (0, 0, 0))])  # no head size
    np.testing.assert_allclose(sizes, [30.0, 12.0, np.nan])
    with pytest.raises(ValueError, match="head_box"):
        head_sizes([{"id": 3, "keypoints": [0] * 51}], COCO)


def _write_mpii(tmp_path):
    """Two noise images with three MPII persons; the first has a head box (head size 30), the others
    fall back on their head segment (12 px)."""
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
        k[MPII.names.index("upper_neck"), :2] = (x0 + 25, 40)
        k[MPII.names.index("head_top"), :2] = (x0 + 25, 28)
        ann = {"id": ann_id, "image_id": image_id, "category_id": 1, "iscrowd": 0, "num_keypoints": 16,
               "keypoints": k.reshape(-1).tolist(), "bbox": [x0, 20.0, 55.0, 165.0], "area": 55.0 * 165.0}
        if ann_id == 1:
            ann["head_box"] = [x0 + 7, 10.0, x0 + 37, 50.0]
        anns.append(ann)
    path = tmp_path / "mpii.json"
    path.write_text(json.dumps({"images": images, "annotations": anns,
                                "categories": [{"id": 1, "name": "person", "keypoints": list(MPII.names)}]}))
    return path


def test_evaluate_mpii_pckh_and_custom_sigmas(tmp_path):
    dataset = TopDownCocoDataset(_write_mpii(tmp_path), tmp_path, keypoint_set="mpii", train=False)
    assert len(dataset) == 3
    exact = evaluate(GroundTruthModel(dataset), dataset, progress=False)
    assert exact["AP"] == pytest.approx(1.0)
    assert exact["PCKh"] == 1.0 and exact["PCKh@0.1"] == 1.0 and exact["Head"] == 1.0
    # An error of 10 px: within 0.5 x 30 for the person with the head box, beyond 0.5 x 12 for the others.
    off = evaluate(GroundTruthModel(dataset, offset=10.0 / math.sqrt(2)), dataset, progress=False)
    assert off["PCKh"] == pytest.approx(1 / 3)
    assert off["PCKh@0.1"] == 0.0
