"""The heatmap conventions every layer shares, each defined once; no torch, so deploy/ and cli/ import it.

- `PIXEL_STD`: mmpose's unit of `scale`: a crop of scale s is s * 200 pixels wide/high.
- `TARGET_METHODS`: how a keypoint becomes a Gaussian target (see `codecs.targets`).
- `DECODE_METHODS`: how a heatmap becomes a keypoint (see `codecs.decoders`).
- `SRPOSE_STAGE_WEIGHTS`: the loss weight of SRPose's five train-mode outputs (SPEC.md section 2).
- `dark_blur_sigma`: the Gaussian sigma of DARK's blur for a kernel size.
- `sigma_for_height`: target sigmas are set for 256-pixel-high images and scale with the image.
"""
from __future__ import annotations

PIXEL_STD = 200.0
TARGET_METHODS = ("msra", "unbiased", "udp")
DECODE_METHODS = ("argmax", "shift", "dark", "dark_udp")
# 1e-4 for the LR heatmap (8x6), 1 for each of the four SR outputs.
SRPOSE_STAGE_WEIGHTS = (1e-4, 1.0, 1.0, 1.0, 1.0)
SIGMA_REFERENCE_HEIGHT = 256


def dark_blur_sigma(kernel: int) -> float:
    """OpenCV's sigma for a Gaussian of odd size k given sigma = 0: 0.3 * ((k - 1) / 2 - 1) + 0.8.

    (OpenCV's fixed tables for k <= 7 are not used.) The Triton, CUDA and C++ decoders compute the same.
    """
    return 0.3 * ((kernel - 1) * 0.5 - 1) + 0.8


def sigma_for_height(sigma_at_256: float, height: int) -> float:
    """The target sigma for an image `height` pixels high (a crop at a fixed output stride, or a heatmap
    itself), given the sigma used at a height of 256: targets cover the same share of the body at every size."""
    return sigma_at_256 * height / SIGMA_REFERENCE_HEIGHT
