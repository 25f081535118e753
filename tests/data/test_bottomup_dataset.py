"""The bottom-up data set on a hand-made COCO keypoint file with crowd and keypoint-less annotations."""
from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
import torch
from torch.utils.data import default_collate

from srpose_fast.data import bottomup_transforms as bt
from srpose_fast.data.bottomup import BottomUpCocoDataset
from srpose_fast.data.synthetic_multi import uncompressed_rle

H, W = 96, 128


def person(keypoints, bbox, ann_id, **extra):
    """A non-crowd COCO person annotation on image 1 from 17 (x, y, v)."""
    return {"id": ann_id, "image_id": 1, "category_id": 1, "iscrowd": 0, "bbox": list(bbox), "area": 100.0,
            "keypoints": [float(v) for kp in keypoints for v in kp],
            "num_keypoints": sum(1 for kp in keypoints if kp[2] > 0), **extra}


@pytest.fixture
def coco_file(tmp_path):
    """Image 1: two people, a crowd region (RLE) and a person without keypoints (polygon); image 2: nothing."""
    images = tmp_path / "images"
    images.mkdir()
    for image_id in (1, 2):
        cv2.imwrite(str(images / f"{image_id}.png"), np.full((H, W, 3), 40 * image_id, np.uint8))
    crowd = np.zeros((H, W), np.uint8)
    crowd[60:90, 90:120] = 1
    anns = [
        person([(3.0 * k, 5.0 * k, 2) for k in range(17)], (0, 0, 60, 90), ann_id=1),
        person([(70.0, 20.0, 2)] + [(0, 0, 0)] * 16, (60, 10, 20, 20), ann_id=2),
        {"id": 3, "image_id": 1, "category_id": 1, "iscrowd": 1, "num_keypoints": 0, "area": 900.0,
         "bbox": [90, 60, 30, 30], "segmentation": uncompressed_rle(crowd)},
        person([(0, 0, 0)] * 17, (10, 60, 20, 20), ann_id=4, segmentation=[[10, 60, 30, 60, 30, 80, 10, 80]]),
    ]
    data = {"images": [{"id": i, "file_name": f"{i}.png", "height": H, "width": W} for i in (1, 2)],
            "annotations": anns, "categories": [{"id": 1, "name": "person"}]}
    path = tmp_path / "ann.json"
    path.write_text(json.dumps(data))
    return path, images


def test_train_samples_hold_people_mask_and_padding(coco_file, monkeypatch):
    ann, images = coco_file
    # The whole image as the square crop (side 128, centre (64, 48)), no rotation, no flip: x -> x / 2,
    # y -> (y - 48) / 2 + 32 on the 64-pixel heatmap.
    monkeypatch.setattr(bt, "draw_affine", lambda rng, h, w: bt.AffineDraw((64.0, 48.0), 128.0, 0.0))
    monkeypatch.setattr(bt, "FLIP_PROB", 0.0)
    ds = BottomUpCocoDataset(ann, images, input_size=128, heatmap_size=64, max_people=5)
    assert len(ds) == 1  # image 2 has no annotation: not a training image
    sample = ds[0]
    assert sample["image"].shape == (3, 128, 128) and sample["image"].dtype == torch.float32
    joints = sample["joints"]
    # People: 1, 2 and the keypoint-less person 4 (iscrowd 0); the crowd annotation is not a person.
    assert joints.shape == (5, 17, 3) and (joints[3:] == 0).all()
    assert joints[1, 0].tolist() == pytest.approx([35.0, 18.0, 2.0])
    assert joints[0, :, 2].tolist() == [2.0] * 17 and joints[2, :, 2].sum() == 0
    mask = sample["mask"]
    assert mask.shape == (64, 64)
    assert mask[40:44, 47:58].eq(0).all()  # the crowd region (x 90..120, y 60..90) -> (45..60, 38..53)
    assert mask[40:48, 6:14].eq(0).all()  # person 4's polygon (x 10..30, y 60..80) -> (5..15, 38..48)
    assert mask[20:30, 20:40].eq(1).all()
    assert mask[:7].eq(0).all()  # above the image (y < 0) the zero border
    batch = default_collate([sample, sample])
    assert batch["joints"].shape == (2, 5, 17, 3) and batch["mask"].shape == (2, 64, 64)


def test_augmentation_is_seeded_by_epoch_and_index(coco_file):
    ann, images = coco_file
    ds = BottomUpCocoDataset(ann, images, input_size=64, heatmap_size=64, seed=3)
    a, b = ds[0], ds[0]
    assert torch.equal(a["joints"], b["joints"]) and torch.equal(a["image"], b["image"])
    ds.set_epoch(1)
    assert not torch.equal(ds[0]["joints"], a["joints"])


def test_eval_samples_are_whole_images(coco_file):
    ann, images = coco_file
    ds = BottomUpCocoDataset(ann, images, train=False)
    assert len(ds) == 2
    sample = ds[1]
    assert sample["image"].shape == (H, W, 3) and sample["image"].dtype == np.uint8
    assert sample["image_id"] == 2 and (sample["height"], sample["width"]) == (H, W)
    assert (sample["image"] == 80).all()


def test_too_many_people_and_bad_files(coco_file, tmp_path):
    ann, images = coco_file
    with pytest.raises(IndexError, match="image 1 has 3 people"):
        BottomUpCocoDataset(ann, images, max_people=2)
    with pytest.raises(FileNotFoundError, match="annotation file"):
        BottomUpCocoDataset(tmp_path / "missing.json", images)
    broken = tmp_path / "broken.json"
    broken.write_text(json.dumps({"images": {}}))
    with pytest.raises(ValueError, match="'images' and 'annotations'"):
        BottomUpCocoDataset(broken, images)
