"""The synthetic COCO generator: determinism, annotation validity, and a learnable left/right."""
from __future__ import annotations

import contextlib
import io
import json

import cv2
import numpy as np
import pytest
from pycocotools.coco import COCO as COCOApi

from srpose_fast.keypoint_sets import COCO
from srpose_fast.data.synthetic import (L_UPPER_ARM, L_THIGH, R_UPPER_ARM, R_THIGH, _sample_figure,
                                        generate_synthetic_coco)
from srpose_fast.data.transforms import flip_keypoints


def _files(root):
    return {p.relative_to(root): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_same_seed_gives_identical_bytes_and_other_seeds_differ(tmp_path):
    kw = dict(num_images=4, image_size=(96, 80), max_people=3, progress=False)
    generate_synthetic_coco(tmp_path / "a", seed=7, **kw)
    generate_synthetic_coco(tmp_path / "b", seed=7, **kw)
    generate_synthetic_coco(tmp_path / "c", seed=8, **kw)
    generate_synthetic_coco(tmp_path / "d", seed=7, split="val", **kw)
    a, b, c = _files(tmp_path / "a"), _files(tmp_path / "b"), _files(tmp_path / "c")
    assert len(a) == 5 and a == b
    assert a.keys() == c.keys()
    for name in a:
        assert a[name] != c[name], name  # every image and the JSON change with the seed
    val = _files(tmp_path / "d" / "images" / "val")
    train = _files(tmp_path / "a" / "images" / "train")
    assert val.keys() == train.keys() and all(val[n] != train[n] for n in val)  # splits differ


def test_png_output_and_bad_arguments(tmp_path):
    ann = generate_synthetic_coco(tmp_path, num_images=2, image_size=(64, 48), image_format="png", progress=False)
    data = json.loads(ann.read_text())
    img = cv2.imread(str(tmp_path / "images" / "train" / data["images"][0]["file_name"]))
    assert img.shape == (64, 48, 3)
    with pytest.raises(ValueError, match="image_format"):
        generate_synthetic_coco(tmp_path, num_images=1, image_format="bmp", progress=False)
    with pytest.raises(ValueError, match="max_people"):
        generate_synthetic_coco(tmp_path, num_images=1, max_people=0, progress=False)


def test_annotations_are_valid_coco(synthetic_set):
    ann_file, img_prefix, (h, w) = synthetic_set
    with contextlib.redirect_stdout(io.StringIO()):
        coco = COCOApi(str(ann_file))
    cat = coco.loadCats(1)[0]
    assert cat["name"] == "person" and cat["keypoints"] == list(COCO.names) and len(cat["skeleton"]) == 19
    anns = coco.loadAnns(coco.getAnnIds())
    assert len(coco.getImgIds()) == 40 and len(anns) > 40
    for ann in anns:
        k = np.asarray(ann["keypoints"], dtype=float).reshape(-1, 3)
        assert k.shape == (17, 3)
        assert set(np.unique(k[:, 2])) <= {0, 1, 2}
        assert ann["num_keypoints"] == int((k[:, 2] > 0).sum())
        assert np.all(k[k[:, 2] == 0, :2] == 0)  # COCO: unlabelled -> (0, 0)
        lab = k[k[:, 2] > 0]
        assert np.all((lab[:, 0] >= 0) & (lab[:, 0] <= w - 1) & (lab[:, 1] >= 0) & (lab[:, 1] <= h - 1))
        x, y, bw, bh = ann["bbox"]
        assert x >= 0 and y >= 0 and bw > 0 and bh > 0 and x + bw <= w and y + bh <= h
        assert np.all((lab[:, 0] >= x) & (lab[:, 0] <= x + bw) & (lab[:, 1] >= y) & (lab[:, 1] <= y + bh))
        assert ann["iscrowd"] == 0 and ann["category_id"] == 1 and ann["area"] > 0
        img = coco.imgs[ann["image_id"]]
        assert (img["height"], img["width"]) == (h, w)
        assert cv2.imread(str(img_prefix / img["file_name"])).shape == (h, w, 3)


def test_scenes_have_crowds_occlusion_truncation_and_scale_variety(synthetic_set):
    with contextlib.redirect_stdout(io.StringIO()):
        coco = COCOApi(str(synthetic_set[0]))
    anns = coco.loadAnns(coco.getAnnIds())
    per_image = [len(coco.getAnnIds(imgIds=i)) for i in coco.getImgIds()]
    k = np.stack([np.asarray(a["keypoints"]).reshape(17, 3) for a in anns])
    assert max(per_image) >= 3
    assert (k[:, :, 2] == 1).sum() > 20  # occluded: labelled, not visible
    assert (k[:, :, 2] == 2).sum() > 200
    assert (k[:, 5:, 2] == 0).sum() > 20  # body joints are unlabelled only when outside the image
    heights = np.array([a["bbox"][3] for a in anns if a["num_keypoints"] >= 10])
    assert heights.max() > 2 * heights.min()


def _side_sign(k):
    """Sign of (left_shoulder - right_shoulder) x (mid_hip - mid_shoulder), y pointing down:
    +1 when the figure's left is on the image-right side of its body axis."""
    across = k[5, :2] - k[6, :2]
    down = (k[11, :2] + k[12, :2]) / 2 - (k[5, :2] + k[6, :2]) / 2
    return np.sign(across[0] * down[1] - across[1] * down[0])


def test_left_right_follow_a_mirror_consistent_rule(synthetic_set):
    """A figure facing the camera (nose labelled) has its left on the image-right of its axis; one
    seen from behind (face unlabelled, ears labelled) the opposite. Flipping (mirror + swap) keeps the
    rule true, so the flip augmentation never contradicts what the images show."""
    ann_file, _, (h, w) = synthetic_set
    data = json.loads(ann_file.read_text())
    checked = {"front": 0, "back": 0}
    for ann in data["annotations"]:
        k = np.asarray(ann["keypoints"], dtype=float).reshape(17, 3)
        if not np.all(k[[5, 6, 11, 12], 2] > 0):
            continue
        if k[0, 2] > 0:
            facing, expected = "front", 1
        elif np.all(k[[3, 4], 2] > 0) and np.all(k[[3, 4], :2] > 4) and np.all(k[[3, 4], 0] < w - 5) \
                and np.all(k[[3, 4], 1] < h - 5):
            facing, expected = "back", -1
        else:
            continue
        flipped, vis = flip_keypoints(k[:, :2], k[:, 2], w, COCO.flip_indices)
        assert _side_sign(k) == expected, ann["id"]
        assert _side_sign(np.concatenate([flipped, vis[:, None]], 1)) == expected, ann["id"]
        checked[facing] += 1
    assert checked["front"] >= 20 and checked["back"] >= 2, checked


def test_flipped_image_and_keypoints_stay_aligned(synthetic_set):
    """After a flip the pixel under the new left wrist is the pixel that was under the right wrist
    (image x -> W - 1 - x, labels swapped): off by one column and the noisy pixels would differ."""
    ann_file, img_prefix, (h, w) = synthetic_set
    data = json.loads(ann_file.read_text())
    images = {img["id"]: img for img in data["images"]}
    checked = 0
    for ann in data["annotations"]:
        k = np.asarray(ann["keypoints"], dtype=float).reshape(17, 3)
        image = cv2.imread(str(img_prefix / images[ann["image_id"]]["file_name"]))
        mirrored = cv2.flip(image, 1)
        fk, fv = flip_keypoints(k[:, :2], k[:, 2], w, COCO.flip_indices)
        for j in range(17):
            if fv[j] != 2 or abs(fk[j, 0] % 1 - 0.5) < 0.01:
                continue
            src = COCO.flip_indices[j]
            x, y = int(round(fk[j, 0])), int(round(fk[j, 1]))
            ox, oy = int(round(k[src, 0])), int(round(k[src, 1]))
            assert np.array_equal(mirrored[y, x], image[oy, ox])
            checked += 1
    assert checked > 300


def test_sides_differ_in_colour_within_a_figure_but_colour_carries_no_side():
    """The two arms (and legs) of a figure have different colours, but which colour is the left
    one is random: a hue that meant 'left' would be contradicted by every flipped sample."""
    rng = np.random.default_rng(3)
    left_hue_larger = 0
    n = 400
    for _ in range(n):
        fig = _sample_figure(rng, 100.0, np.array([50.0, 60.0]))
        colour = {part: c for _, _, c, part in fig.prims}
        assert colour[L_UPPER_ARM] != colour[R_UPPER_ARM]
        assert colour[L_THIGH] != colour[R_THIGH]
        hsv = cv2.cvtColor(np.uint8([[colour[L_UPPER_ARM], colour[R_UPPER_ARM]]]), cv2.COLOR_BGR2HSV)[0]
        left_hue_larger += int(hsv[0, 0] > hsv[1, 0])
    assert 0.4 * n < left_hue_larger < 0.6 * n
