"""MPII as mmpose users have it: the person list and the ground-truth file of the official evaluation.

    data/mpii/annotations/mpii_{train,val}.json   a JSON list, one entry per person:
        {"image": "015601864.jpg", "joints": [[x, y]] * 16, "joints_vis": [0|1] * 16,
         "center": [x, y], "scale": s}
    data/mpii/annotations/mpii_gt_val.mat         the official evaluation's ground truth, one
        column per entry of mpii_val.json, in the same order
    data/mpii/images/                             the images

Coordinates in both files are MATLAB's, 1-based; the person box is `center` with a side of
`scale` x 200 pixels. As mmpose 0.x's TopDownMpiiDataset (SRPose's code base) reads them:
joints and centre move to 0-based pixels (- 1), the centre first moves down by 15 x scale pixels
(so the crop does not cut the feet; not when centre x is -1, MPII's "unknown"), and the crop's
scale is (s, s) x the padding (1.25). A joint counts where joints_vis > 0. Every entry becomes a
sample, in file order: the official evaluation matches predictions to the .mat by position.
The image id is the number in the image's name (mmpose 1.x's rule), so results files name images
as COCO-format ones do.

`mpii_gt_val.mat` (read with scipy.io.loadmat) holds, for N persons:
    dataset_joints  1 x 16 cell of joint names ('rank', 'rkne', ..., 'head', ..., 'lwri')
    jnt_missing     16 x N, 1 where the joint is not labelled
    pos_gt_src      16 x 2 x N, joint positions (1-based pixels)
    headboxes_src   2 x 2 x N, the head box's corners [[x1, y1], [x2, y2]] (1-based pixels)
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..codecs.conventions import PIXEL_STD  # MPII's scale is in the same units of 200 pixels
from ..keypoint_sets import MPII, KeypointSet

CENTER_SHIFT = 15.0  # pixels per unit of scale the centre moves down (mmpose, and the HRNet code before it)
GT_FILE_NAME = "mpii_gt_val.mat"  # where mmpose looks for it: next to the annotation file

# Names of `dataset_joints` in the ground-truth file, by the index the MPII keypoint set gives the
# joint. The MPII evaluation finds its joints by these names; pelvis, thorax and upper neck it
# takes by position.
GT_JOINT_NAMES = {0: "rank", 1: "rkne", 2: "rhip", 3: "lhip", 4: "lkne", 5: "lank", 9: "head",
                  10: "rwri", 11: "relb", 12: "rsho", 13: "lsho", 14: "lelb", 15: "lwri"}
_ENTRY_KEYS = ("image", "joints", "joints_vis", "center", "scale")


def is_mpii_annotations(data) -> bool:
    """Whether parsed annotation JSON is mmpose's MPII layout (a list of persons)."""
    return isinstance(data, list)


def mpii_image_id(image_name: str) -> int:
    """'015601864.jpg' -> 15601864: the number in the image's name (mmpose 1.x's rule)."""
    stem = Path(image_name).stem
    if not stem.isdigit():
        raise ValueError(f"MPII image name {image_name!r} is not a number: mmpose's MPII layout names "
                         f"images by number (e.g. 015601864.jpg), which become the image ids")
    return int(stem)


