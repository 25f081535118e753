"""MPII as mmpose users lay it out, built inside the tests (importable from every test module).

    <root>/annotations/mpii_val.json     mmpose's list of {image, joints, joints_vis, center, scale}
    <root>/annotations/mpii_gt_val.mat   the structure of MPII's official ground-truth file:
                                         dataset_joints (1 x 16 cell of names), jnt_missing (16 x N),
                                         pos_gt_src (16 x 2 x N), headboxes_src (2 x 2 x N), 1-based
    <root>/images/<9 digits>.jpg
"""
from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import cv2
import numpy as np

# dataset_joints of the official file, in the MPII keypoint order.
GT_NAMES = ("rank", "rkne", "rhip", "lhip", "lkne", "lank", "pelv", "thor", "neck", "head",
            "rwri", "relb", "rsho", "lsho", "lelb", "lwri")
IMAGE_SIZE = (240, 200)  # (H, W)
# Per person: image, centre (1-based), scale, head box (x1, y1, x2, y2; 1-based). Head sizes
# 0.6 x diagonal: 30, 15, 15 and 3 (the last one small enough that 1 pixel exceeds 0.1 x 3).
PERSONS = (("000000011.jpg", (100.0, 110.0), 0.8, (80.0, 20.0, 110.0, 60.0)),
           ("000000022.jpg", (60.0, 120.0), 0.7, (50.0, 30.0, 65.0, 50.0)),
           ("000000022.jpg", (140.0, 120.0), 0.7, (130.0, 30.0, 145.0, 50.0)),
           ("000000033.jpg", (100.0, 100.0), 0.9, (98.0, 40.0, 101.0, 44.0)))
HEAD_SIZES = (30.0, 15.0, 15.0, 3.0)


def mpii_names(names=GT_NAMES):
    """`dataset_joints` as savemat writes a MATLAB cell of char arrays (what loadmat gives back
    for the official file: a 1 x 16 object array of 1-element string arrays)."""
    cell = np.empty((1, len(names)), dtype=object)
    for i, name in enumerate(names):
        cell[0, i] = np.array([name])
    return cell


def write_mpii(root, *, seed: int = 0, gt_persons: int | None = None, names=GT_NAMES) -> SimpleNamespace:
    """Write the layout under root. Joints lie around each centre; each person misses one or two
    joints (joints_vis 0, jnt_missing 1). gt_persons: how many persons the .mat holds (default all).
    Returns ann, images, mat (paths), joints (N, 16, 2) and labelled (N, 16) as written (1-based)."""
    from scipy.io import savemat

    root = Path(root)
    (root / "annotations").mkdir(parents=True, exist_ok=True)
    (root / "images").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for name in sorted({p[0] for p in PERSONS}):
        cv2.imwrite(str(root / "images" / name), rng.integers(0, 256, (*IMAGE_SIZE, 3), dtype=np.uint8))
    entries, joints, labelled = [], [], []
    for i, (image, center, scale, _) in enumerate(PERSONS):
        xy = np.round(np.asarray(center) + rng.uniform(-50, 50, (16, 2)), 2)
        vis = np.ones(16, dtype=int)
        vis[[i % 16, (5 * i + 3) % 16][: 1 + i % 2]] = 0
        xy[vis == 0] = 0.0
        joints.append(xy)
        labelled.append(vis > 0)
        entries.append({"image": image, "joints": xy.tolist(), "joints_vis": vis.tolist(),
                        "center": list(center), "scale": scale})
    ann = root / "annotations" / "mpii_val.json"
    ann.write_text(json.dumps(entries))
    n = len(PERSONS) if gt_persons is None else gt_persons
    joints, labelled = np.stack(joints), np.stack(labelled)
    boxes = np.asarray([p[3] for p in PERSONS], dtype=np.float64).reshape(-1, 2, 2)
    mat = root / "annotations" / "mpii_gt_val.mat"
    savemat(mat, {"dataset_joints": mpii_names(names), "jnt_missing": (~labelled[:n]).T.astype(np.uint8),
                  "pos_gt_src": joints[:n].transpose(1, 2, 0), "headboxes_src": boxes[:n].transpose(1, 2, 0)})
    return SimpleNamespace(ann=ann, images=root / "images", mat=mat, joints=joints, labelled=labelled)
