"""The multi-person synthetic set: several people per image, crowd regions and keypoint-less people in COCO's
formats, readable by the bottom-up data set, deterministic."""
from __future__ import annotations

import json

import numpy as np
from pycocotools import mask as mask_utils

from srpose_fast.data import synthetic_multi
from srpose_fast.data.bottomup import BottomUpCocoDataset
from srpose_fast.data.synthetic_multi import generate_synthetic_bottomup, uncompressed_rle


def test_uncompressed_rle_decodes_to_the_mask():
    rng = np.random.default_rng(0)
    for first in (0, 1):
        binary = (rng.random((7, 5)) > 0.5).astype(np.uint8)
        binary[0, 0] = first
        rle = uncompressed_rle(binary)
        assert rle["size"] == [7, 5] and sum(rle["counts"]) == 35 and (rle["counts"][0] == 0) == bool(first)
        decoded = mask_utils.decode(mask_utils.frPyObjects(rle, 7, 5))
        np.testing.assert_array_equal(decoded, binary)


def test_generated_set_has_people_crowds_and_unlabelled(tmp_path, monkeypatch):
    monkeypatch.setattr(synthetic_multi, "CROWD_PROB", 1.0)  # a crowd region wherever one fits
    ann = generate_synthetic_bottomup(tmp_path, num_images=12, seed=1, image_size=(96, 128), progress=False)
    data = json.loads(ann.read_text())
    assert len(data["images"]) == 12 and all((i["height"], i["width"]) == (96, 128) for i in data["images"])
    anns = data["annotations"]
    crowds = [a for a in anns if a["iscrowd"]]
    labelled = [a for a in anns if not a["iscrowd"] and a["num_keypoints"] > 0]
    assert crowds and len(labelled) > len(data["images"])  # several people per image on average
    for a in crowds:
        region = mask_utils.decode(mask_utils.frPyObjects(a["segmentation"], 96, 128))
        x, y, w, h = a["bbox"]
        assert region.sum() == w * h == a["area"] and region[int(y):int(y + h), int(x):int(x + w)].all()
        assert a["num_keypoints"] == 0 and not any(a["keypoints"])
    for a in anns:
        if not a["iscrowd"] and a["num_keypoints"] == 0:
            assert not any(a["keypoints"]) and len(a["segmentation"][0]) == 8
        elif not a["iscrowd"]:
            assert a["num_keypoints"] >= synthetic_multi.MIN_LABELLED
    # The bottom-up data set reads it, masks the crowds out, and the same seed gives the same file.
    ds = BottomUpCocoDataset(ann, tmp_path / "images" / "train", input_size=64, heatmap_size=64)
    sample = ds[0]
    assert sample["joints"].shape == (30, 17, 3) and sample["mask"].shape == (64, 64)
    again = generate_synthetic_bottomup(tmp_path / "again", num_images=12, seed=1, image_size=(96, 128),
                                        progress=False)
    assert again.read_text() == ann.read_text()


def test_no_crowd_when_none_fits(tmp_path, monkeypatch):
    # A patch smaller than 16 pixels is not drawn: the image keeps only its people.
    monkeypatch.setattr(synthetic_multi, "CROWD_PROB", 1.0)
    monkeypatch.setattr(synthetic_multi, "CROWD_SIDE", (0.1, 0.1))
    ann = generate_synthetic_bottomup(tmp_path, num_images=3, seed=2, image_size=(64, 64), progress=False)
    assert not any(a["iscrowd"] for a in json.loads(ann.read_text())["annotations"])
