"""One SR head's converge step: a grouped conv (groups = joints) + pixel shuffle, through the fused op.

The parameters live in `self.conv` (an nn.Conv2d) so state-dict keys match the original
(`converge.<i>.conv.weight`); the computation goes through `srpose_fast.ops.sr_head` in training and
`HeatmapCodec.decode_embeddings` (`ops.sr_head_decode`) at inference. The owning head passes its backend.
"""
from __future__ import annotations

import torch
import torch.nn as nn

from ...codecs.heatmap_codec import HeatmapCodec
from ...ops.sr_head import sr_head


class Converge(nn.Module):
    def __init__(self, per_joint_channels: int, upscale: int, kernel_size: int, num_joints: int):
        super().__init__()
        self.upscale = upscale
        self.conv = nn.Conv2d(per_joint_channels * num_joints, upscale * upscale * num_joints, kernel_size,
                              padding=kernel_size // 2, groups=num_joints)
        nn.init.normal_(self.conv.weight, std=0.001)
        nn.init.zeros_(self.conv.bias)

    def forward(self, x: torch.Tensor, backend: str = "auto") -> torch.Tensor:
        return sr_head(x, self.conv.weight, self.conv.bias, self.upscale, backend=backend)

    def decode(self, embedding: torch.Tensor, flipped: torch.Tensor | None, codec: HeatmapCodec, **decode_args):
        """Keypoints and scores of this step's heatmaps, never written: `codec.decode_embeddings` with this
        step's weights (`decode_args`: center, scale, method, blur_kernel, backend)."""
        weight, bias = self.conv.weight, self.conv.bias
        if embedding.dtype != weight.dtype:  # under autocast the embedding conv's output is low precision
            embedding = embedding.to(weight.dtype)
            flipped = None if flipped is None else flipped.to(weight.dtype)
        return codec.decode_embeddings(embedding, weight, bias, self.upscale, flipped, **decode_args)
