"""Bottom-up (Associative Embedding) heads: the original's `BottomUpSimpleSRHead` and `BottomUpSimpleHead`.

Both map one backbone map to (N, 2K, h, w) = K heatmaps then K tag maps (tag per joint), as the
original's `cat(heatmaps, tags)`; train mode returns `[output]`, eval mode `output`. Module names and
initialisation are the original's, so its checkpoints map key for key (SPEC.md section 6):

- `BottomUpSimpleSRHead`: `deconv_layers` (none for HRNet-W32, 3 x ConvTranspose for ResNet-50),
  `tag_head` Conv1x1(C -> K) on its output, `kp_encoder` Conv1x1(C -> e K) + ReLU and `heatmap_head`
  grouped Conv9x9(e K -> r^2 K, groups K) + pixel_shuffle(r) through the `sr_head` op (every backend);
  the tags are upsampled to the heatmaps' size with `F.interpolate` (nearest).
- `BottomUpSimpleHead`: `deconv_layers` then `final_layer` Conv1x1(C -> 2K) at the map's resolution.

Every Conv / ConvTranspose of the head is N(0, 0.001) with zero bias, every BN (1, 0): the original's
init_weights. The head owns its codec (`codecs.associative_embedding.AssociativeEmbedding`), its loss
(`ops.bottomup_loss`) and its predict (the codec's decode).
"""
from __future__ import annotations

from typing import Mapping, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from ...losses.associative_embedding import AE_LOSS_TYPES
from ...ops.bottomup_loss import bottomup_loss
from ...ops.sr_head import sr_head
from .base import HeatmapHead, plain_and_flipped
from .simple import deconv_layers, init_deconv_head


class BottomUpHead(HeatmapHead):
    """What both bottom-up heads share: the input map, the codec (an `AssociativeEmbedding`), loss and predict.

    Subclasses build their layers and define `outputs(x) -> (N, 2K, h, w)` from the chosen map.
    """

    def __init__(self, num_joints: int, in_index: int, codec=None, backend: str = "auto", loss_type: str = "exp"):
        super().__init__(codec)
        if loss_type not in AE_LOSS_TYPES:
            raise ValueError(f"loss_type must be one of {AE_LOSS_TYPES} (the AE push term), got {loss_type!r}")
        self.num_joints = num_joints
        self.in_index = in_index
        self.loss_type = loss_type
        self.set_backend(backend)

    def outputs(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, feats: Sequence[torch.Tensor] | torch.Tensor):
        x = feats[self.in_index] if isinstance(feats, (list, tuple)) else feats
        out = self.outputs(x)
        return [out] if self.training else out

    def loss_terms(self, outputs, batch: Mapping[str, torch.Tensor], *,
                   backend: str | None = None) -> dict[str, torch.Tensor]:
        """`heatmap_loss`, `push_loss`, `pull_loss` and their sum `loss` of the train-mode outputs.

        `batch["joints"]` (N, M, K, 3) in heatmap pixels and `batch["mask"]` (N, h, w), as
        `data.bottomup.BottomUpCocoDataset` gives them, on the outputs' device or any other.
        """
        output = outputs[-1] if isinstance(outputs, (list, tuple)) else outputs
        codec = self._codec()
        joints = batch["joints"].to(output.device, torch.float32, non_blocking=True)
        mask = batch["mask"].to(output.device, non_blocking=True)
        return bottomup_loss(output, joints, mask, sigma=codec.sigma, max_people=codec.max_people,
                             loss_type=self.loss_type, backend=self.backend if backend is None else backend)

    def loss(self, outputs, batch: Mapping[str, torch.Tensor], *, backend: str | None = None) -> torch.Tensor:
        """The training loss (a scalar); `loss_terms` gives its parts."""
        return self.loss_terms(outputs, batch, backend=backend)["loss"]

    @torch.no_grad()
    def predict(self, feats: Sequence[torch.Tensor], flipped_feats: Sequence[torch.Tensor] | None = None, *,
                input_size, center=None, scale=None, backend: str | None = None):
        """People of each image from the eval outputs of `feats` (and of the mirrored images' `flipped_feats`,
        run in one batch with them): the codec's decode (flip merge, NMS, top-k, grouping, adjust, refine,
        image coordinates); call in eval mode. A list of `BottomUpPoses`, one per image."""
        out, flipped = plain_and_flipped(self, feats, flipped_feats)
        return self._codec().decode(out, flipped, input_size=tuple(input_size), center=center, scale=scale,
                                    backend=self.backend if backend is None else backend)


class BottomUpSimpleSRHead(BottomUpHead):
    """The SR head on Associative Embedding (HRNet-W32: 91,205 parameters; ResNet-50: 10,597,541).

    Args:
        in_channels: channels of the backbone map at `in_index` (finest-first list; a tensor is used as is).
        num_deconv_layers: ConvTranspose 4x4 stride 2 (256 channels, no bias) + BN + ReLU steps before the head.
        per_kp_emb: embedding channels per joint (e); pixel_shuffle: the SR factor r; kernel_size: 9.
    """

    def __init__(self, in_channels: int, num_joints: int = 17, *, num_deconv_layers: int = 0,
                 deconv_channels: int = 256, per_kp_emb: int = 4, pixel_shuffle: int = 4, kernel_size: int = 9,
                 in_index: int = 0, codec=None, backend: str = "auto", loss_type: str = "exp"):
        super().__init__(num_joints, in_index, codec, backend, loss_type)
        self.pixel_shuffle = pixel_shuffle
        self.deconv_layers = deconv_layers(in_channels, num_deconv_layers, deconv_channels)
        channels = deconv_channels if num_deconv_layers else in_channels
        self.tag_head = nn.Conv2d(channels, num_joints, 1)
        self.kp_encoder = nn.Sequential(nn.Conv2d(channels, num_joints * per_kp_emb, 1), nn.ReLU())
        self.heatmap_head = nn.Conv2d(num_joints * per_kp_emb, num_joints * pixel_shuffle ** 2, kernel_size,
                                      padding=kernel_size // 2, groups=num_joints)
        init_deconv_head(self)

    def outputs(self, x: torch.Tensor) -> torch.Tensor:
        x = self.deconv_layers(x)
        tags = self.tag_head(x)
        conv = self.heatmap_head
        heatmaps = sr_head(self.kp_encoder(x), conv.weight, conv.bias, self.pixel_shuffle, backend=self.backend)
        tags = F.interpolate(tags, size=heatmaps.shape[2:])  # nearest: r x r blocks
        return torch.cat([heatmaps, tags.to(heatmaps.dtype)], dim=1)


class BottomUpSimpleHead(BottomUpHead):
    """The Associative Embedding baseline: `final_layer` Conv1x1(C -> 2K) after the deconvolutions."""

    def __init__(self, in_channels: int, num_joints: int = 17, *, num_deconv_layers: int = 0,
                 deconv_channels: int = 256, in_index: int = 0, codec=None, backend: str = "auto",
                 loss_type: str = "exp"):
        super().__init__(num_joints, in_index, codec, backend, loss_type)
        self.deconv_layers = deconv_layers(in_channels, num_deconv_layers, deconv_channels)
        self.final_layer = nn.Conv2d(deconv_channels if num_deconv_layers else in_channels, 2 * num_joints, 1)
        init_deconv_head(self)

    def outputs(self, x: torch.Tensor) -> torch.Tensor:
        return self.final_layer(self.deconv_layers(x))