def mpii_samples(entries: list, ann_file, img_prefix, keypoint_set: KeypointSet, *, padding: float) -> list[dict]:
    """The samples of a top-down data set (the keys `TopDownCocoDataset` gives its samples) from
    mmpose's MPII list: one per entry, in file order (see the module docstring)."""
    k = keypoint_set.num_keypoints
    samples = []
    for i, entry in enumerate(entries):
        where = f"annotation file {ann_file}: entry {i}"
        if not isinstance(entry, dict) or not set(_ENTRY_KEYS) <= entry.keys():
            raise ValueError(f"{where} is not an MPII person {{{', '.join(_ENTRY_KEYS)}}} (mmpose's MPII layout)")
        joints = np.asarray(entry["joints"], dtype=np.float32)
        joints_vis = np.asarray(entry["joints_vis"], dtype=np.float32).reshape(-1)
        if joints.shape != (k, 2) or joints_vis.shape != (k,):
            raise ValueError(f"{where} has {len(entry['joints'])} joints, keypoint set {keypoint_set.name!r} "
                             f"has {k} (use --keypoint-set mpii, or a config with \"keypoint_set\": \"mpii\")")
        s = float(entry["scale"])
        if not s > 0:
            raise ValueError(f"{where} has scale {entry['scale']!r}; it must be positive")
        center = np.asarray(entry["center"], dtype=np.float32).reshape(2)
        if center[0] != -1:
            center[1] += CENTER_SHIFT * s
        center -= 1.0
        scale = np.full(2, s * padding, dtype=np.float32)
        visible = (joints_vis > 0).astype(np.float32)
        side = s * padding * PIXEL_STD
        samples.append({
            "image_id": mpii_image_id(entry["image"]), "file": Path(img_prefix) / entry["image"],
            "size": None,  # the layout does not give the image size
            "bbox": np.array([center[0] - side / 2, center[1] - side / 2, side, side], dtype=np.float32),
            "center": center, "scale": scale,
            "keypoints": (joints - 1.0) * visible[:, None], "visible": visible,
            "box_score": 1.0, "area": side * side, "ann_id": i,
        })
    return samples


@dataclass(frozen=True)
class MpiiGroundTruth:
    """The official evaluation's ground truth of N persons, in the MPII keypoint set's joint order
    and 1-based pixels as in the file: positions (N, 16, 2), labelled (N, 16) bool,
    head_boxes (N, 2, 2) = [[x1, y1], [x2, y2]] per person."""

    positions: np.ndarray
    labelled: np.ndarray
    head_boxes: np.ndarray

    def __len__(self) -> int:
        return len(self.positions)


def _joint_names(cell) -> list[str]:
    """The strings of a loadmat'ed MATLAB cell of char arrays (1 x K object array of arrays)."""
    return ["".join(np.asarray(item).astype(str).reshape(-1).tolist()) for item in np.asarray(cell).reshape(-1)]


def load_mpii_gt(path, keypoint_set: KeypointSet = MPII) -> MpiiGroundTruth:
    """Read `mpii_gt_val.mat` (see the module docstring); the joints must stand in the keypoint
    set's order, as in the official file (checked by name where the evaluation names them)."""
    from scipy.io import loadmat
    from scipy.io.matlab import MatReadError

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"MPII ground-truth file not found: {path} (the official evaluation's "
                                f"{GT_FILE_NAME}, which mmpose keeps next to mpii_val.json)")
    try:
        mat = loadmat(path)
    except (MatReadError, ValueError, TypeError, OSError) as err:
        raise ValueError(f"{path} is not a readable MATLAB file: {err}") from None
    missing = [key for key in ("dataset_joints", "jnt_missing", "pos_gt_src", "headboxes_src") if key not in mat]
    if missing:
        raise ValueError(f"{path} lacks {missing}: not MPII's ground-truth file {GT_FILE_NAME}")
    k = keypoint_set.num_keypoints
    names = _joint_names(mat["dataset_joints"])
    wrong = {i: n for i, n in GT_JOINT_NAMES.items() if i >= len(names) or names[i] != n}
    if len(names) != k or wrong:
        raise ValueError(f"{path}: dataset_joints is {names}; the MPII evaluation expects {k} joints with "
                         f"{sorted(GT_JOINT_NAMES.items())} at those positions")
    pos = np.asarray(mat["pos_gt_src"], dtype=np.float64)
    jnt_missing = np.asarray(mat["jnt_missing"])
    boxes = np.asarray(mat["headboxes_src"], dtype=np.float64)
    n = pos.shape[-1] if pos.ndim == 3 else -1
    if pos.shape != (k, 2, n) or jnt_missing.shape != (k, n) or boxes.shape != (2, 2, n):
        raise ValueError(f"{path}: expected pos_gt_src ({k}, 2, N), jnt_missing ({k}, N) and headboxes_src "
                         f"(2, 2, N), got {pos.shape}, {jnt_missing.shape} and {boxes.shape}")
    return MpiiGroundTruth(positions=pos.transpose(2, 0, 1), labelled=(jnt_missing == 0).T,
                           head_boxes=boxes.transpose(2, 0, 1))


__all__ = ["GT_FILE_NAME", "MpiiGroundTruth", "is_mpii_annotations", "load_mpii_gt", "mpii_image_id",
           "mpii_samples"]
