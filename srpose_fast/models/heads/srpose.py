"""The SRPose head (SPEC.md section 1): coarse-to-fine fusion with an SR head at every stage.

Module names follow the original implementation so checkpoints map 1:1:
lr_head, lr_fuse, pre_fuse, pre_interpolate, fuse, post_fuse, kp_encoder, converge.
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from .base import SRDecodeHead
from .converge import Converge


class ConvBlock(nn.Module):
    """ConvNeXt-style block: depthwise 7x7 -> BN -> Linear(d, 4d) -> GELU -> Linear(4d, d), plus the input."""

    def __init__(self, dim: int):
        super().__init__()
        self.dwconv = nn.Conv2d(dim, dim, kernel_size=7, padding=3, groups=dim)
        self.norm = nn.BatchNorm2d(dim)
        self.pwconv1 = nn.Linear(dim, 4 * dim)
        self.act = nn.GELU()
        self.pwconv2 = nn.Linear(4 * dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.norm(self.dwconv(x)).permute(0, 2, 3, 1)  # the Linears act on channels last
        y = self.pwconv2(self.act(self.pwconv1(y)))
        return x + y.permute(0, 3, 1, 2)


def _conv_bn_relu(in_ch: int, out_ch: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(in_ch, out_ch, 1), nn.BatchNorm2d(out_ch), nn.ReLU())


class SRPoseHead(SRDecodeHead):
    """SRPose head.

    Args:
        in_channels: backbone channels, coarsest first (e.g. (256, 128, 64, 32) for HRNet-W32).
        out_channels: the head's channels per stage, coarsest first.
        num_joints: K.
        per_emb_nums: channels per joint fed to each stage's SR head (e).
        upsample_log: log2 of each SR head's pixel-shuffle factor (r = 2 ** u).

    `forward(features)` takes the backbone's maps finest first (as backbones return them).
    Training returns [LR heatmap, SR output of stage 0..3]; eval returns the last SR output only;
    `predict` decodes heatmap-free from the last SR head's input (`SRDecodeHead`).

    Init (SPEC.md section 1): each `converge` conv normal(0, 0.001), bias 0 (`Converge`); BN weight 1, bias 0;
    every other conv and linear, `kp_encoder` included, keeps PyTorch's default initialisation.
    """

    def __init__(self, in_channels: Sequence[int] = (256, 128, 64, 32),
                 out_channels: Sequence[int] = (256, 128, 64, 32), num_joints: int = 17,
                 per_emb_nums: Sequence[int] = (16, 8, 4, 4), upsample_log: Sequence[int] = (3, 2, 1, 2)):
        super().__init__()
        stages = len(in_channels)
        if not (len(out_channels) == len(per_emb_nums) == len(upsample_log) == stages):
            raise ValueError("SRPoseHead: in_channels, out_channels, per_emb_nums and upsample_log "
                             "must have one entry per stage")
        self.in_channels = tuple(in_channels)
        self.out_channels = tuple(out_channels)
        self.num_joints = num_joints
        self.upscales = tuple(2 ** u for u in upsample_log)

        self.lr_head = nn.Sequential(nn.Conv2d(in_channels[0], num_joints, 1), nn.ReLU())
        self.lr_fuse = nn.Sequential(nn.Conv2d(num_joints, out_channels[0], 1), nn.ReLU())
        self.pre_interpolate = nn.ModuleList(
            nn.Sequential(
                nn.Conv2d(out_channels[i - 1], out_channels[i - 1], 3, padding=1, groups=out_channels[i - 1]),
                nn.Conv2d(out_channels[i - 1], out_channels[i], 1),
                nn.BatchNorm2d(out_channels[i]),
                nn.ReLU(),
            )
            for i in range(1, stages)
        )
        self.pre_fuse = nn.ModuleList(_conv_bn_relu(i, o) for i, o in zip(in_channels, out_channels))
        self.fuse = nn.ModuleList(nn.Conv2d(2 * o, o, 1) for o in out_channels[1:])
        self.post_fuse = nn.ModuleList(nn.Sequential(ConvBlock(o), ConvBlock(o)) for o in out_channels[1:])
        self.kp_encoder = nn.ModuleList(
            nn.Sequential(nn.Conv2d(o, e * num_joints, 1), nn.ReLU()) for o, e in zip(out_channels, per_emb_nums)
        )
        # Kernel 11 - 2 (stages - i): 3/5/7/9 for four stages.
        self.converge = nn.ModuleList(
            Converge(e, r, 11 - 2 * (stages - i), num_joints)
            for i, (e, r) in enumerate(zip(per_emb_nums, self.upscales))
        )
        self.init_weights()

    def init_weights(self) -> None:
        for m in self.modules():
            if isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def features(self, feats: Sequence[torch.Tensor]) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Run the fusion path: the LR heatmap and the fused feature map of every stage (coarsest first)."""
        xs = list(feats)[::-1]
        if len(xs) != len(self.in_channels):
            raise ValueError(f"SRPoseHead expects {len(self.in_channels)} feature maps, got {len(xs)}")
        lr_heatmap = self.lr_head(xs[0])
        feat = self.pre_fuse[0](xs[0]) + self.lr_fuse(lr_heatmap)
        stage_feats = [feat]
        for i in range(1, len(xs)):
            feat = self.pre_interpolate[i - 1](feat)
            feat = F.interpolate(feat, size=xs[i].shape[2:], mode="nearest")
            feat = self.fuse[i - 1](torch.cat([feat, self.pre_fuse[i](xs[i])], dim=1))
            feat = self.post_fuse[i - 1](feat)
            stage_feats.append(feat)
        return lr_heatmap, stage_feats

    def sr_output(self, stage: int, feat: torch.Tensor) -> torch.Tensor:
        return self.converge[stage](self.kp_encoder[stage](feat), backend=self.backend)

    @property
    def final_converge(self) -> Converge:
        return self.converge[-1]

    def final_embedding(self, feats: Sequence[torch.Tensor]) -> torch.Tensor:
        _, stage_feats = self.features(feats)
        return self.kp_encoder[-1](stage_feats[-1])

    def forward(self, feats: Sequence[torch.Tensor]):
        lr_heatmap, stage_feats = self.features(feats)
        if not self.training:
            return self.sr_output(len(stage_feats) - 1, stage_feats[-1])
        return [lr_heatmap] + [self.sr_output(i, f) for i, f in enumerate(stage_feats)]
