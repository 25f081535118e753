"""A top-down pose model: backbone + head, with the loss and the predict path attached."""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn as nn

from ..keypoint_sets import COCO, KeypointSet
from ..ops.multi_stage_loss import multi_stage_loss


class TopDownPoseModel(nn.Module):
    """`forward(images)`: train mode returns the head's list of heatmaps (5 for SRPose, 1 otherwise),
    eval mode returns the final heatmaps.

    Args:
        backbone, head: modules; the backbone returns its feature maps finest first.
        keypoint_set: names and flip indices of the K keypoints.
        input_size: (H, W) of the crops the model is trained on.
        output_stride: input size / final heatmap size (1 for SRPose and the SR head, 4 for the simple head).
        sigma: target sigma at the final heatmap's resolution.
        stage_weights: loss weight of each train-mode output.
    """

    def __init__(self, backbone: nn.Module, head: nn.Module, *, keypoint_set: KeypointSet = COCO,
                 input_size: tuple[int, int] = (256, 192), output_stride: int = 1, sigma: float = 8.0,
                 stage_weights: Sequence[float] = (1e-4, 1.0, 1.0, 1.0, 1.0)):
        super().__init__()
        self.backbone = backbone
        self.head = head
        self.keypoint_set = keypoint_set
        self.input_size = tuple(input_size)
        self.output_stride = output_stride
        self.sigma = sigma
        self.stage_weights = tuple(stage_weights)

    @property
    def heatmap_size(self) -> tuple[int, int]:
        return (self.input_size[0] // self.output_stride, self.input_size[1] // self.output_stride)

    def _check_images(self, images: torch.Tensor) -> None:
        if images.dim() != 4 or images.shape[1] != 3:
            raise ValueError(f"images must be (N, 3, H, W), got shape {tuple(images.shape)}")
        if images.shape[2] % 32 or images.shape[3] % 32:
            raise ValueError(f"image height and width must be multiples of 32 (the backbone's stride), "
                             f"got {tuple(images.shape[2:])}")

    def forward(self, images: torch.Tensor):
        self._check_images(images)
        return self.head(self.backbone(images))

    def loss(self, preds, keypoints: torch.Tensor, target_weight: torch.Tensor, *,
             target_method: str = "msra", backend: str = "auto") -> torch.Tensor:
        """The training loss; `keypoints` are in final-heatmap pixel coordinates."""
        return multi_stage_loss(preds, keypoints, target_weight, sigma=self.sigma, stage_weights=self.stage_weights,
                                target_method=target_method, backend=backend)

    @torch.no_grad()
    def predict(self, images: torch.Tensor, *, flip_test: bool = True, method: str = "shift",
                center=None, scale=None, blur_kernel: int = 11, backend: str = "auto"):
        """Keypoints (N, K, 2) and scores (N, K) for a batch of crops.

        With `center`/`scale` (N, 2) (x200 convention) keypoints are in the original image's
        coordinates; without, in the crops' pixel coordinates. With flip test the mirrored crops run
        in the same batch as the plain ones. Heads with an SR head (SRPose, SR) decode straight from
        the last SR head's input (`sr_head_decode`): the full-resolution heatmaps are never written.
        """
        from ..ops.decode import decode_heatmaps
        from ..ops.sr_head_decode import sr_head_decode

        self._check_images(images)
        n, _, height, width = images.shape
        batch = torch.cat([images, images.flip(3)]) if flip_test else images
        if center is None and scale is None:
            # The crop itself as the box: maps heatmap pixels onto input pixels.
            center = images.new_tensor([width / 2, height / 2], dtype=torch.float32).expand(n, 2)
            scale = images.new_tensor([width / 200, height / 200], dtype=torch.float32).expand(n, 2)
        flip_indices = self.keypoint_set.flip_indices if flip_test else None
        was_training = self.training
        self.eval()
        try:
            feats = self.backbone(batch)
            if hasattr(self.head, "final_embedding"):
                embedding, converge = self.head.final_embedding(feats)
                weight, bias = converge.conv.weight, converge.conv.bias
                if embedding.dtype != weight.dtype:  # under autocast the conv output is low precision
                    embedding = embedding.to(weight.dtype)
                return sr_head_decode(embedding[:n], weight, bias, converge.upscale,
                                      flipped_emb=embedding[n:] if flip_test else None, flip_indices=flip_indices,
                                      method=method, blur_kernel=blur_kernel, center=center, scale=scale,
                                      backend=backend)
            heatmaps = self.head(feats)
        finally:
            self.train(was_training)
        return decode_heatmaps(heatmaps[:n], method=method, blur_kernel=blur_kernel,
                               flipped=heatmaps[n:] if flip_test else None, flip_indices=flip_indices,
                               center=center, scale=scale, backend=backend)
