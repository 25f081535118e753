"""COCO keypoint AP/AR with pycocotools' COCOeval (iouType "keypoints").

- `keypoint_results`: predictions to the COCO results format
  ({image_id, category_id, keypoints: [x, y, score] * K, score}).
- `run_cocoeval`: pycocotools' COCOeval with the keypoint set's OKS sigmas
  (`params.kpt_oks_sigmas`, so sets other than COCO's 17 joints work), made to score as
  xtcocotools, the evaluator mmpose uses, scores (see its docstring); CrowdPose's evaluation
  (`crowdpose_metrics`) runs on it too.
- `coco_keypoint_eval`: COCO's ten summary numbers under `STAT_NAMES`.
- `metrics_markdown`: a one-row markdown table of them.

pycocotools reports -1 for a number without ground truth (e.g. APm when no person is of medium
size); those values are passed through unchanged.
"""
from __future__ import annotations

import contextlib
import copy
import io
import json
from pathlib import Path

import numpy as np

STAT_NAMES = ("AP", "AP50", "AP75", "APm", "APl", "AR", "AR50", "AR75", "ARm", "ARl")
CROWD_AREA_FACTOR = 0.53  # xtcocotools' area of a person from its box when "area" is not used


def keypoint_results(image_ids, keypoints, keypoint_scores, scores, *, category_id: int = 1) -> list[dict]:
    """COCO keypoint results: one dict per instance.

    image_ids: (N,); keypoints: (N, K, 2) image pixels; keypoint_scores: (N, K); scores: (N,).
    """
    ids = np.asarray(image_ids).reshape(-1)
    kpts = np.asarray(keypoints, dtype=np.float64)
    kscores = np.asarray(keypoint_scores, dtype=np.float64)
    inst = np.asarray(scores, dtype=np.float64).reshape(-1)
    n = len(ids)
    if kpts.ndim != 3 or kpts.shape[0] != n or kpts.shape[2] != 2:
        raise ValueError(f"keypoints must be (N, K, 2) with N = {n}, got shape {kpts.shape}")
    if kscores.shape != kpts.shape[:2] or inst.shape != (n,):
        raise ValueError(f"keypoint_scores must be (N, K) = {kpts.shape[:2]} and scores (N,), "
                         f"got {kscores.shape} and {inst.shape}")
    flat = np.concatenate([kpts, kscores[..., None]], axis=-1).reshape(n, -1)
    return [{"image_id": int(i), "category_id": int(category_id), "keypoints": [float(v) for v in row],
             "score": float(s)} for i, row, s in zip(ids, flat, inst)]


def _gt_dataset(coco_gt, *, crowd_area: bool = False) -> dict:
    """A COCO-format dict from a path, a dict or a pycocotools COCO; a copy, completed where
    COCOeval needs fields that converted data sets may lack. `crowd_area`: every annotation's area
    becomes CROWD_AREA_FACTOR x its box (see `run_cocoeval`)."""
    if isinstance(coco_gt, (str, Path)):
        data = json.loads(Path(coco_gt).read_bytes())
    elif isinstance(coco_gt, dict):
        data = copy.deepcopy(coco_gt)
    elif hasattr(coco_gt, "dataset"):
        data = copy.deepcopy(coco_gt.dataset)
    else:
        raise TypeError(f"coco_gt must be a path, a COCO-format dict or a pycocotools COCO, "
                        f"got {type(coco_gt).__name__}")
    if not isinstance(data, dict) or not isinstance(data.get("annotations"), list) \
            or not isinstance(data.get("images"), list):
        raise ValueError("ground truth must be a COCO-format object with 'images' and 'annotations' lists")
    data.setdefault("categories", [{"id": 1, "name": "person"}])
    for i, ann in enumerate(data["annotations"]):
        ann.setdefault("id", i + 1)
        ann.setdefault("iscrowd", 0)
        ann.setdefault("category_id", 1)
        kpts = ann.get("keypoints", [])
        ann.setdefault("num_keypoints", int(sum(1 for v in kpts[2::3] if v > 0)))
        if "bbox" in ann and (crowd_area or "area" not in ann):
            ann["area"] = (CROWD_AREA_FACTOR if crowd_area else 1.0) * float(ann["bbox"][2]) * float(ann["bbox"][3])
    return data


