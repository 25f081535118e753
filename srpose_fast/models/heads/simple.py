"""The baseline SimpleBaseline head: optional deconvolutions, then a 1x1 conv to K heatmaps."""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn as nn

from .base import HeatmapHead


def deconv_layers(in_channels: int, num_layers: int, channels: int) -> nn.Sequential:
    """num_layers x (ConvTranspose 4x4 stride 2, no bias, BN, ReLU): each doubles the resolution."""
    layers = []
    for _ in range(num_layers):
        layers += [nn.ConvTranspose2d(in_channels, channels, 4, stride=2, padding=1, bias=False),
                   nn.BatchNorm2d(channels), nn.ReLU()]
        in_channels = channels
    return nn.Sequential(*layers)


def init_deconv_head(module: nn.Module) -> None:
    """mmpose's init for this head family: deconv and final conv normal(0.001), BN (1, 0)."""
    for m in module.modules():
        if isinstance(m, (nn.ConvTranspose2d, nn.Conv2d)):
            nn.init.normal_(m.weight, std=0.001)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


class SimpleHead(HeatmapHead):
    """Heatmaps from one backbone map: `in_index` picks it from the finest-first list
    (-1, the coarsest, for ResNet with 3 deconvolutions; 0 for HRNet without).
    Training returns [heatmaps]; eval returns heatmaps; `predict` decodes them (`HeatmapHead`)."""

    def __init__(self, in_channels: int, num_joints: int = 17, num_deconv_layers: int = 3,
                 deconv_channels: int = 256, in_index: int = -1):
        super().__init__()
        self.in_index = in_index
        self.num_joints = num_joints
        self.deconv_layers = deconv_layers(in_channels, num_deconv_layers, deconv_channels)
        self.final_layer = nn.Conv2d(deconv_channels if num_deconv_layers else in_channels, num_joints, 1)
        init_deconv_head(self)

    def forward(self, feats: Sequence[torch.Tensor]):
        heatmaps = self.final_layer(self.deconv_layers(feats[self.in_index]))
        return [heatmaps] if self.training else heatmaps
