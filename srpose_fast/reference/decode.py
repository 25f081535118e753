"""Decoding as SRPose runs it: the benchmark baseline of `srpose_fast.ops.decode_heatmaps`.

16x16 max-pool with indices on the heatmaps' device, max values, indices and the heatmaps
copied to the CPU, block argmax in numpy, then a Python loop over (n, k) for the quarter-pixel
shift and mmpose 0.x `transform_preds` (non-UDP) per instance.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from ..codecs.conventions import PIXEL_STD

BLOCK = 16


def transform_preds(coords: np.ndarray, center: np.ndarray, scale: np.ndarray,
                    output_size: tuple[int, int]) -> np.ndarray:
    """mmpose 0.x transform_preds, non-UDP: heatmap pixels (K, 2) to image pixels; output_size (W, H)."""
    scale = scale * PIXEL_STD
    scale_x = scale[0] / output_size[0]
    scale_y = scale[1] / output_size[1]
    target_coords = np.ones_like(coords)
    target_coords[:, 0] = coords[:, 0] * scale_x + center[0] - scale[0] * 0.5
    target_coords[:, 1] = coords[:, 1] * scale_y + center[1] - scale[1] * 0.5
    return target_coords


def srpose_decode(heatmaps: torch.Tensor, center: np.ndarray, scale: np.ndarray
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Image-pixel keypoints (N, K, 2) and max values (N, K, 1), both numpy.

    heatmaps: (N, K, H, W) torch with H and W multiples of 16; center, scale: (N, 2) numpy
    (x200 convention).

    One deliberate departure from the original: SRPose (like mmpose) marks a map whose maximum
    is <= 0 with block index -1, so numpy indexes the last block; here such a map keeps its true
    block argmax. Such maps are still shifted and keep their raw maximum as the value (the fast
    path `decode_heatmaps` reports score 0 and does not refine them). Ties between equal maxima
    in different blocks go to the first block, not to the lowest flat index.
    """
    n, k, height, width = heatmaps.shape
    pooled, indices = F.max_pool2d_with_indices(heatmaps, BLOCK, BLOCK)
    xs = indices % width
    ys = indices // width
    pooled = pooled.cpu().numpy().reshape(n, k, -1)
    xs = xs.cpu().numpy().reshape(n, k, -1)
    ys = ys.cpu().numpy().reshape(n, k, -1)
    maps = heatmaps.cpu().numpy()

    block = np.argmax(pooled, axis=2)[..., None]
    maxvals = np.take_along_axis(pooled, block, axis=2)
    preds = np.concatenate((np.take_along_axis(xs, block, axis=2),
                            np.take_along_axis(ys, block, axis=2)), axis=2).astype(np.float32)

    for i in range(n):
        for j in range(k):
            heatmap = maps[i][j]
            px = int(preds[i][j][0])
            py = int(preds[i][j][1])
            if 1 < px < width - 1 and 1 < py < height - 1:
                diff = np.array([heatmap[py][px + 1] - heatmap[py][px - 1],
                                 heatmap[py + 1][px] - heatmap[py - 1][px]])
                preds[i][j] += np.sign(diff) * 0.25

    center = np.asarray(center)
    scale = np.asarray(scale)
    for i in range(n):
        preds[i] = transform_preds(preds[i], center[i], scale[i], (width, height))
    return preds, maxvals
