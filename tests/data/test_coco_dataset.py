"""TopDownCocoDataset: loading, samples, and the documented errors."""
from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
import torch

from srpose_fast.data.coco import TopDownCocoDataset
from srpose_fast.keypoint_sets import COCO, CROWDPOSE, MPII
from srpose_fast.data.transforms import AugmentParams, affine_points, box_to_center_scale, get_affine_transform


def test_train_samples_shapes_dtypes_and_epochs(synthetic_set):
    ann, prefix, _ = synthetic_set
    ds = TopDownCocoDataset(ann, prefix, input_size=(128, 96), seed=1)
    n_anns = sum(a["num_keypoints"] > 0 for a in json.loads(ann.read_text())["annotations"])
    assert len(ds) == n_anns and ds.heatmap_size == (128, 96)
    s = ds[3]
    assert s["image"].shape == (3, 128, 96) and s["image"].dtype == torch.float32
    assert s["keypoints"].shape == (17, 2) and s["keypoints"].dtype == torch.float32
    for key in ("target_weight", "visible"):
        assert s[key].shape == (17,) and s[key].dtype == torch.float32
        assert set(s[key].tolist()) <= {0.0, 1.0}
    assert s["center"].shape == (2,) and s["scale"].shape == (2,)
    assert isinstance(s["image_id"], int) and s["box_score"] == 1.0 and s["area"] > 0 and s["index"] == 3
    assert torch.equal(s["target_weight"], s["visible"])  # the visibility; the loss applies the window rule
    assert torch.equal(ds[3]["image"], s["image"])  # same seed, epoch and index: same sample
    ds.set_epoch(1)
    assert not torch.equal(ds[3]["image"], s["image"])


def test_eval_sample_is_the_plain_affine_crop(synthetic_set):
    ann, prefix, _ = synthetic_set
    ds = TopDownCocoDataset(ann, prefix, train=False, input_size=(128, 96))
    data = json.loads(ann.read_text())
    first = next(a for a in data["annotations"] if a["num_keypoints"] > 0)
    s = ds[0]
    assert s["image_id"] == first["image_id"]
    x, y, w, h = first["bbox"]  # inside the image; mmpose's clean box is (x, y, w - 1, h - 1)
    center, scale = box_to_center_scale(x, y, w - 1, h - 1, (128, 96))
    np.testing.assert_allclose(s["center"], center, atol=1e-4)
    np.testing.assert_allclose(s["scale"], scale, atol=1e-6)
    k = np.asarray(first["keypoints"], np.float32).reshape(17, 3)
    lab = k[:, 2] > 0
    t = get_affine_transform(center, scale, 0.0, (128, 96))
    np.testing.assert_allclose(s["keypoints"].numpy()[lab], affine_points(k[lab, :2], t), atol=1e-3)
    np.testing.assert_array_equal(s["visible"].numpy(), lab.astype(np.float32))


def test_missing_and_malformed_annotation_files(tmp_path, write_coco):
    missing = tmp_path / "nope.json"
    with pytest.raises(FileNotFoundError, match="nope.json"):
        TopDownCocoDataset(missing, tmp_path)
    ann, prefix = write_coco([], raw='{"images": [')
    with pytest.raises(ValueError, match=r"ann\.json.*not valid JSON"):
        TopDownCocoDataset(ann, prefix)
    ann, prefix = write_coco([], raw='{"images": []}')
    with pytest.raises(ValueError, match=r"ann\.json.*'annotations'"):
        TopDownCocoDataset(ann, prefix)
    ann, prefix = write_coco([], raw='{"images": [{"id": 1}], "annotations": []}')
    with pytest.raises(ValueError, match=r"images\[0\] lacks"):
        TopDownCocoDataset(ann, prefix)


def test_keypoint_count_is_checked_against_the_keypoint_set(write_coco, make_person, make_keypoints):
    ann, prefix = write_coco([make_person(make_keypoints(), (30, 10, 80, 150), ann_id=1)])
    with pytest.raises(ValueError, match="17 keypoints.*crowdpose.*14"):
        TopDownCocoDataset(ann, prefix, keypoint_set=CROWDPOSE)
    ann, prefix = write_coco([make_person(make_keypoints(), (30, 10, 80, 150), ann_id=1)], categories=[])
    with pytest.raises(ValueError, match="51 keypoint values.*mpii.*48"):
        TopDownCocoDataset(ann, prefix, keypoint_set="mpii")


