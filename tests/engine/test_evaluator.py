import json
import math

import cv2
import numpy as np
import pytest
import torch

from srpose_fast.data import TopDownCocoDataset, generate_synthetic_coco
from srpose_fast.keypoint_sets import COCO, MPII
from srpose_fast.engine.coco_metrics import STAT_NAMES, coco_keypoint_eval, keypoint_results, metrics_markdown
from srpose_fast.engine.evaluator import evaluate
from stub_models import GroundTruthModel


pytestmark = pytest.mark.usefixtures("single_thread")  # tests/conftest.py


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    """(ann_file, img_prefix) of 8 synthetic images."""
    root = tmp_path_factory.mktemp("synthetic_eval")
    ann = generate_synthetic_coco(root, num_images=8, split="val", seed=5, progress=False)
    return ann, root / "images" / "val"


def _gt_results(ann_file, shift=0.0):
    data = json.loads(ann_file.read_text())
    out = []
    for ann in data["annotations"]:
        kpts = np.asarray(ann["keypoints"], float).reshape(-1, 3)
        kpts[:, :2] += shift
        out.append({"image_id": ann["image_id"], "category_id": 1, "score": 1.0,
                    "keypoints": [float(v) for v in kpts.reshape(-1)]})
    return out


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


def test_evaluate_thresholds_reach_rescoring_and_nms(synthetic, tmp_path):
    ann, prefix = synthetic
    dataset = TopDownCocoDataset(ann, prefix, train=False)
    evaluate(GroundTruthModel(dataset, score=0.5), dataset, progress=False, out_dir=tmp_path / "a",
             vis_thr=0.6, oks_nms_thr=1e-9)
    results = json.loads((tmp_path / "a" / "keypoints_results.json").read_text())
    assert all(r["score"] == 0.0 for r in results)  # no keypoint score above 0.6
    assert len(results) == len({s["image_id"] for s in dataset.samples}) < len(dataset)  # one kept per image
