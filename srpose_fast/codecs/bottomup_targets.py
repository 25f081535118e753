"""Bottom-up (Associative Embedding) training targets: multi-person heatmaps, joint indices, loss mask.

The semantics are the original's (mmpose 0.x `HeatmapGenerator`, `JointsEncoder`,
`BottomUpCocoDataset._get_mask`; SPEC.md section 6):

- `joints` are (..., M, K, 3) = (x, y, v) in pixels of the heatmap, people padded with zeros. A joint
  counts when v > 0 and its truncated position (int(x), int(y), truncation toward zero, so
  -0.5 counts as 0) lies in the map.
- Heatmap of joint k: the maximum over people of an unnormalised Gaussian of sigma centred on the
  truncated position (peak 1), drawn in a window of 6 sigma + 3 pixels (51 x 51 for sigma 8):
  pixel p of an axis is inside when round(c - 3 sigma - 1) <= p < round(c + 3 sigma + 2) (rounding
  half to even, as numpy) and within the window's length.
- Joint indices (..., M, K, 2) int32: person m's counted joints packed first, in joint order, as
  (k * Hh * Wh + int(y) * Wh + int(x), 1); the rest (0, 0). The AE loss gathers its tags there.
- Loss mask: 0 on crowd regions and on non-crowd people with num_keypoints 0, 1 elsewhere.

The first two are torch functions (any device, batched over leading dimensions; numpy arrays are
accepted); the mask is numpy (pycocotools), made per image in the data set.
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import torch

MAX_PEOPLE = 30


def _as_joints(joints) -> torch.Tensor:
    joints = torch.as_tensor(joints)
    if joints.dim() < 2 or joints.shape[-1] != 3:
        raise ValueError(f"joints must be (..., M, K, 3) = (x, y, v), got shape {tuple(joints.shape)}")
    return joints if joints.is_floating_point() else joints.float()


def _size(heatmap_size) -> tuple[int, int]:
    if isinstance(heatmap_size, int):
        return heatmap_size, heatmap_size
    height, width = (int(v) for v in heatmap_size)
    if height < 1 or width < 1:
        raise ValueError(f"heatmap_size must be positive (H, W), got {heatmap_size}")
    return height, width


def counted_positions(joints: torch.Tensor, heatmap_size) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(x, y, counted): the truncated integer positions (int64) and whether each joint is a target."""
    joints = _as_joints(joints)
    height, width = _size(heatmap_size)
    x = torch.trunc(joints[..., 0]).long()
    y = torch.trunc(joints[..., 1]).long()
    counted = (joints[..., 2] > 0) & (x >= 0) & (x < width) & (y >= 0) & (y < height)
    return x, y, counted


