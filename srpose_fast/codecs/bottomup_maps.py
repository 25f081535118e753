"""Bottom-up test time on the maps (torch reference): flip test, project to the input, NMS, top-k.

The original's steps (mmpose 0.x `get_multi_stage_outputs`, `aggregate_results`, `HeatmapParser.top_k`),
with batch N and a single scale:

1. The network's eval outputs (N, 2K, h, w) hold K heatmaps then K tags. The flipped image's outputs are
   mirrored back on the width axis (no shift) and their heatmap and tag channels reordered by flip_indices.
2. project2image: each of the four (plain and flipped heatmaps, plain and flipped tags) is resized to the
   network input's size (H, W) with bilinear interpolation (align_corners False); a map already of that
   size is left as it is (the resize would be the identity).
3. Heatmaps (h + f) / 2; tags stacked on a last axis: (N, K, H, W, L), L = 2 with flip (plain first), 1 without.
4. NMS: a pixel keeps its value where it equals the max-pool of its (2p + 1)^2 window (-inf outside the
   map), else 0.
5. Top-k per joint map of the NMS'd heatmaps: values (N, K, k) in descending order, their (x, y) and the
   tags there (N, K, k, L). Ties: the lowest flat index (y * W + x) first. The original's torch.topk leaves
   the order of equal values unspecified (on the CPU it is neither ascending nor descending). Only candidates
   above the detection threshold reach the grouping, so the many zero-valued ties never matter; equal
   positive candidates do, and they occur where a resized (stride-4) map repeats its border rows or
   columns: there the original's order, and so its grouping, is whatever torch.topk returned.

Every backend of `ops.bottomup_topk` is tested against these functions.
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F


def check_outputs(outputs: torch.Tensor, flipped_outputs: torch.Tensor | None, num_joints: int) -> None:
    if outputs.dim() != 4 or outputs.shape[1] != 2 * num_joints:
        raise ValueError(f"bottom-up outputs must be (N, 2K, h, w) = (N, {2 * num_joints}, h, w) "
                         f"(K heatmaps then K tags), got shape {tuple(outputs.shape)}")
    if flipped_outputs is not None:
        if tuple(flipped_outputs.shape) != tuple(outputs.shape):
            raise ValueError(f"flipped outputs have shape {tuple(flipped_outputs.shape)}, "
                             f"the outputs {tuple(outputs.shape)}")
        if flipped_outputs.device != outputs.device:
            raise ValueError("outputs and flipped outputs must be on the same device")


def project(maps: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
    """project2image: bilinear resize (align_corners False) to size (H, W); identity at that size."""
    if tuple(maps.shape[-2:]) == tuple(size):
        return maps
    return F.interpolate(maps, size=tuple(size), mode="bilinear", align_corners=False)


def flip_back(flipped_maps: torch.Tensor, flip_indices: Sequence[int]) -> torch.Tensor:
    """Maps (N, K, h, w) of the mirrored image in the plain image's frame: channels by flip_indices, mirrored."""
    index = torch.as_tensor(list(flip_indices), dtype=torch.long, device=flipped_maps.device)
    return flipped_maps.flip(3).index_select(1, index)


def flip_back_outputs(flipped_outputs: torch.Tensor, flip_indices: Sequence[int]) -> torch.Tensor:
    """All 2K channels of the mirrored image's outputs, flipped back (heatmaps and tags alike), float32."""
    k = len(flip_indices)
    return flip_back(flipped_outputs.float(), list(flip_indices) + [k + i for i in flip_indices])


def merge_heatmaps(outputs: torch.Tensor, flipped_outputs: torch.Tensor | None, flip_indices: Sequence[int],
                   input_size: Sequence[int]) -> torch.Tensor:
    """Heatmaps (N, K, H, W) float32 at the input size (H, W): steps 1-3."""
    k = len(flip_indices)
    check_outputs(outputs, flipped_outputs, k)
    plain = project(outputs[:, :k].float(), input_size)
    if flipped_outputs is None:
        return plain
    return (plain + project(flip_back(flipped_outputs[:, :k].float(), flip_indices), input_size)) / 2.0


def tag_maps(outputs: torch.Tensor, flipped_outputs: torch.Tensor | None, flip_indices: Sequence[int],
             input_size: Sequence[int]) -> list[torch.Tensor]:
    """The L tag maps, each (N, K, H, W) float32 at the input size (H, W): the plain one, then with flip the
    flipped-back one."""
    k = len(flip_indices)
    check_outputs(outputs, flipped_outputs, k)
    tags = [project(outputs[:, k:].float(), input_size)]
    if flipped_outputs is not None:
        tags.append(project(flip_back(flipped_outputs[:, k:].float(), flip_indices), input_size))
    return tags


