"""Training targets: one Gaussian heatmap per joint (mmpose 0.x TopDownGenerateTarget, stride 1).

Keypoints arrive in heatmap pixel coordinates (x, y). With tmp = 3 * sigma and
trunc = Python's `int` (truncation toward zero):

- "msra": mu = trunc(p + 0.5); window ul = trunc(mu - tmp), br = trunc(mu + tmp + 1);
  inside the window [ul, br) pixel px gets exp(-(px - c)^2 / (2 sigma^2)) with the window
  centre c = ul + (2 tmp + 1) // 2. For integer tmp, c = mu; a fractional tmp moves c off mu
  (mmpose's offset quirk, kept on purpose).
- "unbiased" (DARK): ul = p - tmp, br = p + tmp + 1 (floats, bounds test only); the Gaussian
  centred at the float position p over the whole map, no window.
- "udp": window and bounds as "msra"; centre c = ul + (2 tmp + 1) // 2 + (p - mu).

The weight is the visibility, set to 0 when the window lies wholly outside the map
(ul_x >= W or ul_y >= H or br_x < 0 or br_y < 0); a Gaussian is drawn only where the
weight is > 0.5. The 2-D map is the outer product of two per-axis profiles (1-D Gaussian
times the window mask), which is what a fused kernel computes per axis.
"""
from __future__ import annotations

import math
import numbers
from typing import Sequence

import torch
import torch.nn.functional as F

from .conventions import TARGET_METHODS


def check_target_inputs(keypoints: torch.Tensor, weights: torch.Tensor, size: Sequence[int], sigma: float,
                        method: str) -> tuple[int, int]:
    """Validate `encode_heatmaps` inputs; return (H, W)."""
    if method not in TARGET_METHODS:
        raise ValueError(f"encode_heatmaps: method must be one of {TARGET_METHODS}, got {method!r}")
    if keypoints.dim() != 3 or keypoints.shape[-1] != 2:
        raise ValueError(f"encode_heatmaps: keypoints must be (N, K, 2), got shape {tuple(keypoints.shape)}")
    if tuple(weights.shape) != tuple(keypoints.shape[:2]):
        raise ValueError(f"encode_heatmaps: weights must be (N, K) = {tuple(keypoints.shape[:2])}, "
                         f"got shape {tuple(weights.shape)}")
    if len(size) != 2 or any(int(s) != s or s < 1 for s in size):
        raise ValueError(f"encode_heatmaps: size must be (H, W) with positive ints, got {size!r}")
    is_number = isinstance(sigma, numbers.Real) and not isinstance(sigma, bool)
    if not (is_number and math.isfinite(sigma) and sigma > 0):
        raise ValueError(f"encode_heatmaps: sigma must be a positive finite number, got {sigma!r}")
    if keypoints.device != weights.device:
        raise ValueError("encode_heatmaps: keypoints and weights must be on the same device")
    return int(size[0]), int(size[1])


def _axis_profile(coord: torch.Tensor, length: int, sigma: float, method: str) -> tuple[torch.Tensor, torch.Tensor]:
    """One axis: the (N, K, length) float32 profile (Gaussian x window mask) and the (N, K) out-of-map flag.

    `coord` holds the keypoint coordinates on this axis in the bounds dtype (float64 where the
    device has it), so the truncations match Python's float arithmetic exactly.
    """
    tmp = 3.0 * sigma
    half = (2.0 * tmp + 1.0) // 2.0  # mmpose: size // 2 of a float size
    pixels = torch.arange(length, device=coord.device, dtype=torch.float32)
    if method == "unbiased":
        ul = coord - tmp
        br = coord + tmp + 1.0
        centre = coord
        inside = None
    else:
        mu = torch.trunc(coord + 0.5)
        ul = torch.trunc(mu - tmp)
        br = torch.trunc(mu + tmp + 1.0)
        centre = ul + half
        if method == "udp":
            centre = centre + (coord - mu)
        inside = (pixels >= ul.float()[..., None]) & (pixels < br.float()[..., None])
    outside = (ul >= length) | (br < 0)
    dist = pixels - centre.float()[..., None]
    profile = torch.exp(-(dist * dist) / (2.0 * sigma * sigma))
    if inside is not None:
        profile = profile * inside
    return profile, outside


def encode_heatmaps(keypoints: torch.Tensor, weights: torch.Tensor, size: Sequence[int], sigma: float, *,
                    method: str = "msra") -> tuple[torch.Tensor, torch.Tensor]:
    """Gaussian targets (N, K, H, W) float32 and effective weights (N, K) float32.

    keypoints: (N, K, 2) (x, y) in heatmap pixels; weights: (N, K) visibility; size: (H, W);
    sigma > 0 in heatmap pixels; method: "msra" | "unbiased" | "udp" (see the module docstring).
    Any float dtype and device; the maps are computed in float32.
    """
    height, width = check_target_inputs(keypoints, weights, size, sigma, method)
    bounds_dtype = torch.float32 if keypoints.device.type == "mps" else torch.float64
    coords = keypoints.detach().to(bounds_dtype)
    gx, out_x = _axis_profile(coords[..., 0], width, float(sigma), method)
    gy, out_y = _axis_profile(coords[..., 1], height, float(sigma), method)
    weight = weights.detach().to(torch.float32)
    weight = torch.where(out_x | out_y, torch.zeros_like(weight), weight)
    draw = (weight > 0.5).to(torch.float32)
    heatmaps = (gy * draw[..., None])[..., :, None] * gx[..., None, :]
    return heatmaps, weight


def pooled_target(target: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
    """The lower-resolution target of one output: adaptive average pooling to size (H, W)."""
    return F.adaptive_avg_pool2d(target, tuple(size))
