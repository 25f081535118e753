"""The bottom-up targets and loss as the original runs them (mmpose 0.x `HeatmapGenerator` and `JointsEncoder`
per sample in numpy, in the data loader; `HeatmapLoss` and `AELoss` with a Python loop over people per image).

Kept deliberately in that form: the benchmark baseline of the bottom-up loss and a second oracle.
`codecs.bottomup_targets` and `losses.associative_embedding` hold the vectorised forms with the same values.
"""
from __future__ import annotations

import numpy as np
import torch


def original_heatmaps(joints: np.ndarray, size: int, sigma: float) -> np.ndarray:
    """(K, size, size) float32 targets of one image's joints (P, K, 3) in heatmap pixels: the window table
    pasted at each labelled in-map joint's truncated position, maximum over people."""
    num_joints = joints.shape[1]
    hms = np.zeros((num_joints, size, size), dtype=np.float32)
    x = np.arange(0, 6 * sigma + 3, 1, np.float32)
    y = x[:, None]
    x0 = y0 = 3 * sigma + 1
    g = np.exp(-((x - x0) ** 2 + (y - y0) ** 2) / (2 * sigma ** 2))
    for person in joints:
        for idx, pt in enumerate(person):
            if pt[2] <= 0:
                continue
            x_int, y_int = int(pt[0]), int(pt[1])
            if x_int < 0 or y_int < 0 or x_int >= size or y_int >= size:
                continue
            ul = int(np.round(x_int - 3 * sigma - 1)), int(np.round(y_int - 3 * sigma - 1))
            br = int(np.round(x_int + 3 * sigma + 2)), int(np.round(y_int + 3 * sigma + 2))
            c, d = max(0, -ul[0]), min(br[0], size) - ul[0]
            a, b = max(0, -ul[1]), min(br[1], size) - ul[1]
            cc, dd = max(0, ul[0]), min(br[0], size)
            aa, bb = max(0, ul[1]), min(br[1], size)
            hms[idx, aa:bb, cc:dd] = np.maximum(hms[idx, aa:bb, cc:dd], g[a:b, c:d])
    return hms


def original_joint_indices(joints: np.ndarray, size: int, max_people: int) -> np.ndarray:
    """(max_people, K, 2) int32 of one image's joints (P, K, 3): (k size^2 + y size + x, 1) packed first."""
    out = np.zeros((max_people, joints.shape[1], 2), dtype=np.float32)
    for i in range(len(joints)):
        tot = 0
        for idx, pt in enumerate(joints[i]):
            x, y = int(pt[0]), int(pt[1])
            if pt[2] > 0 and 0 <= y < size and 0 <= x < size:
                out[i][tot] = (idx * size ** 2 + y * size + x, 1)
                tot += 1
    return out.astype(np.int32)


def _single_tag_loss(tags: torch.Tensor, joints: np.ndarray, loss_type: str) -> tuple[torch.Tensor, torch.Tensor]:
    """AELoss.singleTagLoss: (push, pull) of one image's flattened tags (T, 1) at its joint indices."""
    refs, pull = [], 0
    for person in joints:
        picked = [tags[joint[0]] for joint in person if joint[1] > 0]
        if not picked:
            continue
        picked = torch.stack(picked)
        refs.append(torch.mean(picked, dim=0))
        pull = pull + torch.mean((picked - refs[-1].expand_as(picked)) ** 2)
    zero = tags.new_zeros(())
    if not refs:
        return zero, zero
    if len(refs) == 1:
        return zero, pull
    refs = torch.stack(refs)
    num = len(refs)
    diff = refs.expand(num, num) - refs.expand(num, num).permute(1, 0)
    if loss_type == "exp":
        push = torch.exp(-diff ** 2).sum() - num
    else:
        push = torch.clamp(1 - torch.abs(diff), min=0).sum() - num
    return push / ((num - 1) * num) * 0.5, pull / num


def original_loss(output: torch.Tensor, targets: torch.Tensor, masks: torch.Tensor, joint_indices: torch.Tensor, *,
                  loss_type: str = "exp", push_factor: float = 1e-3, pull_factor: float = 1e-3) -> dict:
    """MultiLossFactory + get_loss for one output (N, 2K, H, W): batch-mean heatmap, push and pull losses."""
    num_joints = targets.shape[1]
    heatmaps = output[:, :num_joints]
    heatmap_loss = ((heatmaps - targets) ** 2 * masks[:, None, :, :].expand_as(heatmaps))
    heatmap_loss = heatmap_loss.mean(dim=3).mean(dim=2).mean(dim=1)
    tags = output[:, num_joints:].contiguous().view(output.shape[0], -1, 1)
    joints = joint_indices.cpu().numpy()
    pushes, pulls = zip(*(_single_tag_loss(tags[i], joints[i], loss_type) for i in range(output.shape[0])))
    losses = {"heatmap_loss": heatmap_loss.mean(dim=0), "push_loss": (torch.stack(pushes) * push_factor).mean(dim=0),
              "pull_loss": (torch.stack(pulls) * pull_factor).mean(dim=0)}
    losses["loss"] = losses["heatmap_loss"] + losses["push_loss"] + losses["pull_loss"]
    return losses


def original_batch_targets(joints: np.ndarray, size: int, sigma: float, max_people: int) -> tuple[np.ndarray, np.ndarray]:
    """What the original's loader hands the loss for a batch of joints (N, P, K, 3): targets (N, K, size, size)
    and joint indices (N, max_people, K, 2), one sample at a time."""
    targets = np.stack([original_heatmaps(j, size, sigma) for j in joints])
    indices = np.stack([original_joint_indices(j, size, max_people) for j in joints])
    return targets, indices
