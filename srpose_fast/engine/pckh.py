"""MPII PCKh: the fraction of labelled joints within `threshold` x head size of the ground truth.

As the MPII evaluation computes it (and mmpose 0.x's TopDownMpiiDataset.evaluate after it):
- head size = 0.6 (SC_BIAS) x the diagonal of the person's annotated head box;
- a joint is correct when ||pred - gt|| / head size <= threshold;
- per joint: correct / labelled, over all persons;
- the table: Head = head_top; Shoulder, Elbow, Wrist, Hip, Knee, Ankle = the mean of the left and
  the right joint's PCKh (each joint weighted equally, not pooled); Mean = all joints but pelvis
  and thorax pooled (each joint weighted by how often it is labelled; upper_neck and head_top are
  in it). "PCKh@0.5" is that Mean at 0.5, the number papers quote (SRPose: 90.5 for HRNet-W32),
  "PCKh@0.1" the Mean at 0.1.
Values are fractions in [0, 1] (the MPII evaluation prints percentages).

Where the ground truth comes from (`mpii_ground_truth`):
- mmpose's MPII layout (data/mpii.py): the official `mpii_gt_val.mat` (positions, labelled joints,
  head boxes), matched to the data set's persons by position as the MPII evaluation does;
- a COCO-format file: each person's annotation, head size from its "head_box" = [x1, y1, x2, y2].
  Without one the head segment ||head_top - upper_neck|| stands in (with a warning: such numbers
  are not comparable with published ones); a person without either is left out.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..keypoint_sets import MPII, KeypointSet

HEAD_BOX_BIAS = 0.6  # the MPII evaluation's SC_BIAS
PCKH_THRESHOLDS = {"PCKh@0.5": 0.5, "PCKh@0.1": 0.1}
# The MPII table's columns: a name and the joints it averages.
PCKH_GROUPS = {"Head": ("head_top",), "Shoulder": ("l_shoulder", "r_shoulder"), "Elbow": ("l_elbow", "r_elbow"),
               "Wrist": ("l_wrist", "r_wrist"), "Hip": ("l_hip", "r_hip"), "Knee": ("l_knee", "r_knee"),
               "Ankle": ("l_ankle", "r_ankle")}
EXCLUDED_FROM_MEAN = ("pelvis", "thorax")


def head_box_sizes(boxes) -> np.ndarray:
    """(N,) head sizes of head boxes (N, 4) [x1, y1, x2, y2] (or (N, 2, 2) corners)."""
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 2, 2)
    return HEAD_BOX_BIAS * np.linalg.norm(b[:, 1] - b[:, 0], axis=1)


def head_sizes(annotations: list[dict], keypoint_set: KeypointSet = MPII) -> np.ndarray:
    """(N,) head sizes of COCO-format person annotations: from "head_box", else the head segment
    (NaN where neither exists); see the module docstring."""
    names = keypoint_set.names
    k = len(names)
    sizes = np.full(len(annotations), np.nan)
    for i, ann in enumerate(annotations):
        box = ann.get("head_box")
        if box is not None:
            sizes[i] = head_box_sizes([box])[0]
            continue
        if "head_top" not in names or "upper_neck" not in names:
            raise ValueError(f"annotation {ann.get('id')} has no 'head_box' and keypoint set "
                             f"{keypoint_set.name!r} has no head_top/upper_neck to fall back on")
        kpts = np.asarray(ann["keypoints"], dtype=np.float64).reshape(k, 3)
        top, neck = kpts[names.index("head_top")], kpts[names.index("upper_neck")]
        if top[2] > 0 and neck[2] > 0:
            sizes[i] = np.hypot(*(top[:2] - neck[:2]))
    return sizes


def pckh(pred, gt, visible, head_size, *, threshold: float = 0.5,
         keypoint_set: KeypointSet = MPII) -> dict[str, float]:
    """PCKh of N persons at one threshold.

    Args:
        pred, gt: (N, K, 2) pixels (the same origin); visible: (N, K), a joint counts where > 0;
        head_size: (N,); persons with a NaN or non-positive head size are left out.
    Returns {"Mean": all joints but pelvis/thorax pooled, "<group>": the MPII table's columns the
    keypoint set has, "<joint name>": per joint}; NaN where nothing is labelled.
    """
    p = np.asarray(pred, dtype=np.float64)
    g = np.asarray(gt, dtype=np.float64)
    k = keypoint_set.num_keypoints
    if p.ndim != 3 or p.shape[1:] != (k, 2) or g.shape != p.shape:
        raise ValueError(f"pred and gt must both be (N, {k}, 2), got {p.shape} and {g.shape}")
    n = p.shape[0]
    vis = np.asarray(visible).reshape(n, k) > 0
    size = np.asarray(head_size, dtype=np.float64).reshape(n)
    vis = vis & (np.isfinite(size) & (size > 0))[:, None]
    dist = np.linalg.norm(p - g, axis=-1) / np.where(size > 0, size, 1.0)[:, None]
    correct = ((dist <= threshold) & vis).sum(0)  # a NaN prediction is never correct
    labelled = vis.sum(0)
    with np.errstate(invalid="ignore", divide="ignore"):
        per_joint = np.where(labelled > 0, correct / labelled, np.nan)
    names = keypoint_set.names
    counted = np.array([name not in EXCLUDED_FROM_MEAN for name in names])
    out = {"Mean": float(correct[counted].sum() / labelled[counted].sum()) if labelled[counted].sum() else float("nan")}
    for group, joints in PCKH_GROUPS.items():
        if all(j in names for j in joints):
            out[group] = float(np.mean([per_joint[names.index(j)] for j in joints]))
    out.update({name: float(v) for name, v in zip(names, per_joint)})
    return out


@dataclass(frozen=True)
class MpiiPersons:
    """What PCKh compares predictions with: N persons in data set order, 0-based pixels."""

    image_ids: np.ndarray  # (N,)
    keypoints: np.ndarray  # (N, K, 2)
    visible: np.ndarray  # (N, K) bool
    head_size: np.ndarray  # (N,), NaN: no head size, left out


def mpii_ground_truth(dataset, gt_file=None) -> MpiiPersons:
    """The ground truth of a top-down data set's persons (ground-truth boxes; see the module docstring).

    gt_file: the official `mpii_gt_val.mat` for mmpose's MPII layout (default: next to the
    annotation file, where mmpose keeps it); unused for COCO-format files.
    """
    from ..data.mpii import GT_FILE_NAME, load_mpii_gt

    samples = dataset.samples
    if any(s.get("ann_id") is None for s in samples):
        raise ValueError("PCKh compares each ground-truth person with its prediction: evaluate MPII on "
                         "ground-truth boxes, not detections")
    image_ids = np.array([s["image_id"] for s in samples], dtype=np.int64)
    kset = dataset.keypoint_set
    if dataset.coco is None:  # mmpose's MPII layout
        gt = load_mpii_gt(gt_file or Path(dataset.ann_file).parent / GT_FILE_NAME, kset)
        if len(gt) != len(samples):
            raise ValueError(f"{gt_file or GT_FILE_NAME} holds {len(gt)} persons, {dataset.ann_file} "
                             f"{len(samples)}: the ground-truth file must be the one of this annotation file")
        return MpiiPersons(image_ids, gt.positions - 1.0, gt.labelled, head_box_sizes(gt.head_boxes))
    anns = dataset.coco.loadAnns([s["ann_id"] for s in samples])
    sizes = head_sizes(anns, kset)
    if any("head_box" not in ann for ann in anns):
        warnings.warn(f"{dataset.ann_file}: persons without a 'head_box' are measured by their head segment "
                      f"(head_top to upper_neck), not MPII's head box: PCKh is not comparable with published "
                      f"numbers", stacklevel=2)
    return MpiiPersons(image_ids, np.stack([s["keypoints"] for s in samples]).astype(np.float64),
                       np.stack([s["visible"] for s in samples]) > 0, sizes)


def mpii_pckh_eval(results: list[dict], persons: MpiiPersons, keypoint_set: KeypointSet = MPII) -> dict[str, float]:
    """PCKh of COCO-format keypoint results, one per person in the data set's order (what `eval`
    writes for MPII): {"PCKh@0.5", "PCKh@0.1", the MPII table's columns, each joint at 0.5}."""
    k = keypoint_set.num_keypoints
    if len(results) != len(persons.image_ids):
        raise ValueError(f"PCKh needs one result per ground-truth person, in the annotation file's order: "
                         f"{len(persons.image_ids)} persons, {len(results)} results")
    pred = np.zeros((len(results), k, 2))
    for i, (res, image_id) in enumerate(zip(results, persons.image_ids)):
        if res.get("image_id") != image_id or len(res.get("keypoints", ())) != 3 * k:
            raise ValueError(f"result {i} must be the person of image {image_id} with {3 * k} keypoint values "
                             f"(one result per person, in the annotation file's order); it has image "
                             f"{res.get('image_id')!r} and {len(res.get('keypoints', ()))} values")
        pred[i] = np.asarray(res["keypoints"], dtype=np.float64).reshape(k, 3)[:, :2]
    at = {name: pckh(pred, persons.keypoints, persons.visible, persons.head_size, threshold=thr,
                     keypoint_set=keypoint_set) for name, thr in PCKH_THRESHOLDS.items()}
    first = at["PCKh@0.5"]
    return {**{name: table["Mean"] for name, table in at.items()},
            **{key: value for key, value in first.items() if key != "Mean"}}


__all__ = ["EXCLUDED_FROM_MEAN", "HEAD_BOX_BIAS", "MpiiPersons", "PCKH_GROUPS", "PCKH_THRESHOLDS",
           "head_box_sizes", "head_sizes", "mpii_ground_truth", "mpii_pckh_eval", "pckh"]
