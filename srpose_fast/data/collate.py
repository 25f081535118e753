"""Batching of `TopDownCocoDataset` samples for the fused loss (no target heatmaps are built)."""
from __future__ import annotations

import torch

_FLOAT_KEYS = ("box_score", "area")
_INT_KEYS = ("image_id", "index")


def collate_pose(batch: list[dict], *, heatmap_size=None) -> dict:
    """Stack a list of samples into a batch.

    Tensors are stacked: image (B, 3, H, W), keypoints (B, K, 2), target_weight (B, K),
    visible (B, K), center (B, 2), scale (B, 2). image_id and index become int64 (B,), box_score
    and area float32 (B,).

    Keypoints are converted to heatmap coordinates, `keypoints * heatmap_size / input_size` per
    axis, with `heatmap_size` (H, W) and the input size read from the images; with
    `heatmap_size=None` (SRPose's largest output is the input resolution) they are unchanged.
    """
    if not batch:
        raise ValueError("collate_pose got an empty batch")
    out = {}
    for key in batch[0]:
        values = [sample[key] for sample in batch]
        if isinstance(values[0], torch.Tensor):
            out[key] = torch.stack(values)
        elif key in _INT_KEYS:
            out[key] = torch.tensor(values, dtype=torch.int64)
        elif key in _FLOAT_KEYS:
            out[key] = torch.tensor(values, dtype=torch.float32)
        else:
            out[key] = values
    if heatmap_size is not None:
        in_h, in_w = out["image"].shape[-2:]
        hm_h, hm_w = heatmap_size
        factor = torch.tensor([hm_w / in_w, hm_h / in_h], dtype=out["keypoints"].dtype)
        out["keypoints"] = out["keypoints"] * factor
    return out
