"""The SRPose pipeline as the original runs it: the baseline every benchmark compares against.

Training: targets generated per sample in numpy on the CPU (as the data loader does), stacked,
copied to the device, and the per-joint loss loop. Inference: the plain and the flipped image in
two separate forward passes, flip-back on the device, then heatmaps and 16x16 max-pool indices
copied to the CPU and decoded in a Python loop. It reuses this project's model code, so only
the pipeline differs from the fast path.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from .decode import srpose_decode
from .loss import srpose_losses
from .targets import generate_target


def make_targets(keypoints: np.ndarray, visible: np.ndarray, heatmap_size: tuple[int, int], sigma: float,
                 method: str = "msra") -> tuple[np.ndarray, np.ndarray]:
    """Per-sample numpy targets for a batch: (N, K, H, W) and target weights (N, K, 1).

    keypoints (N, K, 2) in heatmap pixels; heatmap_size is (W, H) as mmpose writes it.
    """
    pairs = [generate_target(kp, vis, heatmap_size, sigma, method) for kp, vis in zip(keypoints, visible)]
    return np.stack([t for t, _ in pairs]), np.stack([w for _, w in pairs])


def reference_train_step(model: torch.nn.Module, optimizer: torch.optim.Optimizer, images: torch.Tensor,
                         keypoints: np.ndarray, visible: np.ndarray, sigma: float = 8.0) -> float:
    """One SRPose training step; keypoints (N, K, 2) numpy in the largest output's pixels."""
    model.train()
    outputs = model(images)
    height, width = outputs[-1].shape[-2:]
    target, target_weight = make_targets(keypoints, visible, (width, height), sigma)
    target = torch.from_numpy(target).to(images.device)
    target_weight = torch.from_numpy(target_weight).to(images.device)
    loss = sum(srpose_losses(outputs, target, target_weight).values())
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return loss.item()


def flip_back(heatmaps: torch.Tensor, flip_pairs: Sequence[tuple[int, int]], shift: bool = True) -> torch.Tensor:
    """SRPose's on-device flip-back: swap left/right channels, mirror, shift one pixel right."""
    swapped = heatmaps.clone()
    for left, right in flip_pairs:
        swapped[:, left] = heatmaps[:, right]
        swapped[:, right] = heatmaps[:, left]
    mirrored = swapped.flip(3)
    if shift:
        mirrored[:, :, :, 1:] = mirrored[:, :, :, :-1].clone()
    return mirrored


def flip_pairs_of(flip_indices: Sequence[int]) -> list[tuple[int, int]]:
    return [(i, j) for i, j in enumerate(flip_indices) if i < j]


@torch.no_grad()
def reference_inference(model: torch.nn.Module, images: torch.Tensor, center: np.ndarray, scale: np.ndarray,
                        flip_indices: Sequence[int] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Top-down inference as SRPose runs it; returns (keypoints (N, K, 2), scores (N, K)) as numpy."""
    model.eval()
    heatmaps = model(images)
    if flip_indices is not None:
        flipped = model(images.flip(3))
        heatmaps = (heatmaps + flip_back(flipped, flip_pairs_of(flip_indices))) * 0.5
    preds, maxvals = srpose_decode(heatmaps, center, scale)
    return preds, maxvals[..., 0]
