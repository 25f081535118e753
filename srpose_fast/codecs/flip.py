"""Flip test: merge the heatmaps of the mirrored image back into the plain image's frame."""
from __future__ import annotations

from typing import Sequence

import torch


def check_flip_indices(flip_indices: Sequence[int] | torch.Tensor, num_keypoints: int) -> list[int]:
    """flip_indices as a list of ints, or a ValueError unless it is a permutation of 0..K-1."""
    indices = [int(i) for i in (flip_indices.tolist() if isinstance(flip_indices, torch.Tensor) else flip_indices)]
    if len(indices) != num_keypoints:
        raise ValueError(f"flip_indices has {len(indices)} entries, the heatmaps have K = {num_keypoints}")
    if sorted(indices) != list(range(num_keypoints)):
        raise ValueError(f"flip_indices must be a permutation of 0..{num_keypoints - 1}, got {indices}")
    return indices


def flip_merge(heatmaps: torch.Tensor, flipped: torch.Tensor, flip_indices: Sequence[int] | torch.Tensor,
               shift: bool = True) -> torch.Tensor:
    """(heatmaps + f) / 2 in float32, f = flipped[:, flip_indices] mirrored on the width axis.

    With `shift` (the non-UDP convention) f moves one pixel right: f[..., 1:] = f[..., :-1],
    column 0 keeping its own value. UDP-aligned maps are merged with shift=False.
    """
    if heatmaps.dim() != 4:
        raise ValueError(f"flip_merge: heatmaps must be (N, K, H, W), got shape {tuple(heatmaps.shape)}")
    if tuple(flipped.shape) != tuple(heatmaps.shape):
        raise ValueError(f"flip_merge: flipped has shape {tuple(flipped.shape)}, "
                         f"the heatmaps {tuple(heatmaps.shape)}")
    if flipped.device != heatmaps.device:
        raise ValueError("flip_merge: heatmaps and flipped must be on the same device")
    indices = check_flip_indices(flip_indices, heatmaps.shape[1])
    index = torch.tensor(indices, dtype=torch.long, device=heatmaps.device)
    back = flipped.float().index_select(1, index).flip(-1)
    if shift and back.shape[-1] > 1:
        back = torch.cat((back[..., :1], back[..., :-1]), dim=-1)
    return (heatmaps.float() + back) * 0.5
