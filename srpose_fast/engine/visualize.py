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
              threshold: float = 0.2, radius: int = 3, thickness: int = 2, skeleton: bool = True) -> np.ndarray:
    """A copy of the image with the keypoints whose score exceeds `threshold` and (with `skeleton`) the limbs
    between them. Left keypoints are blue, right ones orange, the midline green."""
    canvas = image_bgr.copy()
    keypoints = np.asarray(keypoints, dtype=np.float64)
    shown = np.asarray(scores) > threshold
    shown &= np.isfinite(keypoints).all(axis=-1)
    points = [tuple(int(round(v)) for v in p) if ok else None for p, ok in zip(keypoints, shown)]
    for a, b in keypoint_set.skeleton if skeleton else ():
        if points[a] is not None and points[b] is not None:
            cv2.line(canvas, points[a], points[b], _side_colour(keypoint_set.names[b]), thickness, cv2.LINE_AA)
    for name, point in zip(keypoint_set.names, points):
        if point is not None:
            cv2.circle(canvas, point, radius, _side_colour(name), -1, cv2.LINE_AA)
    return canvas


def heatmap_overlay(image_bgr: np.ndarray, heatmaps: np.ndarray, center: np.ndarray, scale: np.ndarray, *,
                    pixel_std: float, alpha: float = 0.5) -> np.ndarray:
    """A copy of the image with top-down heatmaps (P, h, w) painted where they lie: person p's map covers its
    crop, `scale[p] * pixel_std` pixels centred on `center[p]` (the decode's convention); each map is scaled to
    its own maximum, the people are combined by their maximum, and the result blended in with a colour map."""
    height, width = image_bgr.shape[:2]
    combined = np.zeros((height, width), np.float32)
    for hm, (cx, cy), (sx, sy) in zip(heatmaps, center, scale):
        top = float(hm.max())
        if not top > 0:
            continue
        crop_w, crop_h = sx * pixel_std, sy * pixel_std
        to_image = np.array([[crop_w / hm.shape[1], 0, cx - crop_w / 2], [0, crop_h / hm.shape[0], cy - crop_h / 2]])
        placed = cv2.warpAffine(np.clip(hm / top, 0, 1).astype(np.float32), to_image, (width, height),
                                flags=cv2.INTER_LINEAR)
        combined = np.maximum(combined, placed)
    colours = cv2.applyColorMap((combined * 255).astype(np.uint8), cv2.COLORMAP_JET)
    weight = (alpha * combined)[..., None]
    return (image_bgr * (1 - weight) + colours * weight).astype(np.uint8)
