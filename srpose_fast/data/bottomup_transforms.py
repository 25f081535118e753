"""The bottom-up training augmentation of the original (mmpose 0.x `BottomUpRandomAffine` without UDP,
then `BottomUpRandomFlip`), SPEC.md section 6:

- centre (w/2, h/2) + (dx, dy), side s = min(h, w) * U(0.75, 1.5), rotation theta = U(-30, 30) degrees,
  dx, dy = randint(-40 s / 200, 40 s / 200) with both bounds truncated toward 0 and the high one excluded;
  drawn in that order (scale, rotation, dx, dy), then the flip's coin.
- for an output of r x r pixels: [[r/s, 0, r(0.5 - cx/s)], [0, r/s, r(0.5 - cy/s)]], then a rotation by
  phi = -theta about (r/2, r/2): the same square crop for the image (r = input size), and for the joints
  and the loss mask (r = heatmap size).
- image: cv2 bilinear, zero border; mask: uint8 * 255, bilinear, / 255 > 0.5; joints: the matrix.
- flip (p 0.5): mirror image and mask, joints reordered by the flip indices and x -> r - x - 1 (r the
  heatmap size, as the original writes it even where heatmap and input sizes differ).
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from ..codecs.conventions import PIXEL_STD

SCALE_RANGE = (0.75, 1.5)
MAX_ROTATION = 30.0
TRANSLATION_FACTOR = 40.0
FLIP_PROB = 0.5


@dataclass(frozen=True)
class AffineDraw:
    """One draw of the random affine: crop centre (x, y), square side in pixels, rotation in degrees."""
    center: tuple[float, float]
    side: float
    rotation: float


def draw_affine(rng: np.random.Generator, height: int, width: int) -> AffineDraw:
    """The original's random centre, side and rotation for an image of height x width."""
    side = min(height, width) * (rng.random() * (SCALE_RANGE[1] - SCALE_RANGE[0]) + SCALE_RANGE[0])
    rotation = (rng.random() * 2 - 1) * MAX_ROTATION
    bound = TRANSLATION_FACTOR * side / PIXEL_STD
    low, high = int(-bound), int(bound)  # numpy's randint truncates float bounds toward zero
    dx = int(rng.integers(low, high)) if high > low else 0
    dy = int(rng.integers(low, high)) if high > low else 0
    return AffineDraw((width / 2 + dx, height / 2 + dy), side, rotation)


def affine_matrix(draw: AffineDraw, size: int) -> np.ndarray:
    """The (2, 3) float64 matrix mapping image pixels to an output of size x size pixels."""
    cx, cy = draw.center
    s = float(draw.side)
    t = np.array([[size / s, 0.0, size * (0.5 - cx / s)],
                  [0.0, size / s, size * (0.5 - cy / s)],
                  [0.0, 0.0, 1.0]])
    if draw.rotation != 0:
        phi = np.deg2rad(-draw.rotation)
        cs, sn = np.cos(phi), np.sin(phi)
        rot = np.array([[cs, -sn, 0.0], [sn, cs, 0.0], [0.0, 0.0, 1.0]])
        to_centre = np.array([[1.0, 0.0, -size / 2], [0.0, 1.0, -size / 2], [0.0, 0.0, 1.0]])
        back = np.array([[1.0, 0.0, size / 2], [0.0, 1.0, size / 2], [0.0, 0.0, 1.0]])
        t = back @ rot @ to_centre @ t
    return t[:2]


def warp_points(points: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """(..., 2) points through a (2, 3) affine matrix."""
    return points @ matrix[:, :2].T + matrix[:, 2]


@dataclass
class BottomUpSample:
    image: np.ndarray  # uint8 (S, S, 3) RGB
    joints: np.ndarray  # float32 (P, K, 3) in heatmap pixels
    mask: np.ndarray  # float32 (R, R) of {0, 1}


def bottomup_train_transform(image: np.ndarray, joints: np.ndarray, mask: np.ndarray, *,
                             rng: np.random.Generator, input_size: int, heatmap_size: int,
                             flip_indices) -> BottomUpSample:
    """Random affine then random flip of one image (uint8 RGB), its people's joints (P, K, 3) in image
    pixels and its loss mask (bool, True where the loss counts, at the image's size)."""
    height, width = image.shape[:2]
    draw = draw_affine(rng, height, width)
    to_input = affine_matrix(draw, input_size)
    to_heatmap = affine_matrix(draw, heatmap_size)
    image = cv2.warpAffine(image, to_input, (input_size, input_size), flags=cv2.INTER_LINEAR)
    mask = cv2.warpAffine(mask.astype(np.uint8) * 255, to_heatmap, (heatmap_size, heatmap_size),
                          flags=cv2.INTER_LINEAR) / 255
    mask = (mask > 0.5).astype(np.float32)
    joints = joints.astype(np.float32).copy()
    joints[..., :2] = warp_points(joints[..., :2].astype(np.float64), to_heatmap)
    if rng.random() < FLIP_PROB:
        image = np.ascontiguousarray(image[:, ::-1])
        mask = np.ascontiguousarray(mask[:, ::-1])
        joints = joints[:, list(flip_indices)]
        joints[..., 0] = heatmap_size - joints[..., 0] - 1
    return BottomUpSample(image, joints, mask)
