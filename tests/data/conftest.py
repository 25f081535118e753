"""Fixtures for the data tests: a small synthetic COCO set and a hand-made one."""
from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from srpose_fast.keypoint_sets import COCO
from srpose_fast.data.synthetic import generate_synthetic_coco

SYN_SIZE = (160, 120)  # (H, W)


@pytest.fixture(scope="session")
def synthetic_set(tmp_path_factory):
    """(ann_file, img_prefix, (H, W)) of 40 synthetic images, seed 0."""
    root = tmp_path_factory.mktemp("synthetic")
    ann = generate_synthetic_coco(root, num_images=40, seed=0, image_size=SYN_SIZE, max_people=4,
                                  progress=False)
    return ann, root / "images" / "train", SYN_SIZE


def person(kpts, bbox, *, ann_id, image_id=1, area=None, **extra):
    """A COCO person annotation from a list of (x, y, v)."""
    flat = [float(v) for kp in kpts for v in kp]
    ann = {"id": ann_id, "image_id": image_id, "category_id": 1, "iscrowd": 0, "keypoints": flat,
           "num_keypoints": sum(1 for kp in kpts if kp[2] > 0), "bbox": list(bbox),
           "area": float(area if area is not None else bbox[2] * bbox[3])}
    ann.update(extra)
    return ann


def standing_keypoints(x0=40.0, y0=20.0, k=COCO.num_keypoints):
    """17 labelled keypoints on a loose upright layout inside (x0..x0+60, y0..y0+130)."""
    pts = [(30, 5), (35, 0), (25, 0), (40, 3), (20, 3), (45, 25), (15, 25), (55, 50), (5, 50),
           (60, 75), (0, 75), (40, 75), (20, 75), (42, 100), (18, 100), (44, 125), (16, 125)]
    return [(x0 + x, y0 + y, 2) for x, y in pts[:k]]


@pytest.fixture
def make_person():
    return person


@pytest.fixture
def make_keypoints():
    return standing_keypoints


@pytest.fixture
def write_coco(tmp_path):
    """write_coco(annotations, images=[(id, w, h)], categories=None) -> (ann_file, img_prefix).
    Images are written as random-noise JPEGs named <id>.jpg."""
    def write(annotations, images=((1, 160, 200),), categories=None, raw=None):
        img_dir = tmp_path / "images"
        img_dir.mkdir(exist_ok=True)
        rng = np.random.default_rng(0)
        entries = []
        for image_id, w, h in images:
            name = f"{image_id}.jpg"
            cv2.imwrite(str(img_dir / name), rng.integers(0, 256, (h, w, 3), dtype=np.uint8))
            entries.append({"id": image_id, "file_name": name, "width": w, "height": h})
        if categories is None:
            categories = [{"id": 1, "name": "person", "keypoints": list(COCO.names), "skeleton": []}]
        ann_file = tmp_path / "ann.json"
        if raw is not None:
            ann_file.write_text(raw)
        else:
            ann_file.write_text(json.dumps({"images": entries, "annotations": list(annotations),
                                            "categories": categories}))
        return ann_file, img_dir
    return write