def test_mpii_in_coco_format(write_coco, make_person, make_keypoints):
    cats = [{"id": 1, "name": "person", "keypoints": list(MPII.names)}]
    ann, prefix = write_coco([make_person(make_keypoints(k=16), (30, 10, 80, 150), ann_id=1)], categories=cats)
    ds = TopDownCocoDataset(ann, prefix, keypoint_set=MPII, input_size=(64, 64))
    s = ds[0]
    assert s["keypoints"].shape == (16, 2) and s["image"].shape == (3, 64, 64)


def test_undecodable_and_missing_images_name_the_file(write_coco, make_person, make_keypoints):
    ann, prefix = write_coco([make_person(make_keypoints(), (30, 10, 80, 150), ann_id=1)])
    ds = TopDownCocoDataset(ann, prefix)
    (prefix / "1.jpg").write_bytes(b"\xff\xd8 this is not a jpeg")
    with pytest.raises(ValueError, match=r"could not decode image .*1\.jpg"):
        ds[0]
    (prefix / "1.jpg").unlink()
    with pytest.raises(FileNotFoundError, match=r"1\.jpg"):
        ds[0]


def test_boxes_outside_the_image_are_dropped_counted_and_warned_once(write_coco, make_person, make_keypoints):
    good = make_person(make_keypoints(), (30, 10, 80, 150), ann_id=1)
    outside = make_person(make_keypoints(), (500, 10, 40, 40), ann_id=2)  # image is 160 wide
    degenerate = make_person(make_keypoints(), (30, 10, 0.5, 40), ann_id=3)
    ann, prefix = write_coco([good, outside, degenerate])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ds = TopDownCocoDataset(ann, prefix)
    msgs = [str(w.message) for w in caught if "dropped" in str(w.message)]
    assert len(msgs) == 1 and "dropped 2 person boxes" in msgs[0]
    assert len(ds) == 1 and ds.num_dropped_boxes == 2


def test_boxes_are_clipped_to_the_image(write_coco, make_person, make_keypoints):
    ann, prefix = write_coco([make_person(make_keypoints(), (-20, 150, 100, 100), ann_id=1)])  # 160x200 image
    ds = TopDownCocoDataset(ann, prefix)
    # mmpose 0.x: x1 = max(0, x), x2 = min(W - 1, x1 + max(0, w - 1)): the far corner from the clipped one.
    np.testing.assert_allclose(ds.samples[0]["bbox"], [0, 150, 99, 49])


def _mmpose_shifted_centres(data, seed, prob=0.3):
    """SPEC.md section 2 as mmpose 0.x draws it: np.random seeded, images in the file's order, each usable box
    draws rand() and, when below 0.3, moves its float32 centre by 0.4 * (rand(2) - 0.5) * (w, h)."""
    np.random.seed(seed)
    centres = []
    for img in data["images"]:
        for ann in (a for a in data["annotations"] if a["image_id"] == img["id"]):
            x, y, w, h = ann["bbox"]
            x1, y1 = max(0, x), max(0, y)
            w, h = min(img["width"] - 1, x1 + max(0, w - 1)) - x1, min(img["height"] - 1, y1 + max(0, h - 1)) - y1
            centre = np.array([x1 + w * 0.5, y1 + h * 0.5], dtype=np.float32)
            if np.random.rand() < prob:
                centre += 0.4 * (np.random.rand(2) - 0.5) * [w, h]
            centres.append(centre)
    return np.stack(centres)


def test_training_box_centres_move_as_srpose_draws_them_once(write_coco, make_person, make_keypoints):
    rng = np.random.default_rng(0)
    images = [(image_id, 320, 240) for image_id in (7, 3, 11, 5)]  # ids out of order: the file's order counts
    people = [make_person(make_keypoints(x0=float(rng.integers(0, 200)), y0=float(rng.integers(0, 80))),
                          (float(rng.integers(-10, 200)), float(rng.integers(0, 80)), float(rng.integers(40, 120)),
                           float(rng.integers(90, 160))), ann_id=10 * image_id + i, image_id=image_id)
              for image_id, _, _ in images for i in range(15)]
    ann, prefix = write_coco(people, images=images)
    data = json.loads(ann.read_text())

    train = TopDownCocoDataset(ann, prefix, seed=5)
    plain = np.stack([s["center"] for s in TopDownCocoDataset(ann, prefix, train=False).samples])
    got = np.stack([s["center"] for s in train.samples])
    assert len(got) == 60 and got.dtype == np.float32
    np.testing.assert_array_equal(got, _mmpose_shifted_centres(data, seed=5))
    moved = (got != plain).any(axis=1)
    assert 0.15 < moved.mean() < 0.45
    boxes = np.stack([s["bbox"] for s in train.samples])
    assert (np.abs(got - plain) <= 0.2 * boxes[:, 2:] + 1e-4).all()

    train.set_epoch(3)  # drawn once: the epoch does not move them again
    np.testing.assert_array_equal(np.stack([s["center"] for s in train.samples]), got)
    other = np.stack([s["center"] for s in TopDownCocoDataset(ann, prefix, seed=6).samples])
    assert (other != got).any()
    off = TopDownCocoDataset(ann, prefix, seed=5, augment=AugmentParams(box_shift_prob=0.0))
    np.testing.assert_array_equal(np.stack([s["center"] for s in off.samples]), plain)


