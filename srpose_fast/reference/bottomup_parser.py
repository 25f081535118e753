"""The original's bottom-up test time as it runs: mmpose 0.x `HeatmapParser` with its per-joint loops.

The benchmark baseline of `codecs.bottomup_decode` and a second implementation to test it against. Where
the two share a step, the project's function is called (the maps' flip merge and resize, the grouping, the
person score and the final transform); the parser's own steps are written as the original runs them:
- top-k: torch.topk on the max-pool-NMS'd maps (its order of equal values is unspecified; the fast path
  takes the lowest flat index first; only values above the detection threshold reach the grouping);
- adjust: a Python loop over people and joints reading single heatmap elements;
- refine: per person, numpy over every joint's whole map (argmax of h - round(||tag - mean tag||)).
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from ..codecs.bottomup_decode import BottomUpPoses, person_scores, to_image
from ..codecs.bottomup_maps import merge_heatmaps, merge_tags
from ..codecs.grouping import match_by_tag


def top_k(heatmaps: torch.Tensor, tags: torch.Tensor, *, nms_kernel: int, nms_padding: int, k: int):
    """tag_k (N, K, k, L), loc_k (N, K, k, 2) (x, y), val_k (N, K, k) as numpy, from torch maps."""
    pooled = F.max_pool2d(heatmaps, nms_kernel, 1, nms_padding)
    suppressed = heatmaps * torch.eq(pooled, heatmaps).float()
    n, joints, height, width = suppressed.shape
    val_k, index = suppressed.view(n, joints, -1).topk(k, dim=2)
    flat_tags = tags.view(n, joints, height * width, -1)
    tag_k = torch.stack([torch.gather(flat_tags[..., i], 2, index) for i in range(flat_tags.shape[3])], dim=3)
    loc_k = torch.stack((index % width, index // width), dim=3)
    return tag_k.cpu().numpy(), loc_k.cpu().numpy(), val_k.cpu().numpy()


def adjust(people: np.ndarray, heatmaps: torch.Tensor) -> np.ndarray:
    """The quarter-pixel shift of every grouped joint, one element at a time; heatmaps (K, H, W)."""
    _, height, width = heatmaps.shape
    for person in people:
        for joint_id, joint in enumerate(person):
            if joint[2] > 0:
                x, y = joint[0:2]
                xx, yy = int(x), int(y)
                tmp = heatmaps[joint_id]
                y = y + 0.25 if tmp[min(height - 1, yy + 1), xx] > tmp[max(0, yy - 1), xx] else y - 0.25
                x = x + 0.25 if tmp[yy, min(width - 1, xx + 1)] > tmp[yy, max(0, xx - 1)] else x - 0.25
                person[joint_id, 0:2] = (x + 0.5, y + 0.5)
    return people


def refine(heatmap: np.ndarray, tag: np.ndarray, keypoints: np.ndarray) -> np.ndarray:
    """One person's missing joints from heatmap (K, H, W) and tag (K, H, W, L) numpy maps."""
    _, height, width = heatmap.shape
    tags = []
    for i in range(len(keypoints)):
        if keypoints[i, 2] > 0:
            x, y = keypoints[i][:2].astype(int)
            tags.append(tag[i, np.clip(y, 0, height - 1), np.clip(x, 0, width - 1)])
    prev_tag = np.mean(tags, axis=0)
    found = []
    for _heatmap, _tag in zip(heatmap, tag):
        distance_tag = (((_tag - prev_tag[None, None, :]) ** 2).sum(axis=2) ** 0.5)
        norm_heatmap = _heatmap - np.round(distance_tag)
        y, x = np.unravel_index(np.argmax(norm_heatmap), _heatmap.shape)
        xx, yy = x, y
        val = _heatmap[y, x]
        x, y = x + 0.5, y + 0.5
        x += 0.25 if _heatmap[yy, min(width - 1, xx + 1)] > _heatmap[yy, max(0, xx - 1)] else -0.25
        y += 0.25 if _heatmap[min(height - 1, yy + 1), xx] > _heatmap[max(0, yy - 1), xx] else -0.25
        found.append((x, y, val))
    found = np.array(found)
    for i in range(len(keypoints)):
        if found[i, 2] > 0 and keypoints[i, 2] == 0:
            keypoints[i, :3] = found[i, :3]
    return keypoints


def reference_decode_bottomup(outputs: torch.Tensor, flipped_outputs: torch.Tensor | None, *, codec, input_size,
                              center, scale) -> BottomUpPoses:
    """One image (batch 1) from the network's eval outputs, as the original's forward_test runs it."""
    if outputs.shape[0] != 1:
        raise ValueError(f"the reference decodes one image at a time (batch 1), got a batch of {outputs.shape[0]}")
    size = (int(input_size[0]), int(input_size[1]))
    with torch.no_grad():
        heatmaps = merge_heatmaps(outputs, flipped_outputs, codec.flip_indices, size)
        tags = merge_tags(outputs, flipped_outputs, codec.flip_indices, size)
        tag_k, loc_k, val_k = top_k(heatmaps, tags, nms_kernel=codec.nms_kernel, nms_padding=codec.nms_padding,
                                    k=codec.max_people)
    people = match_by_tag(tag_k[0], loc_k[0], val_k[0], joint_order=codec.joint_order,
                          detection_threshold=codec.detection_threshold, tag_threshold=codec.tag_threshold,
                          max_people=codec.max_people)
    if codec.adjust:
        people = adjust(people, heatmaps[0])
    scores = person_scores(people)
    if codec.refine:
        heatmap_numpy, tag_numpy = heatmaps[0].cpu().numpy(), tags[0].cpu().numpy()
        for i in range(len(people)):
            people[i] = refine(heatmap_numpy, tag_numpy, people[i])
    return BottomUpPoses(keypoints=to_image(people[..., :2], center, scale, size),
                         keypoint_scores=people[..., 2].copy(), scores=scores, tags=people[..., 3:].copy())
