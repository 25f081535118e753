"""MPII PCKh: the fraction of labelled joints within `threshold` x head size of the ground truth.

As MPII's evaluation (and mmpose 0.x's TopDownMpiiDataset):
- head size = 0.6 x the diagonal of the annotated head box;
- a joint is correct when ||pred - gt|| / head size <= threshold (0.5 for PCKh@0.5);
- per joint: correct / labelled over all persons;
- the headline "PCKh" is over every joint except pelvis and thorax (weighted by labelled
  counts, i.e. all those joints pooled), and the groups Head (head_top), Shoulder, Elbow, Wrist,
  Hip, Knee, Ankle pool the left and right joints.
Values are fractions in [0, 1] (mmpose prints percentages). Both sides are 0-based pixel
coordinates (MPII's MATLAB files are 1-based; mmpose adds 1 to its predictions to match them).

Head box: an annotation's "head_box" = [x1, y1, x2, y2] (MPII's head rectangle). Without one
the fallback is the head segment, head size = ||head_top - upper_neck||, which is what PCKh was
defined on and what MPII's 0.6 x diagonal approximates; numbers from the fallback are close to,
not identical with, the official ones. A person without a head box whose head_top or upper_neck is
unlabelled has no head size: `head_sizes` gives NaN and `pckh` leaves that person out.
"""
from __future__ import annotations

import numpy as np

from ..keypoint_sets import MPII, KeypointSet

HEAD_BOX_BIAS = 0.6  # MPII's SC_BIAS
PCKH_GROUPS = ("head_top", "shoulder", "elbow", "wrist", "hip", "knee", "ankle")
_EXCLUDED = ("pelvis", "thorax")


def head_sizes(annotations: list[dict], keypoint_set: KeypointSet = MPII) -> np.ndarray:
    """(N,) head sizes of COCO-format person annotations (see the module docstring)."""
    names = keypoint_set.names
    k = len(names)
    sizes = np.full(len(annotations), np.nan)
    for i, ann in enumerate(annotations):
        box = ann.get("head_box")
        if box is not None:
            x1, y1, x2, y2 = (float(v) for v in box)
            sizes[i] = HEAD_BOX_BIAS * np.hypot(x2 - x1, y2 - y1)
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
    """PCKh of N persons.

    Args:
        pred, gt: (N, K, 2) pixels; visible: (N, K), a joint counts where > 0;
        head_size: (N,); persons with a NaN or non-positive head size are left out.
    Returns {"PCKh": pooled over all joints but pelvis/thorax, "<group>": per group (those the
    keypoint set has), "<joint name>": per joint}; NaN where nothing is labelled.
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
    correct = (dist <= threshold) & vis  # a NaN prediction is never correct

    def pooled(mask: np.ndarray) -> float:
        labelled = vis[:, mask].sum()
        return float(correct[:, mask].sum() / labelled) if labelled else float("nan")

    names = keypoint_set.names
    out = {"PCKh": pooled(np.array([not any(e in nm for e in _EXCLUDED) for nm in names]))}
    for group in PCKH_GROUPS:
        mask = np.array([nm.endswith(group) for nm in names])
        if mask.any():
            out["Head" if group == "head_top" else group.capitalize()] = pooled(mask)
    for j, nm in enumerate(names):
        out[nm] = pooled(np.arange(k) == j)
    return out