def run_cocoeval(coco_gt, results, sigmas, *, crowd_area: bool = False, verbose: bool = False):
    """pycocotools' COCOeval (iouType "keypoints") of `results`, evaluated, accumulated and
    summarised (`.stats`); the evaluation xtcocotools runs for mmpose:

    - a result whose keypoint scores are all <= 0 is not scored (xtcocotools drops it before
      matching; pycocotools alone would count it as a detection);
    - `crowd_area`: the OKS scale and the area ranges use CROWD_AREA_FACTOR x the box's w h of each
      annotation, whatever its "area" (xtcocotools with use_area=False, as mmpose scores CrowdPose);
      otherwise an annotation's "area", w h where it has none.

    Args:
        coco_gt: annotation file path, COCO-format dict or pycocotools COCO (not modified).
        results: a list of result dicts (`keypoint_results`) or the path of a results JSON.
        sigmas: (K,) OKS sigmas of the keypoint set.
        verbose: print pycocotools' own output (loading, timing, the summary table).
    Raises ValueError for an empty result list (pycocotools would fail with an IndexError), results
    whose keypoint count does not match the sigmas or that name images not in the ground truth.
    """
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    if isinstance(results, (str, Path)):
        results = json.loads(Path(results).read_bytes())
    if not isinstance(results, list):
        raise ValueError(f"results must be a list of COCO keypoint results, got {type(results).__name__}")
    if not results:
        raise ValueError("no predictions to score: the result list is empty (no samples were evaluated, "
                         "or every detection box was filtered out)")
    sig = np.asarray(sigmas, dtype=np.float64).reshape(-1)
    for i, res in enumerate(results):
        if len(res.get("keypoints", ())) != 3 * len(sig):
            raise ValueError(f"result {i} has {len(res.get('keypoints', ()))} keypoint values; "
                             f"{len(sig)} sigmas need {3 * len(sig)} ([x, y, score] per keypoint)")
    scored = [res for res in results if any(v > 0 for v in res["keypoints"][2::3])]
    data = _gt_dataset(coco_gt, crowd_area=crowd_area)
    out = io.StringIO()
    with contextlib.redirect_stdout(out) if not verbose else contextlib.nullcontext():
        gt = COCO()
        gt.dataset = data
        gt.createIndex()
        known = set(gt.getImgIds())
        unknown = sorted({r["image_id"] for r in results} - known)
        if unknown:
            raise ValueError(f"results refer to {len(unknown)} image ids that are not in the ground truth, "
                             f"e.g. {unknown[:5]}")
        if scored:
            dt = gt.loadRes(copy.deepcopy(scored))
        else:  # loadRes fails on an empty list; no detection scores 0 (and -1 without ground truth)
            dt = COCO()
            dt.dataset = {"images": data["images"], "categories": data["categories"], "annotations": []}
            dt.createIndex()
        coco_eval = COCOeval(gt, dt, iouType="keypoints")
        coco_eval.params.kpt_oks_sigmas = sig
        coco_eval.params.useSegm = None
        coco_eval.evaluate()
        coco_eval.accumulate()
        coco_eval.summarize()
    return coco_eval


def coco_keypoint_eval(coco_gt, results, sigmas, *, verbose: bool = False) -> dict[str, float]:
    """COCO keypoint AP/AR of `results` (`run_cocoeval`): {name: value} for `STAT_NAMES`."""
    coco_eval = run_cocoeval(coco_gt, results, sigmas, verbose=verbose)
    return {name: float(v) for name, v in zip(STAT_NAMES, coco_eval.stats)}


def metrics_markdown(stats: dict[str, float], *, title: str | None = None) -> str:
    """A markdown table: one column per stat, values as percentages with one decimal (-1 stays -1)."""
    names = list(stats)
    cells = ["-1" if stats[n] == -1 else f"{100.0 * stats[n]:.1f}" for n in names]
    lines = [f"**{title}**", ""] if title else []
    lines += ["| " + " | ".join(names) + " |", "|" + "---|" * len(names), "| " + " | ".join(cells) + " |"]
    return "\n".join(lines) + "\n"