def axis_windows(position: torch.Tensor, sigma: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(lo, hi, centre) float64 of the Gaussian window along one axis for integer positions: the pixels
    lo <= p < hi are drawn (the original's round(c - 3 sigma - 1) .. round(c + 3 sigma + 2), at most the
    window array's ceil(6 sigma + 3) pixels), with value exp(-(p - centre)^2 / 2 sigma^2)."""
    tmp = 3.0 * sigma
    c = position.double()
    lo = torch.round(c - tmp - 1.0)
    hi = torch.minimum(torch.round(c + tmp + 2.0), lo + math.ceil(6.0 * sigma + 3.0))
    return lo, hi, lo + (tmp + 1.0)


def gaussian_window(sigma: float, device=None) -> torch.Tensor:
    """The original's (L, L) float32 Gaussian table, L = ceil(6 sigma + 3), peak 1 at (3 sigma + 1, 3 sigma + 1):
    exp(-((x - x0)^2 + (y - y0)^2) / (2 sigma^2)) in float32, as numpy computes it."""
    x = torch.arange(math.ceil(6.0 * sigma + 3.0), dtype=torch.float32, device=device)
    d2 = (x - (3.0 * sigma + 1.0)) ** 2
    return torch.exp(-(d2[:, None] + d2[None, :]) / (2.0 * sigma * sigma))


def joint_windows(joints, heatmap_size, sigma: float) -> torch.Tensor:
    """(..., M, K, 6) float32 = (x_lo, x_hi, y_lo, y_hi, cx, cy): each joint's Gaussian window and centre
    in heatmap pixels, all zero (an empty window) for a joint that is not a target. What the fused
    loss kernels draw the targets from."""
    x, y, counted = counted_positions(joints, heatmap_size)
    x_lo, x_hi, cx = axis_windows(x, sigma)
    y_lo, y_hi, cy = axis_windows(y, sigma)
    windows = torch.stack([x_lo, x_hi, y_lo, y_hi, cx, cy], dim=-1).float()
    return torch.where(counted[..., None], windows, torch.zeros_like(windows))


def bottomup_heatmaps(joints, heatmap_size, sigma: float) -> torch.Tensor:
    """Multi-person heatmap targets (..., K, Hh, Wh) float32 of `joints` (..., M, K, 3).

    Each counted joint pastes the window table (`gaussian_window`) at its window's corner, clipped to the map,
    and the map keeps the maximum: the original's loop over people and joints, as one scatter.
    """
    joints = _as_joints(joints)
    if not sigma > 0:
        raise ValueError(f"sigma must be positive, got {sigma}")
    height, width = _size(heatmap_size)
    lead, num_joints = joints.shape[:-3], joints.shape[-2]
    x, y, counted = counted_positions(joints, (height, width))
    # Only the people some sample has: padding rows cost nothing.
    people = torch.nonzero(counted.reshape(-1, *counted.shape[-2:]).any(dim=(0, 2))).flatten()
    x, y, counted = (t.index_select(-2, people) for t in (x, y, counted))
    table = gaussian_window(sigma, joints.device)
    offsets = torch.arange(table.shape[0], device=joints.device)

    def axis(position, length):  # pixels (..., m, K, L) of each window and whether each is drawn
        lo, hi, _ = axis_windows(position, sigma)
        pix = lo.long()[..., None] + offsets
        return pix, (pix >= 0) & (pix < length) & (pix < hi.long()[..., None])

    px, in_x = axis(x, width)
    py, in_y = axis(y, height)
    drawn = in_y[..., :, None] & in_x[..., None, :] & counted[..., None, None]
    spare = height * width  # where the pixels that are not drawn go
    index = torch.where(drawn, py[..., :, None] * width + px[..., None, :], spare)
    index = index.movedim(-4, -3).reshape(*lead, num_joints, -1)  # (..., K, m * L * L)
    values = table.expand(*drawn.shape).movedim(-4, -3).reshape(index.shape)
    target = torch.zeros((*lead, num_joints, spare + 1), dtype=torch.float32, device=joints.device)
    target.scatter_reduce_(-1, index, values, reduce="amax")
    return target[..., :spare].reshape(*lead, num_joints, height, width)


def joint_indices(joints, heatmap_size, max_people: int = MAX_PEOPLE) -> torch.Tensor:
    """The AE loss's joint indices (..., max_people, K, 2) int32 of `joints` (..., P, K, 3).

    More than `max_people` people (padding rows included) raises IndexError, as the original does.
    """
    joints = _as_joints(joints)
    height, width = _size(heatmap_size)
    people, num_joints = joints.shape[-3], joints.shape[-2]
    if people > max_people:
        raise IndexError(f"{people} people in an image, more than max_people = {max_people}")
    x, y, counted = counted_positions(joints, (height, width))
    k = torch.arange(num_joints, device=joints.device)
    flat = k * (height * width) + y * width + x
    rank = torch.cumsum(counted.long(), dim=-1) - 1
    slot = torch.where(counted, rank, torch.full_like(rank, num_joints))  # uncounted go to a spare slot
    values = torch.stack([torch.where(counted, flat, 0), counted.long()], dim=-1)
    out = torch.zeros((*joints.shape[:-3], max_people, num_joints + 1, 2), dtype=torch.long, device=joints.device)
    out[..., :people, :, :].scatter_(-2, slot[..., None].expand(*slot.shape, 2), values)
    return out[..., :num_joints, :].to(torch.int32)


def ignore_mask(annotations: Sequence[dict], height: int, width: int) -> np.ndarray:
    """bool (height, width): False where the loss ignores pixels (crowd regions, people without keypoints)."""
    from pycocotools import mask as mask_utils

    covered = np.zeros((height, width), dtype=np.float32)
    for obj in annotations:
        segmentation = obj.get("segmentation")
        if not segmentation or not (obj.get("iscrowd", 0) or obj.get("num_keypoints", 0) == 0):
            continue
        if isinstance(segmentation, dict) and isinstance(segmentation.get("counts"), (str, bytes)):
            rles = [segmentation]  # compressed RLE: decoded as it is (as pycocotools' annToRLE)
        else:  # polygons, or COCO's uncompressed RLE of a crowd
            rles = mask_utils.frPyObjects(segmentation, height, width)
        for rle in rles if isinstance(rles, list) else [rles]:
            covered += mask_utils.decode(rle)
    return covered < 0.5
