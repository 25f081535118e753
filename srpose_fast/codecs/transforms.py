"""Between heatmap pixels and image pixels (top-down crops), float32 torch.

The centre/scale form is mmpose's: `scale` is the crop size in units of 200 px, so the crop is
s = scale * 200 pixels wide/high, centred on `center`. A heatmap of size (H, W) covers it with
steps s_w / W, s_h / H (UDP: s_w / (W - 1), s_h / (H - 1)):

    x_img = x * (s_w / W) + c_x - s_w / 2        y_img likewise

The box form maps the crop box (x, y, w, h) itself onto the heatmap: x_img = b_x + x * b_w / W.
"""
from __future__ import annotations

from typing import Sequence

import torch

from .conventions import PIXEL_STD


def _check_pairs(name: str, value: torch.Tensor, n: int) -> None:
    if tuple(value.shape) != (n, 2):
        raise ValueError(f"{name} must be (N, 2) = ({n}, 2), got shape {tuple(value.shape)}")


def _cells(heatmap_size: Sequence[int], udp: bool, device: torch.device) -> torch.Tensor:
    """The (x, y) divisors of the crop size: (W, H), or (W - 1, H - 1) for UDP."""
    height, width = int(heatmap_size[0]), int(heatmap_size[1])
    if udp and (width < 2 or height < 2):
        raise ValueError(f"udp transforms need a heatmap of at least 2x2, got (H, W) = ({height}, {width})")
    if width < 1 or height < 1:
        raise ValueError(f"heatmap_size must be positive (H, W), got {tuple(heatmap_size)}")
    return torch.tensor([width - 1.0, height - 1.0] if udp else [float(width), float(height)], device=device)


def _steps(scale: torch.Tensor, heatmap_size: Sequence[int], udp: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Crop size in pixels (N, 2) and image pixels per heatmap pixel (N, 2)."""
    crop = scale.float() * PIXEL_STD
    return crop, crop / _cells(heatmap_size, udp, scale.device)


def heatmap_to_image(keypoints: torch.Tensor, center: torch.Tensor, scale: torch.Tensor,
                     heatmap_size: Sequence[int], udp: bool = False) -> torch.Tensor:
    """Heatmap-pixel keypoints (N, K, 2) to image pixels; center, scale (N, 2); heatmap_size (H, W)."""
    n = keypoints.shape[0]
    _check_pairs("center", center, n)
    _check_pairs("scale", scale, n)
    crop, step = _steps(scale, heatmap_size, udp)
    return keypoints.float() * step[:, None, :] + (center.float() - crop * 0.5)[:, None, :]


def image_to_heatmap(keypoints: torch.Tensor, center: torch.Tensor, scale: torch.Tensor,
                     heatmap_size: Sequence[int], udp: bool = False) -> torch.Tensor:
    """The inverse of `heatmap_to_image`."""
    n = keypoints.shape[0]
    _check_pairs("center", center, n)
    _check_pairs("scale", scale, n)
    crop, step = _steps(scale, heatmap_size, udp)
    return (keypoints.float() - (center.float() - crop * 0.5)[:, None, :]) / step[:, None, :]


def box_to_center_scale(boxes_xywh: torch.Tensor, aspect_ratio: float, padding: float = 1.25
                        ) -> tuple[torch.Tensor, torch.Tensor]:
    """mmpose's _xywh2cs at test time: center (N, 2) and scale (N, 2) of boxes (N, 4) (x, y, w, h).

    The box is widened in w or h to the aspect ratio w / h (the input's width / height), then
    scale = (w, h) / PIXEL_STD * padding.
    """
    if boxes_xywh.dim() != 2 or boxes_xywh.shape[-1] != 4:
        raise ValueError(f"boxes_xywh must be (N, 4), got shape {tuple(boxes_xywh.shape)}")
    if not aspect_ratio > 0:
        raise ValueError(f"aspect_ratio must be > 0, got {aspect_ratio!r}")
    x, y, w, h = boxes_xywh.float().unbind(-1)
    center = torch.stack((x + w * 0.5, y + h * 0.5), dim=-1)
    w, h = (torch.where(w > aspect_ratio * h, w, h * aspect_ratio),
            torch.where(w > aspect_ratio * h, w / aspect_ratio, h))
    scale = torch.stack((w, h), dim=-1) / PIXEL_STD * padding
    return center, scale


def heatmap_to_box(keypoints: torch.Tensor, boxes_xywh: torch.Tensor, heatmap_size: Sequence[int],
                   udp: bool = False) -> torch.Tensor:
    """Heatmap-pixel keypoints (N, K, 2) to image pixels when the crop is exactly the box (N, 4)."""
    n = keypoints.shape[0]
    if tuple(boxes_xywh.shape) != (n, 4):
        raise ValueError(f"boxes_xywh must be (N, 4) = ({n}, 4), got shape {tuple(boxes_xywh.shape)}")
    boxes = boxes_xywh.float()
    step = boxes[:, 2:] / _cells(heatmap_size, udp, boxes.device)
    return keypoints.float() * step[:, None, :] + boxes[:, None, :2]
