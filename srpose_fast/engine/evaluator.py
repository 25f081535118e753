"""Top-down evaluation: predict every person box of a data set, rescore, OKS-NMS, COCO AP.

What `evaluate` does, as SRPose's code (mmpose 0.x TopDownCocoDataset.evaluate) does it:
1. `model.predict` on each batch of crops, in data set order, keypoints mapped back to the image
   with each crop's center/scale (flip test and decoder as asked).
2. Rescoring: instance score = box score x the mean of the keypoint scores above 0.2. An instance
   with no keypoint score above 0.2 gets score 0 (mmpose starts the mean at 0 and only divides
   when a score passed, so the product is 0); it is kept and still written to the results.
3. OKS-NMS per image at 0.9 with the keypoint set's sigmas (`oks.oks_nms`): all joints count and
   the area of an instance is its crop's area, prod(scale * 200), as mmpose 0.x passes it.
4. COCOeval (iouType "keypoints", the keypoint set's sigmas) on the kept instances.

CrowdPose is scored here with COCO-style AP/AR (COCOeval with CrowdPose's 14 sigmas), not with
the crowd-index AP(E)/AP(M)/AP(H) of CrowdPose's own tool (xtcocotools "keypoints_crowd"); the
paper's CrowdPose 67.8 is the latter's AP. MPII data sets in COCO format additionally get PCKh
(see `pckh`) when the boxes are the ground truth's.
"""
from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader
from tqdm import tqdm

from ..codecs.transforms import PIXEL_STD
from ..data.collate import collate_pose
from ..keypoint_sets import KeypointSet
from .coco_metrics import STAT_NAMES, coco_keypoint_eval, keypoint_results, metrics_markdown
from .oks import oks_nms
from .pckh import head_sizes, pckh

VIS_THRESHOLD = 0.2
OKS_NMS_THRESHOLD = 0.9


def rescore(box_scores, keypoint_scores, threshold: float = VIS_THRESHOLD) -> np.ndarray:
    """Instance scores (N,): box score x mean of the keypoint scores (N, K) above `threshold`,
    0 where none is above it (mmpose 0.x). NaN keypoint scores never count."""
    ks = np.asarray(keypoint_scores, dtype=np.float64)
    box = np.asarray(box_scores, dtype=np.float64).reshape(-1)
    if ks.ndim != 2 or ks.shape[0] != box.shape[0]:
        raise ValueError(f"keypoint_scores must be (N, K) with N = {box.shape[0]}, got shape {ks.shape}")
    above = ks > threshold
    count = above.sum(1)
    total = np.where(above, ks, 0.0).sum(1)
    return box * np.where(count > 0, total / np.maximum(count, 1), 0.0)


def nms_per_image(image_ids, keypoints, scores, areas, sigmas, threshold: float = OKS_NMS_THRESHOLD) -> np.ndarray:
    """Indices kept by OKS-NMS run separately on each image's instances; images in ascending id
    order, within an image highest score first."""
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


def _model_device(model) -> torch.device:
    params = list(model.parameters()) if isinstance(model, torch.nn.Module) else []
    return params[0].device if params else torch.device("cpu")


@torch.no_grad()
def predict_dataset(model, dataset, *, batch_size: int = 32, method: str = "shift", flip_test: bool = True,
                    device=None, progress: bool = True, backend: str = "auto", num_workers: int = 0) -> dict:
    """Run `model.predict` over the data set in order; numpy arrays keyed image_id (N,),
    keypoints (N, K, 2) image pixels, keypoint_scores (N, K), box_score (N,), center, scale (N, 2)."""
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