def merge_tags(outputs: torch.Tensor, flipped_outputs: torch.Tensor | None, flip_indices: Sequence[int],
               input_size: Sequence[int]) -> torch.Tensor:
    """Tags (N, K, H, W, L) float32 at the input size (H, W), L = 2 with flip (plain first), else 1."""
    return torch.stack(tag_maps(outputs, flipped_outputs, flip_indices, input_size), dim=-1)


def _window_max(maps: torch.Tensor, padding: int, dim: int) -> torch.Tensor:
    """The maximum over the 2 padding + 1 positions around each one along `dim` (-inf beyond the map)."""
    size = maps.shape[dim]
    pad = [0, 0, 0, 0]
    pad[0 if dim == 3 else 2: 2 if dim == 3 else 4] = [padding, padding]
    padded = F.pad(maps, pad, value=float("-inf"))
    out = maps.clone()
    for offset in range(2 * padding + 1):
        if offset != padding:
            torch.maximum(out, padded.narrow(dim, offset, size), out=out)
    return out


def nms(heatmaps: torch.Tensor, kernel: int, padding: int) -> torch.Tensor:
    """Each value where it is the maximum of its window (kernel = 2 padding + 1), 0 elsewhere.

    The window's maximum (max-pool with -inf padding) is taken along rows, then columns: the same maxima
    as one square max-pool, with 2k comparisons a pixel instead of k^2."""
    if kernel != 2 * padding + 1:
        raise ValueError(f"nms: kernel must be 2 * padding + 1, got {kernel} and {padding}")
    pooled = _window_max(_window_max(heatmaps, padding, 3), padding, 2)
    return heatmaps * (pooled == heatmaps).float()


def top_k(nms_heatmaps: torch.Tensor, tags: Sequence[torch.Tensor], k: int
          ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """values (N, K, k) descending (ties: lowest flat index first), locations (N, K, k, 2) int64 (x, y) and
    tags (N, K, k, L) of the k largest values of each map; `tags`: the L tag maps (N, K, H, W).

    torch.topk gives the k-th largest value v; the candidates are every value above v and, of those equal to
    v, the first in flat order; then they are sorted by value (stable, so lowest index first on ties)."""
    n, joints, height, width = nms_heatmaps.shape
    if k > height * width:
        raise ValueError(f"top-k of {k} candidates needs maps of at least {k} pixels, got {height}x{width}")
    flat = nms_heatmaps.reshape(n * joints, height * width)
    kth = flat.topk(k, dim=1).values[:, -1:]
    equal = flat == kth
    chosen = (flat > kth) | (equal & (equal.cumsum(dim=1) <= k - (flat > kth).sum(dim=1, keepdim=True)))
    index = chosen.nonzero()[:, 1]  # exactly k a map, in flat order, unless a map holds NaN
    if index.numel() != n * joints * k:
        raise ValueError("bottom-up decoding: the heatmaps hold NaN (maps must be finite)")
    index = index.view(n * joints, k)
    values, order = torch.sort(flat.gather(1, index), dim=1, descending=True, stable=True)
    index = index.gather(1, order)
    tag_k = torch.stack([t.reshape(n * joints, height * width).gather(1, index) for t in tags], dim=-1)
    locations = torch.stack((index % width, torch.div(index, width, rounding_mode="floor")), dim=-1)
    return (values.view(n, joints, k), locations.view(n, joints, k, 2),
            tag_k.view(n, joints, k, len(tags)))


def bottomup_topk_reference(outputs: torch.Tensor, flipped_outputs: torch.Tensor | None, flip_indices: Sequence[int],
                            input_size: Sequence[int], nms_kernel: int, nms_padding: int, k: int):
    """Steps 1-5: (heatmaps (N, K, H, W), values (N, K, k), locations (N, K, k, 2) int64, tags (N, K, k, L))."""
    heatmaps = merge_heatmaps(outputs, flipped_outputs, flip_indices, input_size)
    tags = tag_maps(outputs, flipped_outputs, flip_indices, input_size)
    values, locations, tag_k = top_k(nms(heatmaps, nms_kernel, nms_padding), tags, k)
    return heatmaps, values, locations, tag_k
