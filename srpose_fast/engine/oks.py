"""Object keypoint similarity (OKS) and OKS-NMS, numpy.

OKS of a keypoint pair at distance d, with the joint's constant sigma and the object scale s
(s^2 = an area in pixels^2):

    exp(-d^2 / (2 s^2 k^2)),  k = 2 sigma

and the OKS of two instances is the mean of that term over the joints counted. Two uses:

- `keypoint_oks`: COCOeval's definition (`computeOks`): against one ground truth, the mean over
  its labelled joints, s^2 = the ground truth's area.
- `oks_matrix` / `oks_nms`: the OKS between predictions that mmpose (0.x, SRPose's code base, and
  1.x's CocoMetric alike) uses for OKS-NMS: every joint counts, s^2 = the mean of the two
  instances' areas.
"""
from __future__ import annotations

import numpy as np

_EPS = np.spacing(1.0)  # added to the area, as COCOeval and mmpose do


def _variances(sigmas, num_keypoints: int) -> np.ndarray:
    sig = np.asarray(sigmas, dtype=np.float64)
    if sig.shape != (num_keypoints,):
        raise ValueError(f"sigmas must have one value per keypoint ({num_keypoints}), got shape {sig.shape}")
    return (2.0 * sig) ** 2


def _xy(keypoints, name: str) -> np.ndarray:
    """(..., K, 2) float64 from (..., K, 2) or (..., K, 3) (a third column, a score, is dropped)."""
    arr = np.asarray(keypoints, dtype=np.float64)
    if arr.ndim < 2 or arr.shape[-1] not in (2, 3):
        raise ValueError(f"{name} must be (..., K, 2) or (..., K, 3), got shape {arr.shape}")
    return arr[..., :2]


def keypoint_oks(pred, gt, visible, area: float, sigmas) -> np.ndarray:
    """COCO OKS of each prediction against one ground truth.

    Args:
        pred: (M, K, 2|3) or (K, 2|3) predicted keypoints.
        gt: (K, 2|3) ground-truth keypoints; visible: (K,), a joint counts where > 0.
        area: the ground truth's area (pixels^2); sigmas: (K,).
    Returns (M,) float64 (a float for a single prediction); 0 where the ground truth has no
    labelled joint (COCOeval measures those against its box instead; they are ignored in scoring).
    """
    g = _xy(gt, "gt")
    p = _xy(pred, "pred")
    single = p.ndim == 2
    p = p[None] if single else p
    k = g.shape[0]
    if p.shape[1:] != (k, 2) or g.shape != (k, 2):
        raise ValueError(f"pred must be (M, {k}, 2|3) for a ground truth of {k} keypoints, got {np.shape(pred)}")
    vis = np.asarray(visible).reshape(k) > 0
    variances = _variances(sigmas, k)
    d2 = ((p - g) ** 2).sum(-1)  # (M, K)
    terms = np.exp(-d2 / variances / (float(area) + _EPS) / 2.0)
    count = int(vis.sum())
    out = terms[:, vis].sum(1) / count if count else np.zeros(len(p))
    return out[0] if single else out


def oks_matrix(keypoints, areas, sigmas) -> np.ndarray:
    """Pairwise OKS (N, N) between N instances (mmpose 0.x `oks_iou`): all joints, mean area.

    keypoints: (N, K, 2|3); areas: (N,); sigmas: (K,).
    """
    xy = _xy(keypoints, "keypoints")
    if xy.ndim != 3:
        raise ValueError(f"keypoints must be (N, K, 2|3), got shape {np.shape(keypoints)}")
    n, k, _ = xy.shape
    area = np.asarray(areas, dtype=np.float64).reshape(-1)
    if area.shape != (n,):
        raise ValueError(f"areas must be (N,) = ({n},), got shape {np.shape(areas)}")
    variances = _variances(sigmas, k)
    d2 = ((xy[:, None] - xy[None]) ** 2).sum(-1)  # (N, N, K)
    mean_area = (area[:, None] + area[None, :]) / 2.0 + _EPS
    return np.exp(-d2 / variances / mean_area[..., None] / 2.0).mean(-1)


def oks_nms(keypoints, scores, areas, sigmas, threshold: float = 0.9) -> np.ndarray:
    """Greedy OKS-NMS as mmpose's `oks_nms` (0.x and 1.x): the indices kept, in the order kept.

    Repeatedly keep the highest-scored instance left and drop every other instance whose OKS
    with it (`oks_matrix`) is above `threshold`. As mmpose, the OKS is compared in float32 (it
    stores the overlaps in a float32 array), and the instances are visited in the order of
    `argsort(scores)[::-1]`: among equal scores the LATER instance comes first. That order decides
    which of two tied duplicates survives, and the order of the kept instances in the results file,
    which pycocotools' stable sort by score keeps for ties. mmpose reverses numpy's default
    argsort, an introsort that finishes 16 or fewer elements with an insertion sort, which is
    stable: the stable argsort used here gives mmpose's order there. Above 16 tied instances in one
    image numpy's order is implementation-defined (measured: numpy 1.26 and 2.4 differ on all-equal
    scores), and this rule is the deterministic one that agrees with it up to 16.
    """
    score = np.asarray(scores, dtype=np.float64).reshape(-1)
    n = len(score)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    overlap = oks_matrix(keypoints, areas, sigmas).astype(np.float32)
    if overlap.shape[0] != n:
        raise ValueError(f"scores has {n} entries, keypoints {overlap.shape[0]}")
    order = np.argsort(score, kind="stable")[::-1]
    keep = []
    while order.size:
        i = order[0]
        keep.append(i)
        rest = order[1:]
        order = rest[overlap[i, rest] <= np.float32(threshold)]
    return np.asarray(keep, dtype=np.int64)
