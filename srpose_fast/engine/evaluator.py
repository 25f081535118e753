"""Top-down evaluation: predict every person box of a data set, then score it as its benchmark does.

What `evaluate` does, as mmpose does it (1.x's CocoMetric; 0.x, SRPose's code base, the same):
1. `model.predict` on each batch of crops, in data set order, keypoints mapped back to the image
   with each crop's center/scale (flip test and decoder as asked).
2. Rescoring: instance score = box score x the mean of the keypoint scores above 0.2 (0 when none
   is; such instances are kept and written), `rescoring.rescore`.
3. COCO and CrowdPose: OKS-NMS per image at 0.9 with the keypoint set's sigmas, each image's
   instances in id order and the area of an instance its crop's, prod(scale * 200)
   (`rescoring.nms_per_image`). MPII: none; PCKh scores every ground-truth person.
4. The benchmark's scoring (`scoring.score_results`, the same as `srpose-fast score`): COCO AP,
   CrowdPose AP with AP(E/M/H), MPII PCKh with head boxes.
"""
from __future__ import annotations

import warnings

import numpy as np
import torch
from torch.utils.data import DataLoader
from tqdm import tqdm

from ..codecs.transforms import PIXEL_STD
from ..data.collate import collate_pose
from .coco_metrics import STAT_NAMES, keypoint_results
# The post-processing lives in the torch-free rescoring module; re-exported for existing imports.
from .rescoring import OKS_NMS_THRESHOLD, VIS_THRESHOLD, nms_per_image, rescore
from .scoring import benchmark_of, score_results, write_scores


def _model_device(model) -> torch.device:
    params = list(model.parameters()) if isinstance(model, torch.nn.Module) else []
    return params[0].device if params else torch.device("cpu")


@torch.no_grad()
def predict_dataset(model, dataset, *, batch_size: int = 32, method: str = "shift", flip_test: bool = True,
                    device=None, progress: bool = True, backend: str | None = None, num_workers: int = 0) -> dict:
    """Run `model.predict` over the data set in order; numpy arrays keyed image_id (N,),
    keypoints (N, K, 2) image pixels, keypoint_scores (N, K), box_score (N,), center, scale (N, 2).
    backend: the decode's; None = the model's (`model.set_backend`)."""
    device = _model_device(model) if device is None else torch.device(device)
    if isinstance(model, torch.nn.Module):
        model.to(device)
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=num_workers,
                        collate_fn=collate_pose, pin_memory=device.type == "cuda")
    keys = ("image_id", "keypoints", "keypoint_scores", "box_score", "center", "scale")
    parts: dict[str, list] = {key: [] for key in keys}
    for batch in tqdm(loader, desc="evaluate", unit="batch", disable=not progress):
        center = batch["center"].to(device)
        scale = batch["scale"].to(device)
        keypoints, scores = model.predict(batch["image"].to(device, non_blocking=True), flip_test=flip_test,
                                          method=method, center=center, scale=scale, backend=backend)
        parts["keypoints"].append(torch.as_tensor(keypoints).float().cpu().numpy())
        parts["keypoint_scores"].append(torch.as_tensor(scores).float().cpu().numpy())
        for key in ("image_id", "box_score", "center", "scale"):
            parts[key].append(batch[key].numpy())
    k = dataset.keypoint_set.num_keypoints
    empty = {"image_id": np.zeros(0, np.int64), "keypoints": np.zeros((0, k, 2), np.float32),
             "keypoint_scores": np.zeros((0, k), np.float32), "box_score": np.zeros(0, np.float32),
             "center": np.zeros((0, 2), np.float32), "scale": np.zeros((0, 2), np.float32)}
    return {key: np.concatenate(vals) if vals else empty[key] for key, vals in parts.items()}


