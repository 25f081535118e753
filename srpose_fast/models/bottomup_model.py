"""A bottom-up pose model: backbone -> head; the head owns the codec (`AssociativeEmbedding`), loss and decode."""
from __future__ import annotations

from typing import Mapping

import torch

from .pose_model import PoseModel

BOTTOMUP_TARGET_METHOD = "msra"  # the original's targets: Gaussians at the truncated (integer) joint positions


class BottomUpPoseModel(PoseModel):
    """`forward(images)`: train mode `[output]`, eval mode `output`, output (N, 2K, h, w) = K heatmaps
    then K tags. `loss(outputs, batch)` and `predict(images, ...)` go to the head.

    `kind = "bottom_up"` tells the shared CLI, trainer and evaluator which protocol the model follows.
    """

    kind = "bottom_up"

    @property
    def input_size(self) -> tuple[int, int]:
        """(H, W) of the square training input (the codec's side)."""
        return (self.codec.input_size,) * 2

    @property
    def heatmap_size(self) -> tuple[int, int]:
        """(H, W) of the square training heatmaps."""
        return (self.codec.heatmap_size,) * 2

    def update_codec(self, **changes) -> None:
        """Replace codec fields, e.g. `update_codec(nms_kernel=5, nms_padding=2)`.

        `target_method` (the trainer passes the config's) is accepted as "msra" only: the bottom-up targets
        are the original's.
        """
        method = changes.pop("target_method", BOTTOMUP_TARGET_METHOD)
        if method != BOTTOMUP_TARGET_METHOD:
            raise ValueError(f"bottom-up models train on the original's targets (target_method "
                             f"{BOTTOMUP_TARGET_METHOD!r}), got target_method={method!r}")
        if changes:
            super().update_codec(**changes)

    def loss_terms(self, outputs, batch: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """The loss and its parts (heatmap_loss, push_loss, pull_loss)."""
        return self.head.loss_terms(outputs, batch)

    @torch.no_grad()
    def predict(self, images: torch.Tensor, *, flip_test: bool = True, center=None, scale=None,
                backend: str | None = None):
        """The people of each image: a list (one per image) of the codec's decode results (`BottomUpPoses`).

        `images` (N, 3, H', W') normalised, already resized by the bottom-up test-time rule
        (`data.bottomup_resize`); `center` and `scale` (x200 convention) map the input back to the original
        image; without them keypoints are in input pixels. With flip test the mirrored images run through
        the backbone in the same batch as the plain ones, and the head gets both feature lists.
        """
        return self.predict_with_head(images, flip_test, input_size=images.shape[-2:], center=center, scale=scale,
                                      backend=backend)
