"""Drawing poses on images (OpenCV, BGR uint8)."""
from __future__ import annotations

import cv2
import numpy as np

from ..keypoint_sets import KeypointSet

LEFT, RIGHT, CENTRE = (255, 128, 0), (0, 128, 255), (0, 220, 0)  # BGR: left blue-ish, right orange


def _side_colour(name: str) -> tuple[int, int, int]:
    if name.startswith(("left_", "l_")):
        return LEFT
    if name.startswith(("right_", "r_")):
        return RIGHT
    return CENTRE


def draw_pose(image_bgr: np.ndarray, keypoints: np.ndarray, scores: np.ndarray, keypoint_set: KeypointSet, *,
              threshold: float = 0.2, radius: int = 3, thickness: int = 2) -> np.ndarray:
    """A copy of the image with the keypoints whose score exceeds `threshold` and the limbs between them.
    Left keypoints are blue, right ones orange, the midline green."""
    canvas = image_bgr.copy()
    keypoints = np.asarray(keypoints, dtype=np.float64)
    shown = np.asarray(scores) > threshold
    shown &= np.isfinite(keypoints).all(axis=-1)
    points = [tuple(int(round(v)) for v in p) if ok else None for p, ok in zip(keypoints, shown)]
    for a, b in keypoint_set.skeleton:
        if points[a] is not None and points[b] is not None:
            cv2.line(canvas, points[a], points[b], _side_colour(keypoint_set.names[b]), thickness, cv2.LINE_AA)
    for name, point in zip(keypoint_set.names, points):
        if point is not None:
            cv2.circle(canvas, point, radius, _side_colour(name), -1, cv2.LINE_AA)
    return canvas
