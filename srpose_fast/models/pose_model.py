"""Pose models: a backbone and a head; the head owns the loss, the decoding and their codec.

`PoseModel` is what every model shares; `TopDownPoseModel` adds the crops' `predict` (and the old loss form).
"""
from __future__ import annotations

import dataclasses
import warnings
from typing import Mapping

import torch
import torch.nn as nn

from ..keypoint_sets import COCO, KeypointSet
from ..ops.multi_stage_loss import multi_stage_loss

# The protocol a model follows (its `kind` attribute): the CLI, trainer, evaluator and export branch on it.
TOP_DOWN, BOTTOM_UP = "top_down", "bottom_up"


def model_kind(model) -> str:
    """"top_down" or "bottom_up": the protocol the model follows (its `kind` attribute, "top_down" when absent)."""
    return getattr(model, "kind", TOP_DOWN)


class PoseModel(nn.Module):
    """A backbone and a head that owns its codec, loss and decoding; what every pose model shares.

    Args:
        backbone: returns its feature maps finest first.
        head: holds its `codec` and has `forward(feats)`, `loss(outputs, batch)`, `predict(...)`, `backend`
            and `set_backend(backend)` (e.g. a `HeatmapHead`).
        keypoint_set: names, flip indices and OKS sigmas of the K keypoints.
    """

    def __init__(self, backbone: nn.Module, head: nn.Module, *, keypoint_set: KeypointSet = COCO):
        super().__init__()
        self.backbone = backbone
        self.head = head
        self.keypoint_set = keypoint_set

    @property
    def codec(self):
        return self.head.codec

    @property
    def backend(self) -> str:
        return self.head.backend

    def set_backend(self, backend: str) -> None:
        """The backend of every fused op the model runs (SR head, loss, decode), read at call time:
        "auto" | "torch" | "triton" | "cuda" | "cpp" (decode only)."""
        self.head.set_backend(backend)

    def update_codec(self, **changes) -> None:
        """Replace fields of the head's codec, e.g. `update_codec(target_method="udp", decode_method="dark")`."""
        self.head.codec = dataclasses.replace(self.codec, **changes)

    @staticmethod
    def _check_images(images: torch.Tensor) -> None:
        if images.dim() != 4 or images.shape[1] != 3:
            raise ValueError(f"images must be (N, 3, H, W), got shape {tuple(images.shape)}")
        if images.shape[2] % 32 or images.shape[3] % 32:
            raise ValueError(f"image height and width must be multiples of 32 (the backbone's stride), "
                             f"got {tuple(images.shape[2:])}")

    def forward(self, images: torch.Tensor):
        self._check_images(images)
        return self.head(self.backbone(images))

    def loss(self, outputs, batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """The training loss of the train-mode `outputs` (the head's; `batch` as the head's codec takes it)."""
        return self.head.loss(outputs, batch)

    def predict_with_head(self, images: torch.Tensor, flip_test: bool, **head_options):
        """`head.predict(feats, flipped_feats, **head_options)` on the backbone features of `images`, in eval mode;
        with `flip_test` the mirrored images run through the backbone in the same batch as the plain ones."""
        self._check_images(images)
        n = images.shape[0]
        batch = torch.cat([images, images.flip(3)]) if flip_test else images
        was_training = self.training
        self.eval()
        try:
            feats = self.backbone(batch)
            flipped_feats = [f[n:] for f in feats] if flip_test else None
            return self.head.predict([f[:n] for f in feats], flipped_feats, **head_options)
        finally:
            self.train(was_training)


class TopDownPoseModel(PoseModel):
    """`forward(images)`: train mode returns the head's list of heatmaps (5 for SRPose, 1 otherwise),
    eval mode returns the final heatmaps. `loss` and `predict` run backbone -> head and hand over to the
    head (`HeatmapHead.loss` / `.predict`); the head's codec is a `HeatmapCodec`.
    """

    @property
    def input_size(self) -> tuple[int, int]:
        return self.codec.input_size

    @property
    def heatmap_size(self) -> tuple[int, int]:
        """(H, W) of the final heatmap."""
        return self.codec.heatmap_size

    def loss(self, outputs, batch: Mapping[str, torch.Tensor], target_weight: torch.Tensor | None = None, *,
             target_method: str | None = None, backend: str | None = None) -> torch.Tensor:
        """The training loss of the train-mode `outputs`: `batch` holds "keypoints" (N, K, 2) in input pixels
        and "target_weight" (N, K).

        Deprecated form: `loss(preds, keypoints, target_weight, target_method=, backend=)` with the keypoints
        in final-heatmap pixels.
        """
        if not isinstance(batch, torch.Tensor):
            return super().loss(outputs, batch)
        warnings.warn("TopDownPoseModel.loss(preds, keypoints, target_weight, ...) with keypoints in heatmap pixels "
                      "is deprecated; call loss(outputs, {'keypoints': <input pixels>, 'target_weight': ...})",
                      DeprecationWarning, stacklevel=2)
        codec = self.codec
        return multi_stage_loss(outputs, batch, target_weight, sigma=codec.sigma, stage_weights=codec.stage_weights,
                                target_method=codec.target_method if target_method is None else target_method,
                                backend=self.backend if backend is None else backend)

    @torch.no_grad()
    def predict(self, images: torch.Tensor, *, flip_test: bool = True, method: str | None = None, center=None,
                scale=None, blur_kernel: int | None = None, backend: str | None = None):
        """Keypoints (N, K, 2) and scores (N, K) for a batch of crops.

        With `center`/`scale` (N, 2) (units of 200 px) keypoints are in the original image's coordinates;
        without, in the crops' pixel coordinates. With flip test the mirrored crops run through the
        backbone in the same batch as the plain ones, and the head gets both feature lists. method,
        blur_kernel: None = the codec's ("shift", 11 unless changed); backend: None = the model's.
        """
        return self.predict_with_head(images, flip_test, method=method, blur_kernel=blur_kernel, center=center,
                                      scale=scale, backend=backend)
