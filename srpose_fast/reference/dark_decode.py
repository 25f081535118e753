"""DARK and DARK-UDP decoding as mmpose 1.x runs them: the baseline of the DARK decoders.

SRPose itself decodes with the quarter-pixel shift only (`reference.decode.srpose_decode`); a user who
wants DARK gets it from mmpose, which decodes on the host in numpy and OpenCV, one instance at a time:
argmax per instance; every map zero-padded and blurred whole with `cv2.GaussianBlur`, cropped and
rescaled to its old maximum; then for "dark" a Python loop over keypoints with `np.linalg`, for
"dark_udp" clip to [1e-3, 50], log, edge padding and one Newton step over the instance's keypoints.

The formulas are those of `codecs.decoders` (SPEC section 3), so this baseline and the project's
decoders compute the same keypoints; only the way the work is done differs, and that is what the
benchmarks time. Like the project's decoders (and unlike mmpose, which writes location -1 and keeps
the raw maximum), a map whose maximum is <= 0 keeps its argmax unrefined and scores 0. The blur takes
sigma from the SPEC's formula for every kernel size (OpenCV's own rule for sigma 0 uses fixed tables
for k <= 7).
"""
from __future__ import annotations

import numpy as np

from ..codecs.conventions import dark_blur_sigma
from .decode import transform_preds

DARK_METHODS = ("dark", "dark_udp")


def blur_like_mmpose(maps: np.ndarray, kernel: int) -> np.ndarray:
    """(K, H, W) float32: each map zero-padded, blurred whole with OpenCV, cropped, rescaled to its maximum."""
    import cv2

    border = (kernel - 1) // 2
    sigma = dark_blur_sigma(kernel)
    out = np.empty_like(maps, dtype=np.float32)
    for k, plane in enumerate(maps):
        padded = np.pad(plane.astype(np.float32), border)
        blurred = cv2.GaussianBlur(padded, (kernel, kernel), sigma, sigmaY=sigma)
        out[k] = blurred[border:border + plane.shape[0], border:border + plane.shape[1]]
        blurred_max = out[k].max()
        if blurred_max != 0:
            out[k] *= plane.max() / blurred_max
    return out


def _refine_dark(logs: np.ndarray, locs: np.ndarray, scores: np.ndarray) -> None:
    """In place: one Newton step per keypoint inside 1 < x < W-2, 1 < y < H-2, a Python loop as mmpose."""
    _, height, width = logs.shape
    for k, log_map in enumerate(logs):
        x, y = int(locs[k, 0]), int(locs[k, 1])
        if scores[k] <= 0 or not (1 < x < width - 2 and 1 < y < height - 2):
            continue
        gradient = 0.5 * np.array([log_map[y, x + 1] - log_map[y, x - 1], log_map[y + 1, x] - log_map[y - 1, x]])
        dxx = 0.25 * (log_map[y, x + 2] - 2 * log_map[y, x] + log_map[y, x - 2])
        dyy = 0.25 * (log_map[y + 2, x] - 2 * log_map[y, x] + log_map[y - 2, x])
        dxy = 0.25 * (log_map[y + 1, x + 1] - log_map[y - 1, x + 1] - log_map[y + 1, x - 1] + log_map[y - 1, x - 1])
        hessian = np.array([[dxx, dxy], [dxy, dyy]])
        if np.linalg.det(hessian) != 0:
            locs[k] -= np.linalg.solve(hessian, gradient)


def _refine_dark_udp(logs: np.ndarray, locs: np.ndarray, scores: np.ndarray) -> None:
    """In place: unit-step differences on the edge-padded log maps, all keypoints of the instance at once."""
    padded = np.pad(logs, ((0, 0), (1, 1), (1, 1)), mode="edge")
    keypoint = np.arange(len(logs))
    x = locs[:, 0].astype(np.int64) + 1
    y = locs[:, 1].astype(np.int64) + 1

    def at(ox: int, oy: int) -> np.ndarray:
        return padded[keypoint, y + oy, x + ox].astype(np.float64)

    centre, right, left, down, up = at(0, 0), at(1, 0), at(-1, 0), at(0, 1), at(0, -1)
    gradient = np.stack((0.5 * (right - left), 0.5 * (down - up)), axis=-1)
    dxy = 0.5 * (at(1, 1) - right - down + 2 * centre - left - up + at(-1, -1))
    eps = np.finfo(np.float32).eps
    hessian = np.empty((len(logs), 2, 2))
    hessian[:, 0, 0] = right - 2 * centre + left + eps
    hessian[:, 1, 1] = down - 2 * centre + up + eps
    hessian[:, 0, 1] = hessian[:, 1, 0] = dxy
    ok = (scores > 0) & (np.linalg.det(hessian) != 0)  # numpy's inverse would raise on a singular matrix
    locs[ok] -= np.linalg.solve(hessian[ok], gradient[ok][..., None])[..., 0]


def mmpose_dark_decode(heatmaps: np.ndarray, center: np.ndarray, scale: np.ndarray, method: str = "dark",
                       blur_kernel: int = 11) -> tuple[np.ndarray, np.ndarray]:
    """Image-pixel keypoints (N, K, 2) and scores (N, K), float32 numpy.

    heatmaps: (N, K, H, W) numpy; center, scale: (N, 2) (x200 convention). "dark" maps to the image
    with (W, H), "dark_udp" with (W - 1, H - 1).
    """
    if method not in DARK_METHODS:
        raise ValueError(f"mmpose_dark_decode: method must be one of {DARK_METHODS}, got {method!r}")
    heatmaps = np.asarray(heatmaps, dtype=np.float32)
    n, k, height, width = heatmaps.shape
    output_size = (width, height) if method == "dark" else (width - 1, height - 1)
    keypoints = np.zeros((n, k, 2), dtype=np.float32)
    scores = np.zeros((n, k), dtype=np.float32)
    for i in range(n):
        flat = heatmaps[i].reshape(k, -1)
        index = np.argmax(flat, axis=1)
        maxima = flat[np.arange(k), index]
        locs = np.stack((index % width, index // width), axis=-1).astype(np.float64)
        blurred = blur_like_mmpose(heatmaps[i], blur_kernel)
        if method == "dark":
            _refine_dark(np.log(np.maximum(blurred, 1e-10)), locs, maxima)
        else:
            _refine_dark_udp(np.log(np.clip(blurred, 1e-3, 50.0)), locs, maxima)
        keypoints[i] = transform_preds(locs, np.asarray(center[i]), np.asarray(scale[i]), output_size)
        scores[i] = np.where(maxima > 0, maxima, 0.0)
    return keypoints, scores
