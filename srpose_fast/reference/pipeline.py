"""The SRPose pipeline as the original runs it: the baseline every benchmark compares against.

Training: targets generated per sample in numpy on the CPU (in the data loader: `SRPoseTrainSamples`;
or for a batch already in memory: `reference_train_step`), stacked, copied to the device, and the
per-joint loss loop. Inference: the plain and the flipped image in
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
    return _loss_step(optimizer, outputs, torch.from_numpy(target), torch.from_numpy(target_weight))


def reference_train_step_on_targets(model: torch.nn.Module, optimizer: torch.optim.Optimizer, images: torch.Tensor,
                                    target: torch.Tensor, target_weight: torch.Tensor) -> float:
    """One SRPose training step on targets the data loader made (`SRPoseTrainSamples`)."""
    model.train()
    return _loss_step(optimizer, model(images), target, target_weight)


def _loss_step(optimizer: torch.optim.Optimizer, outputs, target: torch.Tensor, target_weight: torch.Tensor) -> float:
    """Targets copied to the device, the per-joint loss, the optimiser step, the loss to the host."""
    device = outputs[-1].device
    loss = sum(srpose_losses(outputs, target.to(device), target_weight.to(device)).values())
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return loss.item()


class SRPoseTrainSamples(torch.utils.data.Dataset):
    """SRPose's training samples: a crop of `dataset` (a `TopDownCocoDataset`) with its target heatmap made
    in numpy by the data loader, per sample, as the original's pipeline does.

    Returns (image, target (K, H, W), target_weight (K, 1)) at the data set's heatmap size.
    """

    def __init__(self, dataset, sigma: float = 8.0):
        self.dataset = dataset
        self.sigma = sigma

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int):
        sample = self.dataset[index]
        in_h, in_w = sample["image"].shape[-2:]
        hm_h, hm_w = self.dataset.heatmap_size
        keypoints = sample["keypoints"].numpy() * np.array([hm_w / in_w, hm_h / in_h])  # to heatmap pixels
        target, target_weight = generate_target(keypoints, sample["target_weight"].numpy(), (hm_w, hm_h), self.sigma)
        return sample["image"], torch.from_numpy(target), torch.from_numpy(target_weight)


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
