"""Bottom-up decoding: the network's eval outputs to people in image coordinates (SPEC.md section 6).

`decode_bottomup` runs, per image:
1. flip merge, project2image, NMS and top-k (`ops.bottomup_topk`, on the outputs' device; torch reference in
   `codecs.bottomup_maps`);
2. grouping by tags on the host (`codecs.grouping.match_by_tag`);
3. `adjust`: each grouped joint (val > 0) moves 0.25 toward the higher of its two neighbours on each axis
   (-0.25 when they are equal; neighbours clamped into the map), y first, then x; then +0.5 on both;
4. person score = mean of the 17 joint values (after adjust, before refine; float32 numpy mean, as the
   original);
5. `refine`: each person's mean tag t over its grouped joints; for each joint it lacks, the argmax (first on
   ties) of h_k - round(||tag_k - t||_2) over the map, at (x, y) + 0.5 and +-0.25 toward the higher neighbour
   (x first, then y); the joint is filled with (x, y, h_k(x, y)) when that value is > 0;
6. back to the image: x_img = x (s_x / W) + c_x - s_x / 2 with s = scale * 200 and (W, H) the input size;
   computed in float32 with each float64 constant rounded to float32 first, as the original's numpy 1.x
   did (its float64 scalars did not widen float32 arrays).

Unlike the original, the keypoint scores are the joints' heatmap values: its final transform starts from
`np.ones_like` and writes every keypoint score (and tag) as 1.0. COCO's keypoint AP does not read keypoint
scores (COCOeval's OKS uses only x and y; tests/codecs/test_bottomup_decode.py checks it), so AP is the same.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch

from .bottomup_maps import tag_maps
from .conventions import PIXEL_STD
from .grouping import match_by_tag

# Pairs of (person, joint) maps refined at once: bounds the memory of the distance maps.
REFINE_CHUNK = 16


@dataclass
class BottomUpPoses:
    """The people of one image: keypoints (P, K, 2) float32 image pixels, keypoint_scores (P, K) float32
    (heatmap values; 0 for a joint no candidate or refinement filled), scores (P,) float32, tags (P, K, L)."""
    keypoints: np.ndarray
    keypoint_scores: np.ndarray
    scores: np.ndarray
    tags: np.ndarray

    def __len__(self) -> int:
        return len(self.scores)


def _neighbour_steps(heatmap: torch.Tensor, joint: torch.Tensor, x: torch.Tensor, y: torch.Tensor, axis: str):
    """+0.25 where the next pixel along `axis` (clamped) is higher than the previous one, else -0.25."""
    height, width = heatmap.shape[-2:]
    if axis == "x":
        after = heatmap[joint, y, (x + 1).clamp(max=width - 1)]
        before = heatmap[joint, y, (x - 1).clamp(min=0)]
    else:
        after = heatmap[joint, (y + 1).clamp(max=height - 1), x]
        before = heatmap[joint, (y - 1).clamp(min=0), x]
    return torch.where(after > before, 0.25, -0.25)


def adjust(people: np.ndarray, heatmaps: torch.Tensor) -> np.ndarray:
    """Step 3 on people (P, K, 3 + L) float32 with heatmaps (K, H, W) of their image; a new array."""
    out = people.copy()
    person, joint = np.nonzero(out[:, :, 2] > 0)
    if len(person) == 0:
        return out
    device = heatmaps.device
    xy = torch.from_numpy(out[person, joint, :2]).to(device)
    x, y = xy[:, 0].long(), xy[:, 1].long()
    joints = torch.from_numpy(joint).to(device)
    dy = _neighbour_steps(heatmaps, joints, x, y, "y")
    dx = _neighbour_steps(heatmaps, joints, x, y, "x")
    shifted = torch.stack((xy[:, 0] + dx, xy[:, 1] + dy), dim=1) + 0.5
    out[person, joint, :2] = shifted.cpu().numpy()
    return out


def person_scores(people: np.ndarray) -> np.ndarray:
    """Step 4: (P,) float32, each person's mean joint value, with numpy's float32 mean as the original."""
    return np.array([person[:, 2].mean() for person in people], dtype=np.float32)


def refine(people: np.ndarray, heatmaps: torch.Tensor, tags: Sequence[torch.Tensor]) -> np.ndarray:
    """Step 5 on people (P, K, 3 + L) with heatmaps (K, H, W) and the L tag maps (K, H, W) of their image; a new
    array.

    Only the missing (person, joint) pairs are computed (the original computes every joint and keeps the
    missing ones); the mean tag is taken from the grouped joints' tags, which are the tag maps' values at the
    joints' integer positions (what the original reads after adjust moved them by less than a pixel).
    """
    out = people.copy()
    found = out[:, :, 2] > 0
    person, joint = np.nonzero(out[:, :, 2] == 0)
    if len(person) == 0:
        return out
    means = np.stack([np.mean(p[f, 3:], axis=0) for p, f in zip(out, found)])  # (P, L) float32, numpy's mean
    device = heatmaps.device
    height, width = heatmaps.shape[-2:]
    mean_t = torch.from_numpy(means).to(device)
    filled = []
    for start in range(0, len(person), REFINE_CHUNK):
        p = torch.from_numpy(person[start:start + REFINE_CHUNK]).to(device)
        j = torch.from_numpy(joint[start:start + REFINE_CHUNK]).to(device)
        maps = heatmaps.index_select(0, j).float()
        distance2 = None
        for component, tag in enumerate(tags):
            diff = tag.index_select(0, j).float() - mean_t[p, component][:, None, None]
            distance2 = diff * diff if distance2 is None else distance2 + diff * diff
        score = maps - torch.round(torch.sqrt(distance2))
        index = score.flatten(1).argmax(dim=1)
        y, x = torch.div(index, width, rounding_mode="floor"), index % width
        rows = torch.arange(len(j), device=device)
        val = maps[rows, y, x]
        dx = _neighbour_steps(maps, rows, x, y, "x")
        dy = _neighbour_steps(maps, rows, x, y, "y")
        filled.append(torch.stack((x.float() + 0.5 + dx, y.float() + 0.5 + dy, val), dim=1))
    new = torch.cat(filled).cpu().numpy()
    keep = new[:, 2] > 0
    out[person[keep], joint[keep], :3] = new[keep]
    return out


def to_image(keypoints: np.ndarray, center, scale, input_size: Sequence[int]) -> np.ndarray:
    """Step 6: (P, K, 2) input pixels to image pixels; center, scale (2,); input_size (H, W)."""
    height, width = int(input_size[0]), int(input_size[1])
    size = np.asarray(scale, dtype=np.float64).reshape(2) * PIXEL_STD
    step = (size / np.array([width, height], dtype=np.float64)).astype(np.float32)
    origin_center = np.asarray(center, dtype=np.float64).reshape(2).astype(np.float32)
    half = (size * 0.5).astype(np.float32)
    return (np.asarray(keypoints, dtype=np.float32) * step + origin_center) - half


def _per_image(value, n: int, name: str) -> np.ndarray:
    array = np.asarray(value.detach().cpu() if isinstance(value, torch.Tensor) else value, dtype=np.float64)
    array = np.broadcast_to(array.reshape(-1, 2), (n, 2)) if array.size in (2, 2 * n) else None
    if array is None:
        raise ValueError(f"{name} must be (2,) or (N, 2) with N = {n}, got {np.shape(value)}")
    return array


def decode_bottomup(outputs: torch.Tensor, flipped_outputs: torch.Tensor | None = None, *, codec,
                    input_size: Sequence[int], center=None, scale=None, backend: str = "auto") -> list[BottomUpPoses]:
    """The people of each image of the batch.

    Args:
        outputs: the network's eval outputs (N, 2K, h, w), K heatmaps then K tags (any device).
        flipped_outputs: the outputs on the mirrored images (flip test), same shape; None without flip test.
        codec: an `AssociativeEmbedding` (thresholds, NMS, flip indices, adjust/refine).
        input_size: (H, W) of the network input; the maps are projected to it (project2image).
        center, scale: (2,) or (N, 2) in the x200 convention mapping the input onto the image (the test-time
            resize's); without them keypoints are in input pixels.
        backend: of the NMS/top-k op: "auto" | "torch" | "triton".
    """
    from ..ops.bottomup_topk import bottomup_topk

    size = (int(input_size[0]), int(input_size[1]))
    n = outputs.shape[0]
    if (center is None) != (scale is None):
        raise ValueError("decode_bottomup: give both center and scale, or neither")
    if center is None:
        center, scale = (size[1] / 2, size[0] / 2), (size[1] / PIXEL_STD, size[0] / PIXEL_STD)
    centers, scales = _per_image(center, n, "center"), _per_image(scale, n, "scale")
    with torch.no_grad():
        heatmaps, values, locations, tag_k = bottomup_topk(
            outputs.detach(), None if flipped_outputs is None else flipped_outputs.detach(),
            flip_indices=codec.flip_indices, input_size=size, nms_kernel=codec.nms_kernel,
            nms_padding=codec.nms_padding, top_k=codec.max_people, backend=backend)
        values, locations, tag_k = values.cpu().numpy(), locations.cpu().numpy(), tag_k.cpu().numpy()
        tags = None
        results = []
        for i in range(n):
            people = match_by_tag(tag_k[i], locations[i], values[i], joint_order=codec.joint_order,
                                  detection_threshold=codec.detection_threshold,
                                  tag_threshold=codec.tag_threshold, max_people=codec.max_people)
            if codec.adjust:
                people = adjust(people, heatmaps[i])
            scores = person_scores(people)
            if codec.refine and len(people):
                if tags is None:
                    tags = tag_maps(outputs, flipped_outputs, codec.flip_indices, size)
                people = refine(people, heatmaps[i], [t[i] for t in tags])
            results.append(BottomUpPoses(keypoints=to_image(people[..., :2], centers[i], scales[i], size),
                                         keypoint_scores=people[..., 2].copy(), scores=scores,
                                         tags=people[..., 3:].copy()))
    return results
