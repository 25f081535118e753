"""One SR head's converge step: a grouped conv (groups = joints) + pixel shuffle, through the fused op.

The parameters live in `self.conv` (an nn.Conv2d) so state-dict keys match the original
(`converge.<i>.conv.weight`); the computation goes through `srpose_fast.ops.sr_head`.
"""
from __future__ import annotations

import torch
import torch.nn as nn

from ...ops.sr_head import sr_head


class Converge(nn.Module):
    def __init__(self, per_joint_channels: int, upscale: int, kernel_size: int, num_joints: int,
                 backend: str = "auto"):
        super().__init__()
        self.upscale = upscale
        self.backend = backend
        self.conv = nn.Conv2d(per_joint_channels * num_joints, upscale * upscale * num_joints, kernel_size,
                              padding=kernel_size // 2, groups=num_joints)
        nn.init.normal_(self.conv.weight, std=0.001)
        nn.init.zeros_(self.conv.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return sr_head(x, self.conv.weight, self.conv.bias, self.upscale, backend=self.backend)
