"""The loss as SRPose computes it: JointsMSELoss with a Python loop over joints, per output.

Kept deliberately as the original runs it (a benchmark baseline and a second oracle);
`srpose_fast.losses` holds the vectorised form with the same value.
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F


class JointsMSELoss(nn.Module):
    """mmpose 0.x JointsMSELoss(use_target_weight=True): per joint, MSE of (pred * w) against
    (target * w) over batch and pixels; the sum over joints divided by K."""

    def __init__(self, loss_weight: float = 1.0):
        super().__init__()
        self.criterion = nn.MSELoss()
        self.loss_weight = loss_weight

    def forward(self, output: torch.Tensor, target: torch.Tensor, target_weight: torch.Tensor) -> torch.Tensor:
        batch_size, num_joints = output.shape[:2]
        preds = output.reshape(batch_size, num_joints, -1).split(1, 1)
        gts = target.reshape(batch_size, num_joints, -1).split(1, 1)
        loss = 0.0
        for idx in range(num_joints):
            pred, gt = preds[idx].squeeze(1), gts[idx].squeeze(1)
            weight = target_weight[:, idx]
            loss = loss + self.criterion(pred * weight, gt * weight)
        return loss / num_joints * self.loss_weight


def srpose_losses(outputs: Sequence[torch.Tensor], target: torch.Tensor, target_weight: torch.Tensor,
                  criterion: JointsMSELoss | None = None) -> dict[str, torch.Tensor]:
    """SRPose's get_loss: targets avg-pooled to each output's size, 1e-4 on the first (LR) output.

    target_weight is (N, K, 1) as the original's data pipeline makes it.
    """
    criterion = criterion or JointsMSELoss()
    with torch.no_grad():
        targets = {target.size(2): target}
        for output in outputs:
            if output.size(2) not in targets:
                targets[output.size(2)] = F.adaptive_avg_pool2d(target, output.shape[2:])
    losses = {}
    for i, output in enumerate(outputs):
        scale = 1e-4 if i == 0 else 1.0
        losses[f"hp{i}_2d_loss"] = scale * criterion(output, targets[output.size(2)], target_weight)
    return losses
