"""Batching of `TopDownCocoDataset` samples for the fused loss (no target heatmaps are built)."""
from __future__ import annotations

import warnings

import torch

from ..codecs.heatmap_codec import rescale_keypoints

_FLOAT_KEYS = ("box_score", "area")
_INT_KEYS = ("image_id", "index")


def collate_pose(batch: list[dict], *, heatmap_size=None) -> dict:
    """Stack a list of samples into a batch.

    Tensors are stacked: image (B, 3, H, W), keypoints (B, K, 2) in input pixels, target_weight (B, K),
    visible (B, K), center (B, 2), scale (B, 2). image_id and index become int64 (B,), box_score
    and area float32 (B,). The model's codec converts the keypoints for the loss (`HeatmapCodec.encode`).

    `heatmap_size` (H, W) is deprecated: it converts the keypoints to the pixels of a heatmap that size
    (the input size read from the images), as the loss took them before the codec did.
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
        warnings.warn("collate_pose(heatmap_size=) is deprecated: keep the keypoints in input pixels and let the "
                      "model's codec convert them (model.loss(outputs, batch))", DeprecationWarning, stacklevel=2)
        keypoints = out["keypoints"]
        out["keypoints"] = rescale_keypoints(keypoints, out["image"].shape[-2:], heatmap_size).to(keypoints.dtype)
    return out
