"""Bottom-up test-time resize (the original's `BottomUpGetImgSize` + `BottomUpResizeAlign`, scale 1, no UDP).

A whole image of h x w pixels becomes the network input: the short side goes to `input_size` (512), the
long one to ceil(input_size * long / short / 64) * 64, so both are multiples of 64 (no square padding;
480 x 640 -> 512 x 704). The mapping back to the image is mmpose's center/scale (x200 convention):
center = (round(w / 2), round(h / 2)) (Python's round, half to even), and with W', H' the input's size,
scale = (w / 200, H' / W' * w / 200) when w < h, else (W' / H' * h / 200, h / 200). The image is warped
with that affine (bilinear, zero border, the centre to the input's centre), then ImageNet-normalised.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from ..codecs.conventions import PIXEL_STD
from .transforms import get_affine_transform, normalize_image

SIZE_MULTIPLE = 64


@dataclass(frozen=True)
class ResizedInput:
    """size (H', W') of the network input; center (2,) and scale (2,) float64 mapping it onto the image."""
    size: tuple[int, int]
    center: np.ndarray
    scale: np.ndarray


def _ceil_to_multiple(value: float) -> int:
    return int(math.ceil(value / SIZE_MULTIPLE)) * SIZE_MULTIPLE


def bottomup_test_size(height: int, width: int, input_size: int = 512) -> ResizedInput:
    """The input size, center and scale of an image of height x width pixels."""
    if height < 1 or width < 1:
        raise ValueError(f"image size must be positive, got {height}x{width}")
    short = _ceil_to_multiple(input_size)
    if width < height:
        resized_w, resized_h = short, _ceil_to_multiple(short / width * height)
        scale = (width / PIXEL_STD, resized_h / resized_w * width / PIXEL_STD)
    else:
        resized_h, resized_w = short, _ceil_to_multiple(short / height * width)
        scale = (resized_w / resized_h * height / PIXEL_STD, height / PIXEL_STD)
    center = np.array([round(width / 2.0), round(height / 2.0)], dtype=np.float64)
    return ResizedInput((resized_h, resized_w), center, np.array(scale, dtype=np.float64))


def bottomup_resize(image_rgb: np.ndarray, input_size: int = 512) -> tuple[np.ndarray, ResizedInput]:
    """The network input (3, H', W') float32 of a uint8 RGB image (h, w, 3), and its geometry."""
    if image_rgb.ndim != 3 or image_rgb.shape[2] != 3:
        raise ValueError(f"image must be (h, w, 3), got shape {image_rgb.shape}")
    resized = bottomup_test_size(image_rgb.shape[0], image_rgb.shape[1], input_size)
    trans = get_affine_transform(resized.center, resized.scale, 0.0, resized.size)
    warped = cv2.warpAffine(image_rgb, trans, (resized.size[1], resized.size[0]), flags=cv2.INTER_LINEAR)
    return normalize_image(warped), resized
