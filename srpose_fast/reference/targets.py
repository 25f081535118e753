"""Targets as SRPose's data loader makes them: numpy, one sample at a time, a loop over joints.

mmpose 0.x TopDownGenerateTarget with a feature stride of 1 (joints already in heatmap pixels).
This is the slow baseline the benchmarks time and the oracle `codecs.encode_heatmaps` is tested
against. Coordinates are promoted to float64, as mmpose's division by its float64 stride does.
"""
from __future__ import annotations

import numpy as np

from ..codecs.conventions import TARGET_METHODS


def generate_target(joints: np.ndarray, visible: np.ndarray, heatmap_size: tuple[int, int], sigma: float,
                    method: str = "msra") -> tuple[np.ndarray, np.ndarray]:
    """One sample's targets (K, H, W) float32 and target weights (K, 1) float32.

    joints: (K, 2) (x, y) in heatmap pixels; visible: (K,) visibility; heatmap_size: (W, H)
    (mmpose's order); method: "msra" | "unbiased" | "udp".
    """
    if method not in TARGET_METHODS:
        raise ValueError(f"generate_target: method must be one of {TARGET_METHODS}, got {method!r}")
    joints = np.asarray(joints, dtype=np.float64)
    visible = np.asarray(visible).reshape(-1)
    num_joints = joints.shape[0]
    width, height = int(heatmap_size[0]), int(heatmap_size[1])
    target = np.zeros((num_joints, height, width), dtype=np.float32)
    target_weight = np.zeros((num_joints, 1), dtype=np.float32)
    tmp_size = sigma * 3

    if method == "unbiased":
        x = np.arange(0, width, 1, np.float32)
        y = np.arange(0, height, 1, np.float32)[:, None]
        for joint_id in range(num_joints):
            target_weight[joint_id] = visible[joint_id]
            mu_x, mu_y = joints[joint_id, 0], joints[joint_id, 1]
            ul = [mu_x - tmp_size, mu_y - tmp_size]
            br = [mu_x + tmp_size + 1, mu_y + tmp_size + 1]
            if ul[0] >= width or ul[1] >= height or br[0] < 0 or br[1] < 0:
                target_weight[joint_id] = 0
            if target_weight[joint_id] > 0.5:
                target[joint_id] = np.exp(-((x - mu_x) ** 2 + (y - mu_y) ** 2) / (2 * sigma ** 2))
        return target, target_weight

    size = 2 * tmp_size + 1
    x = np.arange(0, size, 1, np.float32)
    y = x[:, None]
    for joint_id in range(num_joints):
        target_weight[joint_id] = visible[joint_id]
        mu_x = int(joints[joint_id, 0] + 0.5)
        mu_y = int(joints[joint_id, 1] + 0.5)
        ul = [int(mu_x - tmp_size), int(mu_y - tmp_size)]
        br = [int(mu_x + tmp_size + 1), int(mu_y + tmp_size + 1)]
        if ul[0] >= width or ul[1] >= height or br[0] < 0 or br[1] < 0:
            target_weight[joint_id] = 0
        if target_weight[joint_id] <= 0.5:
            continue
        x0 = y0 = size // 2
        if method == "udp":
            x0 = x0 + (joints[joint_id, 0] - mu_x)
            y0 = y0 + (joints[joint_id, 1] - mu_y)
        g = np.exp(-((x - x0) ** 2 + (y - y0) ** 2) / (2 * sigma ** 2))
        # the part of the window that lies on the map, in window and in map coordinates
        g_x = max(0, -ul[0]), min(br[0], width) - ul[0]
        g_y = max(0, -ul[1]), min(br[1], height) - ul[1]
        img_x = max(0, ul[0]), min(br[0], width)
        img_y = max(0, ul[1]), min(br[1], height)
        target[joint_id][img_y[0]:img_y[1], img_x[0]:img_x[1]] = g[g_y[0]:g_y[1], g_x[0]:g_x[1]]
    return target, target_weight