def _mpii_pckh(dataset, preds: dict, keypoint_set: KeypointSet) -> dict[str, float]:
    """PCKh@0.5 and @0.1 of ground-truth-box samples (all samples, before NMS, as MPII's protocol);
    {} when the boxes are detections (no ground truth per sample)."""
    samples = dataset.samples
    if not samples or all(float(np.sum(s["visible"])) == 0 for s in samples):
        return {}
    k = keypoint_set.num_keypoints
    sizes = np.full(len(samples), np.nan)
    for i, s in enumerate(samples):
        # The sample's annotation: same image, same labelled keypoints (the data set zeroes the rest).
        for ann in dataset.coco.imgToAnns.get(s["image_id"], []):
            kpts = np.asarray(ann.get("keypoints", [0] * 3 * k), dtype=np.float32).reshape(k, 3)
            vis = (kpts[:, 2] > 0).astype(np.float32)
            if np.array_equal(vis, s["visible"]) and np.allclose(kpts[:, :2] * vis[:, None], s["keypoints"]):
                sizes[i] = head_sizes([ann], keypoint_set)[0]
                break
    gt = np.stack([s["keypoints"] for s in samples])
    visible = np.stack([s["visible"] for s in samples])
    at_05 = pckh(preds["keypoints"], gt, visible, sizes, threshold=0.5, keypoint_set=keypoint_set)
    at_01 = pckh(preds["keypoints"], gt, visible, sizes, threshold=0.1, keypoint_set=keypoint_set)
    groups = ("Head", "Shoulder", "Elbow", "Wrist", "Hip", "Knee", "Ankle")
    return {"PCKh": at_05["PCKh"], "PCKh@0.1": at_01["PCKh"], **{g: at_05[g] for g in groups if g in at_05}}


def evaluate(model, dataset, *, batch_size: int = 32, method: str = "shift", flip_test: bool = True, device=None,
             out_dir=None, progress: bool = True, backend: str = "auto", num_workers: int = 0) -> dict[str, float]:
    """Evaluate a top-down model on a `TopDownCocoDataset` (train=False); see the module docstring.

    Args:
        model: anything with `predict(images, *, flip_test, method, center, scale, backend)` returning
            (keypoints (B, K, 2) in image pixels, scores (B, K)), e.g. `TopDownPoseModel`.
        dataset: `TopDownCocoDataset` with ground-truth boxes or detections.
        method: decoder ("argmax" | "shift" | "dark" | "dark_udp").
        device: where to run; None keeps the model where it is (CPU for a model without parameters).
        out_dir: if given, `keypoints_results.json` (COCO results of the kept instances),
            `metrics.json` (the returned dict) and `metrics.md` are written there.
        num_workers: DataLoader workers for image loading.
    Returns {"AP", "AP50", "AP75", "APm", "APl", "AR", "AR50", "AR75", "ARm", "ARl"} as fractions
    (-1 where there is no ground truth in a size range), plus "PCKh", "PCKh@0.1" and the MPII joint
    groups for MPII data sets with ground-truth boxes.
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

    preds = predict_dataset(model, dataset, batch_size=batch_size, method=method, flip_test=flip_test,
                            device=device, progress=progress, backend=backend, num_workers=num_workers)
    keypoints, keypoint_scores = _finite(preds["keypoints"], preds["keypoint_scores"])
    scores = rescore(preds["box_score"], keypoint_scores)
    areas = np.prod(preds["scale"].astype(np.float64) * PIXEL_STD, axis=1)
    keep = nms_per_image(preds["image_id"], keypoints, scores, areas, kset.sigmas)
    results = keypoint_results(preds["image_id"][keep], keypoints[keep], keypoint_scores[keep], scores[keep])

    stats = coco_keypoint_eval(dataset.coco, results, kset.sigmas)
    if kset.name == "mpii":
        stats.update(_mpii_pckh(dataset, {"keypoints": keypoints}, kset))

    if out_dir is not None:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        (out / "keypoints_results.json").write_text(json.dumps(results))
        (out / "metrics.json").write_text(json.dumps(stats, indent=2) + "\n")
        title = (f"{kset.name} keypoints, {len(dataset)} boxes, {len(results)} after OKS-NMS, "
                 f"decoder {method}, flip test {'on' if flip_test else 'off'}")
        (out / "metrics.md").write_text(metrics_markdown(stats, title=title))
    return stats


__all__ = ["OKS_NMS_THRESHOLD", "STAT_NAMES", "VIS_THRESHOLD", "evaluate", "nms_per_image", "predict_dataset",
           "rescore"]
