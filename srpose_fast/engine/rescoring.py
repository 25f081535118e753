"""What mmpose does to top-down predictions before COCO-style scoring: rescoring and OKS-NMS.

As mmpose 1.x's CocoMetric (score_mode "bbox_keypoint", nms_mode "oks_nms") and mmpose 0.x's
TopDownCocoDataset.evaluate (SRPose's code base) do it, ties included:
1. instance score = box score x the mean of the keypoint scores above 0.2 (`rescore`);
2. per image, the instances in id order (the annotation id of a ground-truth box, the index of a
   detection), greedy OKS-NMS at 0.9 (`oks.oks_nms`: the visiting order and the float32 OKS are
   mmpose's); an instance's area is its box scale's w x h (prod(scale x 200));
3. the kept instances go to the results file image by image, in the order kept: pycocotools'
   stable sort by score keeps that order for tied scores, so it decides which of two tied
   instances is matched first.

Torch-free: `srpose-fast score` applies the same steps to a results file (`postprocess_results`).
"""
from __future__ import annotations

import numpy as np

from .oks import oks_nms

VIS_THRESHOLD = 0.2
OKS_NMS_THRESHOLD = 0.9


def rescore(box_scores, keypoint_scores, threshold: float = VIS_THRESHOLD) -> np.ndarray:
    """Instance scores (N,): box score x mean of the keypoint scores (N, K) above `threshold`,
    0 where none is above it; NaN keypoint scores never count.

    Computed as mmpose computes it under numpy 1.x, which xtcocotools needs: the box score is
    float32 (mmpose's data sets hold it so), the keypoint scores are summed joint by joint in
    float64, then divided and multiplied in float64. Equal predictions then give bit-identical
    scores, so ties fall as they do in mmpose.
    """
    ks = np.asarray(keypoint_scores, dtype=np.float64)
    box = np.asarray(box_scores, dtype=np.float32).astype(np.float64).reshape(-1)
    if ks.ndim != 2 or ks.shape[0] != box.shape[0]:
        raise ValueError(f"keypoint_scores must be (N, K) with N = {box.shape[0]}, got shape {ks.shape}")
    above = ks > threshold
    count = above.sum(1)
    total = np.zeros(len(box))
    for j in range(ks.shape[1]):  # mmpose's order of additions (numpy's sum would pair them)
        total += np.where(above[:, j], ks[:, j], 0.0)
    return box * np.where(count > 0, total / np.maximum(count, 1), 0.0)


def nms_per_image(image_ids, keypoints, scores, areas, sigmas, threshold: float = OKS_NMS_THRESHOLD) -> np.ndarray:
    """Indices kept by OKS-NMS run separately on each image's instances (taken in the order
    given); images in ascending id order, within an image in the order kept (`oks.oks_nms`)."""
    ids = np.asarray(image_ids).reshape(-1)
    kpts = np.asarray(keypoints)
    score = np.asarray(scores)
    area = np.asarray(areas)
    order = np.argsort(ids, kind="stable")
    starts = np.flatnonzero(np.r_[True, ids[order][1:] != ids[order][:-1]]) if len(ids) else []
    bounds = list(starts) + [len(ids)]
    keep = []
    for a, b in zip(bounds[:-1], bounds[1:]):
        members = order[a:b]
        keep.append(members[oks_nms(kpts[members], score[members], area[members], sigmas, threshold)])
    return np.concatenate(keep) if keep else np.zeros(0, dtype=np.int64)


def keypoint_extent_areas(keypoints) -> np.ndarray:
    """(N,) areas of the keypoints' bounding boxes, what mmpose's CocoMetric uses for OKS-NMS
    when a prediction has no box scale."""
    xy = np.asarray(keypoints, dtype=np.float64)[..., :2]
    return np.ptp(xy[..., 0], axis=1) * np.ptp(xy[..., 1], axis=1)


def postprocess_results(results: list[dict], sigmas, *, rescore_scores: bool = False,
                        nms_threshold: float | None = None) -> list[dict]:
    """Rescoring and/or OKS-NMS of COCO-format keypoint results, each instance as `evaluate`
    treats it (see the module docstring); instances keep the results file's order within an image.

    A result's "box_score" (default 1.0, as mmpose without box scores) is the box score of the
    rescoring, its "area" (default: the keypoints' extent, mmpose's fallback) the area of OKS-NMS.
    Returns new result dicts (the kept ones, scores replaced when rescored).
    """
    if not rescore_scores and nms_threshold is None:
        return results
    k = len(np.asarray(sigmas).reshape(-1))
    for i, res in enumerate(results):
        if not isinstance(res, dict) or len(res.get("keypoints", ())) != 3 * k or "image_id" not in res:
            raise ValueError(f"result {i} must be an object with an image_id and {3 * k} keypoint values "
                             f"([x, y, score] per keypoint)")
    triplets = np.asarray([res["keypoints"] for res in results], dtype=np.float64).reshape(-1, k, 3)
    scores = np.asarray([res.get("score", 0.0) for res in results], dtype=np.float64)
    if rescore_scores:
        scores = rescore([res.get("box_score", 1.0) for res in results], triplets[..., 2])
    keep = np.arange(len(results))
    if nms_threshold is not None:
        extent = keypoint_extent_areas(triplets)
        areas = [res.get("area", extent[i]) for i, res in enumerate(results)]
        keep = nms_per_image([res["image_id"] for res in results], triplets[..., :2], scores, areas, sigmas,
                             nms_threshold)
    return [{**results[i], "score": float(scores[i])} for i in keep]


__all__ = ["OKS_NMS_THRESHOLD", "VIS_THRESHOLD", "keypoint_extent_areas", "nms_per_image", "postprocess_results",
           "rescore"]
