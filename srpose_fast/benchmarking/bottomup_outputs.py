"""Synthetic bottom-up network outputs with people in them, for the decode benchmarks and tests.

A random initialised network's heatmaps hold no candidate above the detection threshold, so its grouping
does no work; these maps do: `people` people with a peak per visible joint and a tag per person.
"""
from __future__ import annotations

from typing import Sequence

import torch


def render_bottomup_outputs(positions: torch.Tensor, shown: torch.Tensor, flip_indices: Sequence[int], height: int,
                            width: int, *, amplitude: torch.Tensor | None = None, tag_noise: float = 0.05,
                            flip: bool = True, seed: int = 0):
    """(outputs, flipped_outputs or None), each (1, 2K, height, width) float32, of people whose joints are at
    `positions` (P, K, 2) (x, y) in map pixels where `shown` (P, K) is True.

    Joint k of person p is a Gaussian peak (sigma 2 px, height `amplitude` (P, K), 1 by default); the tag map of
    joint k holds, at each pixel, the tag of the person whose joint k is nearest (person p's tag is 2p) plus
    noise. The flipped outputs are what a network would see on the mirrored image: the plain outputs mirrored,
    channels swapped by flip_indices, with fresh noise on the peaks.
    """
    generator = torch.Generator().manual_seed(seed)
    people, joints = shown.shape
    amplitude = torch.ones(people, joints) if amplitude is None else amplitude
    yy, xx = torch.meshgrid(torch.arange(height, dtype=torch.float32), torch.arange(width, dtype=torch.float32),
                            indexing="ij")
    d2 = (xx - positions[..., 0, None, None]) ** 2 + (yy - positions[..., 1, None, None]) ** 2  # (P, K, H, W)
    peaks = torch.where(shown[..., None, None], amplitude[..., None, None] * torch.exp(-d2 / 8.0), 0.0)
    heatmaps = peaks.amax(dim=0) if people else torch.zeros(joints, height, width)
    if people:
        tags = 2.0 * torch.where(shown[..., None, None], d2, float("inf")).argmin(dim=0).float()  # (K, H, W)
    else:
        tags = torch.zeros(joints, height, width)
    tags = tags + tag_noise * torch.randn(joints, height, width, generator=generator)
    outputs = torch.cat((heatmaps, tags))[None].contiguous()
    if not flip:
        return outputs, None
    index = list(flip_indices) + [joints + i for i in flip_indices]
    flipped = outputs[:, index].flip(3).clone()
    flipped[:, :joints] += 0.01 * torch.rand(1, joints, height, width, generator=generator)
    return outputs, flipped


def synthetic_bottomup_outputs(people: int, flip_indices: Sequence[int], height: int, width: int, *, seed: int = 0,
                               visible: float = 0.8, flip: bool = True, margin: float = 0.0):
    """`render_bottomup_outputs` of `people` random people: each joint at a random position at least `margin`
    pixels inside the map with probability `visible`, peak heights 0.3-1."""
    generator = torch.Generator().manual_seed(seed)
    joints = len(flip_indices)
    span = torch.tensor([width - 1.0 - 2 * margin, height - 1.0 - 2 * margin])
    positions = margin + torch.rand(people, joints, 2, generator=generator) * span
    shown = torch.rand(people, joints, generator=generator) < visible
    amplitude = 0.3 + 0.7 * torch.rand(people, joints, generator=generator)
    return render_bottomup_outputs(positions, shown, flip_indices, height, width, amplitude=amplitude, flip=flip,
                                   seed=seed)