def test_instances_without_labelled_keypoints_are_skipped(write_coco, make_person, make_keypoints):
    none = make_person([(0, 0, 0)] * 17, (30, 10, 80, 150), ann_id=2)
    crowd = make_person(make_keypoints(), (30, 10, 80, 150), ann_id=3, iscrowd=1)
    ann, prefix = write_coco([make_person(make_keypoints(), (30, 10, 80, 150), ann_id=1), none, crowd])
    for train in (True, False):
        ds = TopDownCocoDataset(ann, prefix, train=train)
        assert len(ds) == 1 and ds.num_without_keypoints == 1


def test_detections_for_evaluation(tmp_path, write_coco, make_person, make_keypoints):
    ann, prefix = write_coco([make_person(make_keypoints(), (30, 10, 80, 150), ann_id=1)],
                             images=((1, 160, 200), (2, 120, 100)))
    dets = [
        {"image_id": 1, "category_id": 1, "bbox": [-10, 5, 90, 160], "score": 0.9},
        {"image_id": 2, "category_id": 1, "bbox": [10, 5, 50, 60], "score": 0.3},
        {"image_id": 2, "category_id": 1, "bbox": [10, 5, 50, 60], "score": 0.05},  # below threshold
        {"image_id": 2, "category_id": 2, "bbox": [10, 5, 50, 60], "score": 0.9},  # not a person
        {"image_id": 2, "category_id": 1, "bbox": [200, 5, 50, 60], "score": 0.9},  # outside the image
        {"image_id": 2, "category_id": 1, "bbox": [10, 5, 0, 60], "score": 0.9},  # no area
    ]
    det_file = tmp_path / "dets.json"
    det_file.write_text(json.dumps(dets))
    with pytest.warns(UserWarning, match="dropped 2 person boxes"):
        ds = TopDownCocoDataset(ann, prefix, train=False, detections=det_file, min_box_score=0.1)
    assert len(ds) == 2
    s = ds[0]
    assert s["image_id"] == 1 and s["box_score"] == pytest.approx(0.9) and s["area"] == pytest.approx(90 * 160)
    np.testing.assert_allclose(s["center"], [35, 85])  # detection boxes are used unclipped, as in mmpose
    assert s["target_weight"].sum() == 0 and s["visible"].sum() == 0
    assert ds[1]["image_id"] == 2

    det_file.write_text(json.dumps([{"image_id": 9, "bbox": [0, 0, 5, 5], "score": 1.0}]))
    with pytest.raises(ValueError, match="image_id 9"):
        TopDownCocoDataset(ann, prefix, train=False, detections=det_file)
    det_file.write_text(json.dumps([{"image_id": 1, "bbox": [0, 0, 5], "score": 1.0}]))
    with pytest.raises(ValueError, match=r"dets.json: entry 0: each box needs 4 numbers"):
        TopDownCocoDataset(ann, prefix, train=False, detections=det_file)
    with pytest.raises(FileNotFoundError, match="missing_dets"):
        TopDownCocoDataset(ann, prefix, train=False, detections=tmp_path / "missing_dets.json")
    with pytest.raises(ValueError, match="evaluation"):
        TopDownCocoDataset(ann, prefix, train=True, detections=det_file)


def test_image_size_mismatch_is_reported(write_coco, make_person, make_keypoints):
    ann, prefix = write_coco([make_person(make_keypoints(), (30, 10, 80, 150), ann_id=1)])
    data = json.loads(ann.read_text())
    data["images"][0]["width"] = 161
    ann.write_text(json.dumps(data))
    with pytest.raises(ValueError, match=r"1\.jpg is 160x200"):
        TopDownCocoDataset(ann, prefix)[0]