def _finite(keypoints: np.ndarray, keypoint_scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Non-finite predictions (a NaN heatmap) become (0, 0) with score 0, so the results are valid
    JSON; a warning counts them."""
    bad = ~np.isfinite(keypoints).all(-1) | ~np.isfinite(keypoint_scores)
    if bad.any():
        warnings.warn(f"evaluate: {int(bad.sum())} keypoints are not finite (NaN heatmaps?); "
                      f"scored as (0, 0) with score 0", stacklevel=3)
        keypoints = np.where(bad[..., None], 0.0, keypoints)
        keypoint_scores = np.where(bad, 0.0, keypoint_scores)
    return keypoints, keypoint_scores


def instance_order(dataset) -> np.ndarray:
    """The order in which mmpose 1.x's CocoMetric hands each image's instances to OKS-NMS (it sorts
    them by id): by annotation id for ground-truth boxes, data set order for detections."""
    ann_ids = [s.get("ann_id") for s in dataset.samples]
    if any(a is None for a in ann_ids):
        return np.arange(len(ann_ids))
    return np.argsort(np.asarray(ann_ids), kind="stable")


def evaluate(model, dataset, *, batch_size: int = 32, method: str = "shift", flip_test: bool = True, device=None,
             out_dir=None, progress: bool = True, backend: str | None = None, num_workers: int = 0,
             benchmark: str | None = None, gt_file=None, vis_thr: float = VIS_THRESHOLD,
             oks_nms_thr: float = OKS_NMS_THRESHOLD) -> dict[str, float]:
    """Evaluate a top-down model on a `TopDownCocoDataset` (train=False); see the module docstring.

    Args:
        model: anything with `predict(images, *, flip_test, method, center, scale, backend)` returning
            (keypoints (B, K, 2) in image pixels, scores (B, K)), e.g. `TopDownPoseModel`.
        dataset: `TopDownCocoDataset` with ground-truth boxes or detections (MPII: ground-truth boxes).
        method: decoder ("argmax" | "shift" | "dark" | "dark_udp").
        device: where to run; None keeps the model where it is (CPU for a model without parameters).
        out_dir: if given, `keypoints_results.json` (COCO results of the kept instances),
            `metrics.json` (the returned dict) and `metrics.md` are written there.
        num_workers: DataLoader workers for image loading.
        backend: the fused ops' backend; None = the model's (`build_model(backend=)`, `model.set_backend`).
        benchmark: "coco" | "crowdpose" | "mpii"; None: the data set's (`scoring.benchmark_of`).
        gt_file: MPII's `mpii_gt_val.mat` (default: next to the annotation file).
        vis_thr, oks_nms_thr: the rescoring's keypoint score threshold and OKS-NMS's (mmpose: 0.2, 0.9).
    Returns the benchmark's statistics as fractions (`scoring`): COCO's AP ... ARl (-1 where there
    is no ground truth in a size range), CrowdPose's AP ... AR75 and AP(E/M/H), MPII's PCKh@0.5,
    PCKh@0.1, the MPII table's columns and each joint.
    """
    kset = dataset.keypoint_set
    model_kset = getattr(model, "keypoint_set", None)
    if model_kset is not None and model_kset.num_keypoints != kset.num_keypoints:
        raise ValueError(f"the model predicts {model_kset.num_keypoints} keypoints ({model_kset.name}), "
                         f"the data set has {kset.num_keypoints} ({kset.name})")
    model_size = getattr(model, "input_size", None)
    if model_size is not None and tuple(model_size) != tuple(dataset.input_size):
        raise ValueError(f"the model's input size is {tuple(model_size)}, the data set crops to "
                         f"{tuple(dataset.input_size)}; build the data set with input_size={tuple(model_size)}")
    if len(dataset) == 0:
        raise ValueError(f"nothing to evaluate: the data set ({dataset.ann_file}) has no person boxes "
                         f"(no annotated persons with keypoints, or no detections above the score threshold)")
    benchmark = benchmark or benchmark_of(dataset)

    preds = predict_dataset(model, dataset, batch_size=batch_size, method=method, flip_test=flip_test,
                            device=device, progress=progress, backend=backend, num_workers=num_workers)
    keypoints, keypoint_scores = _finite(preds["keypoints"], preds["keypoint_scores"])
    scores = rescore(preds["box_score"], keypoint_scores, vis_thr)
    if benchmark == "mpii":
        keep = np.arange(len(scores))
    else:
        order = instance_order(dataset)
        areas = np.prod(preds["scale"].astype(np.float64) * PIXEL_STD, axis=1)
        keep = order[nms_per_image(preds["image_id"][order], keypoints[order], scores[order], areas[order],
                                   kset.sigmas, oks_nms_thr)]
    results = keypoint_results(preds["image_id"][keep], keypoints[keep], keypoint_scores[keep], scores[keep])
    stats = score_results(benchmark, dataset, results, gt_file=gt_file)

    if out_dir is not None:
        after = "no NMS" if benchmark == "mpii" else f"{len(results)} after OKS-NMS"
        title = (f"{kset.name} keypoints, {len(dataset)} boxes, {after}, decoder {method}, "
                 f"flip test {'on' if flip_test else 'off'}")
        write_scores(out_dir, benchmark, stats, results=results, title=title)
    return stats


__all__ = ["OKS_NMS_THRESHOLD", "STAT_NAMES", "VIS_THRESHOLD", "evaluate", "instance_order", "nms_per_image",
           "predict_dataset", "rescore"]
