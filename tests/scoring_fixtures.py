"""Deterministic ground truth and results for the scoring tests, in the layouts users have.

Pure Python (random.Random, json-exact values rounded to 2 decimals), so the project's tests and
`crowdpose_reference.py` (run in a separate environment with xtcocotools and numpy < 2) build the
very same files. Changing anything here changes the expected numbers: rerun the reference script.

- `crowdpose_fixture()`: a CrowdPose test file (14 keypoints, images with "crowdIndex", annotations
  without "area" except a few with a wrong one, "num_keypoints" counting only v = 2 joints as
  CrowdPose's do) and results: good, poor and duplicate predictions, false positives, tied scores,
  an image with more than 20 results, and results whose keypoint scores are all 0.
- `coco_fixture()`: the same kind of data as a COCO file (17 keypoints, "area", people of small,
  medium and large size).
- `tie_fixture()`: predictions for OKS-NMS whose outcome depends on the order of tied scores.
"""
from __future__ import annotations

import math
import random

CROWDPOSE_K = 14
COCO_K = 17
# crowdIndex of each image: both sides of the tool's bounds 0.2 and 0.8, and 0.1 (the paper's text).
CROWD_INDICES = (0.0, 0.1, 0.15, 0.2, 0.35, 0.5, 0.79, 0.8, 0.9, 1.0)


def _r(v: float) -> float:
    return round(v, 2)


def _person(rng: random.Random, k: int, box, *, v2_only_count: bool, unlabelled_all: bool = False) -> dict:
    x0, y0, w, h = box
    kpts, n_labelled, n_v2 = [], 0, 0
    for _ in range(k):
        u = rng.random()
        v = 0 if unlabelled_all or u < 0.15 else (1 if u < 0.3 else 2)
        if v == 0:
            kpts += [0, 0, 0]
            continue
        kpts += [_r(x0 + rng.uniform(0.05, 0.95) * w), _r(y0 + rng.uniform(0.05, 0.95) * h), v]
        n_labelled += 1
        n_v2 += v == 2
    return {"keypoints": kpts, "bbox": [_r(x0), _r(y0), _r(w), _r(h)],
            "num_keypoints": n_v2 if v2_only_count else n_labelled}


def _prediction(rng: random.Random, gt: dict, k: int, noise: float, image_id: int, score: float) -> dict:
    """A result near a ground truth: labelled joints moved by ~`noise` x the box's size, the others
    anywhere in the box; keypoint scores in (0.05, 1)."""
    x0, y0, w, h = gt["bbox"]
    size = math.sqrt(w * h)
    out = []
    for j in range(k):
        x, y, v = gt["keypoints"][3 * j:3 * j + 3]
        if v == 0:
            x, y = x0 + rng.random() * w, y0 + rng.random() * h
        else:
            x, y = x + rng.gauss(0, noise * size), y + rng.gauss(0, noise * size)
        out += [_r(x), _r(y), _r(rng.uniform(0.05, 1.0))]
    return {"image_id": image_id, "category_id": 1, "keypoints": out, "score": _r(score)}


def _random_box(rng: random.Random, size_range) -> list[float]:
    w = rng.uniform(*size_range)
    h = w * rng.uniform(1.2, 2.5)
    return [rng.uniform(0, 640 - w), rng.uniform(0, 480 - min(h, 470)), w, min(h, 470)]


