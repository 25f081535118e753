"""The paper's "SR head" baseline: the simple head's features, then one SR head x4.

Conv1x1(C -> 4K) + ReLU, grouped Conv9x9 (4K -> 16K, groups K), pixel shuffle 4. `predict` decodes
heatmap-free from the SR head's input (`SRDecodeHead`).
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn as nn

from .base import SRDecodeHead
from .converge import Converge
from .simple import deconv_layers, init_deconv_head


class SRHead(SRDecodeHead):
    def __init__(self, in_channels: int, num_joints: int = 17, num_deconv_layers: int = 0,
                 deconv_channels: int = 256, in_index: int = 0, per_emb_num: int = 4, upscale: int = 4,
                 kernel_size: int = 9):
        super().__init__()
        self.in_index = in_index
        self.num_joints = num_joints
        self.deconv_layers = deconv_layers(in_channels, num_deconv_layers, deconv_channels)
        init_deconv_head(self.deconv_layers)
        channels = deconv_channels if num_deconv_layers else in_channels
        self.kp_encoder = nn.Sequential(nn.Conv2d(channels, per_emb_num * num_joints, 1), nn.ReLU())
        nn.init.normal_(self.kp_encoder[0].weight, std=0.001)
        nn.init.zeros_(self.kp_encoder[0].bias)
        self.converge = Converge(per_emb_num, upscale, kernel_size, num_joints)

    @property
    def final_converge(self) -> Converge:
        return self.converge

    def final_embedding(self, feats: Sequence[torch.Tensor]) -> torch.Tensor:
        return self.kp_encoder(self.deconv_layers(feats[self.in_index]))

    def forward(self, feats: Sequence[torch.Tensor]):
        heatmaps = self.converge(self.final_embedding(feats), backend=self.backend)
        return [heatmaps] if self.training else heatmaps
