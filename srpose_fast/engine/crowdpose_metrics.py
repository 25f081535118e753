"""CrowdPose keypoint AP as its benchmark scores it, on pycocotools.

CrowdPose's own tool (crowdposetools) and xtcocotools' "keypoints_crowd" mode, which mmpose runs
with use_area=False, score a results file as COCO's keypoint evaluation does, except:
- the OKS scale of a ground-truth person is 0.53 x its box's w h, never its "area"
  (`coco_metrics.run_cocoeval(crowd_area=True)`); a ground truth is ignored when its
  "num_keypoints" is 0 (pycocotools' rule too);
- the summary: AP, AP50, AP75, AR, AR50, AR75 (20 detections per image, all sizes), then AP(E),
  AP(M), AP(H): the AP over the images of each crowd level, by each image's "crowdIndex":
  easy < 0.2 <= medium < 0.8 <= hard (the tool's thresholds; the CrowdPose paper's text says 0.1).
  Each is the mean of the precision array over that subset, rounded to 4 decimals as the tool
  rounds it; -1 when the subset has no image with a person to find.
Results whose keypoint scores are all <= 0 are not scored (`run_cocoeval`).
"""
from __future__ import annotations

import contextlib
import io

import numpy as np

from .coco_metrics import run_cocoeval

CROWDPOSE_STAT_NAMES = ("AP", "AP50", "AP75", "AR", "AR50", "AR75", "AP(E)", "AP(M)", "AP(H)")
CROWD_INDEX_BOUNDS = (0.2, 0.8)  # easy < 0.2 <= medium < 0.8 <= hard
CROWD_LEVELS = ("AP(E)", "AP(M)", "AP(H)")
_SUMMARY = {"AP": 0, "AP50": 1, "AP75": 2, "AR": 5, "AR50": 6, "AR75": 7}  # indices in COCOeval.stats


def crowd_levels(images: list[dict]) -> dict[str, list[int]]:
    """Image ids per crowd level (`CROWD_LEVELS`), in file order; an index that is not below
    a bound goes to the next level, as in the tool (so a NaN index counts as hard)."""
    missing = [img.get("id") for img in images if "crowdIndex" not in img]
    if missing:
        raise ValueError(f"{len(missing)} images have no 'crowdIndex' (e.g. image {missing[0]}): not a "
                         f"CrowdPose annotation file (score it as COCO with --dataset coco)")
    levels = {name: [] for name in CROWD_LEVELS}
    for img in images:
        level = int(np.searchsorted(CROWD_INDEX_BOUNDS, float(img["crowdIndex"]), side="right"))
        levels[CROWD_LEVELS[level]].append(img["id"])
    return levels


def crowdpose_keypoint_eval(coco_gt, results, sigmas, *, verbose: bool = False) -> dict[str, float]:
    """CrowdPose's AP/AR and AP(E/M/H) of `results` (see the module docstring).

    Args as `coco_metrics.run_cocoeval`; the ground truth's images must carry "crowdIndex".
    Returns {name: value} for `CROWDPOSE_STAT_NAMES`.
    """
    coco_eval = run_cocoeval(coco_gt, results, sigmas, crowd_area=True, verbose=verbose)
    stats = {name: float(coco_eval.stats[i]) for name, i in _SUMMARY.items()}
    levels = crowd_levels(coco_eval.cocoGt.dataset["images"])
    with contextlib.redirect_stdout(io.StringIO()):
        for name, image_ids in levels.items():
            coco_eval.params.imgIds = image_ids
            coco_eval.evaluate()
            coco_eval.accumulate()
            stats[name] = round(float(np.mean(coco_eval.eval["precision"][:, :, :, 0, :])), 4)
    return stats


__all__ = ["CROWDPOSE_STAT_NAMES", "CROWD_INDEX_BOUNDS", "CROWD_LEVELS", "crowd_levels", "crowdpose_keypoint_eval"]