def _fixture(seed: int, k: int, *, crowd: bool):
    rng = random.Random(seed)
    images, annotations, results = [], [], []
    for i, crowd_index in enumerate(CROWD_INDICES):
        image_id = 101 + i
        image = {"id": image_id, "file_name": f"{image_id}.jpg", "width": 640, "height": 480}
        if crowd:
            image["crowdIndex"] = crowd_index
        images.append(image)
        for p in range(1 + i % 4):
            size_range = ((15, 30), (30, 70), (70, 200))[(i + p) % 3]
            ann = _person(rng, k, _random_box(rng, size_range), v2_only_count=crowd,
                          unlabelled_all=(i == 5 and p == 1))
            ann.update(id=len(annotations) + 1, image_id=image_id, category_id=1, iscrowd=0)
            if not crowd:
                ann["area"] = _r(ann["bbox"][2] * ann["bbox"][3] * 0.7)
            elif ann["id"] % 3 == 0:
                ann["area"] = _r(ann["bbox"][2] * ann["bbox"][3] * 2.0)  # the crowd rule ignores it
            annotations.append(ann)
            noise = (0.01, 0.04, 0.1, 0.3)[(i + 2 * p) % 4]
            results.append(_prediction(rng, ann, k, noise, image_id, rng.uniform(0.3, 1.0)))
            if (i + p) % 3 == 0:  # a duplicate, worse and lower scored
                results.append(_prediction(rng, ann, k, 2 * noise, image_id, rng.uniform(0.1, 0.6)))
            if (i + p) % 4 == 1:  # tied with the image's first result
                results.append(_prediction(rng, ann, k, 0.05, image_id, results[-1]["score"]))
        for _ in range(i % 3):  # false positives
            fake = _person(rng, k, _random_box(rng, (30, 150)), v2_only_count=False)
            results.append(_prediction(rng, fake, k, 0.0, image_id, rng.uniform(0.05, 0.7)))
    # More than 20 results (maxDets) in one image, and results with no keypoint score above 0.
    crowded = annotations[-1]
    for n in range(22):
        results.append(_prediction(rng, crowded, k, 0.02 + 0.01 * n, crowded["image_id"], 0.5 - 0.01 * n))
    for res in results[3:5]:
        res["keypoints"][2::3] = [0.0] * k
    categories = [{"id": 1, "name": "person", "keypoints": [f"joint_{j}" for j in range(k)]}]
    return {"images": images, "annotations": annotations, "categories": categories}, results


def crowdpose_fixture():
    """(CrowdPose-format ground truth dict, results list)."""
    return _fixture(13, CROWDPOSE_K, crowd=True)


def coco_fixture():
    """(COCO-format ground truth dict, results list)."""
    return _fixture(17, COCO_K, crowd=False)


def tie_fixture():
    """(COCO ground truth dict, predictions) for OKS-NMS with tied scores.

    predictions: {"image_id", "keypoints" (N, 17, 2) lists, "keypoint_scores" (N, 17), "box_score",
    "area"}, in data set order. Image 1: ground-truth persons P and Q; instance 0 is P moved by 3 px,
    instance 1 P moved by 0.5 px (the two overlap with OKS > 0.9), instance 2 is Q; all three score
    the same. Image 2: persons R and S; instances 3..6 all have keypoint scores below 0.2 (an
    untrained model: every instance score 0): 3 and 4 near R (4 the closer; OKS(3, 4) > 0.9), 5 and
    6 near S (6 the closer; OKS(5, 6) < 0.9, both kept, and their order decides which one
    COCOeval matches to S first).
    """
    rng = random.Random(5)
    images = [{"id": i, "file_name": f"{i}.jpg", "width": 640, "height": 480} for i in (1, 2)]
    annotations = []
    for ann_id, (image_id, x0) in enumerate(((1, 60.0), (1, 330.0), (2, 40.0), (2, 360.0)), start=1):
        ann = _person(rng, COCO_K, [x0, 60.0, 160.0, 380.0], v2_only_count=False)
        ann["keypoints"][2::3] = [2] * COCO_K
        for j in range(COCO_K):
            if ann["keypoints"][3 * j] == 0:
                ann["keypoints"][3 * j:3 * j + 2] = [_r(x0 + 80), _r(250.0)]
        ann.update(id=ann_id, image_id=image_id, category_id=1, iscrowd=0, num_keypoints=COCO_K,
                   area=_r(160.0 * 380.0 * 0.6))
        annotations.append(ann)
    gt = {"images": images, "annotations": annotations, "categories": [{"id": 1, "name": "person"}]}

    def moved(ann, dx):
        return [[ann["keypoints"][3 * j] + dx, ann["keypoints"][3 * j + 1]] for j in range(COCO_K)]

    p, q, r, s = annotations
    keypoints = [moved(p, 3.0), moved(p, 0.5), moved(q, 1.0),
                 moved(r, 4.0), moved(r, 1.0), moved(s, 18.0), moved(s, 2.0)]
    confident, unsure = [0.9] * COCO_K, [0.1] * COCO_K
    return gt, {"image_id": [1, 1, 1, 2, 2, 2, 2], "keypoints": keypoints,
                "keypoint_scores": [confident] * 3 + [unsure] * 4, "box_score": [1.0] * 7,
                "area": [160.0 * 1.25 * 380.0 * 1.25] * 7}
