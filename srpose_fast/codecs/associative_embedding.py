"""The bottom-up codec (Associative Embedding, SPEC.md section 6): what the model's targets and its test
time are made of, in one place.

`encode` makes the training targets (`codecs.bottomup_targets`); `decode` turns the network's eval outputs,
(N, 2K, h, w) = cat(K heatmaps, K tags), into people in image coordinates (`codecs.bottomup_decode`).
`max_people` is both the top-k of the candidates per joint and the number of people the grouping matches
against, as in the original (one number, `max_num_people`, for both).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from ..keypoint_sets import COCO
from .bottomup_targets import MAX_PEOPLE

# The original's order of joint types in the grouping for COCO's 17 joints: head, shoulders, hips, then
# the limbs; other keypoint sets are grouped in index order.
COCO_JOINT_ORDER = (0, 1, 2, 3, 4, 5, 6, 11, 12, 7, 8, 9, 10, 13, 14, 15, 16)


@dataclass(frozen=True)
class AssociativeEmbedding:
    """Associative Embedding's settings (defaults: SRPose's COCO configs at 512x512).

    Args:
        input_size: side of the training input (and the short side of a test image after resizing).
        heatmap_size: side of the training heatmaps (512 for the SR head, 128 for the simple head).
        sigma: Gaussian sigma of the heatmap targets, in heatmap pixels.
        max_people: people per image in the targets; candidates per joint (top-k) and people matched at test.
        nms_kernel, nms_padding: the max-pool NMS (11/5 for HRNet-W32, 5/2 for ResNet-50); kernel = 2 pad + 1.
        detection_threshold: a candidate joins the grouping when its heatmap value is above it.
        tag_threshold: a candidate joins a person when its tag is closer than this to the person's mean tag.
        flip_indices: the left/right permutation of the joints (flip test; K = its length).
        adjust: the quarter-pixel shift of grouped joints toward the higher neighbour, then +0.5.
        refine: fill each person's missing joints from the heatmaps and the person's mean tag.
    """
    input_size: int = 512
    heatmap_size: int = 512
    sigma: float = 8.0
    max_people: int = MAX_PEOPLE
    nms_kernel: int = 5
    nms_padding: int = 2
    detection_threshold: float = 0.1
    tag_threshold: float = 1.0
    flip_indices: Sequence[int] = COCO.flip_indices
    adjust: bool = True
    refine: bool = True

    def __post_init__(self):
        object.__setattr__(self, "flip_indices", tuple(int(i) for i in self.flip_indices))
        if sorted(self.flip_indices) != list(range(len(self.flip_indices))):
            raise ValueError(f"flip_indices must be a permutation of 0..K-1, got {self.flip_indices}")
        for name in ("input_size", "heatmap_size", "max_people", "nms_kernel"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        if self.nms_kernel != 2 * self.nms_padding + 1:
            raise ValueError(f"nms_kernel must be 2 * nms_padding + 1 (the pooled map keeps the heatmap's size), "
                             f"got kernel {self.nms_kernel} and padding {self.nms_padding}")
        if not self.sigma > 0:
            raise ValueError(f"sigma must be positive, got {self.sigma!r}")

    @property
    def num_keypoints(self) -> int:
        return len(self.flip_indices)

    @property
    def joint_order(self) -> tuple[int, ...]:
        """The order in which the grouping visits the joint types."""
        if self.num_keypoints == len(COCO_JOINT_ORDER):
            return COCO_JOINT_ORDER
        return tuple(range(self.num_keypoints))

    def encode(self, joints):
        """(heatmaps (..., K, Hh, Wh), joint indices (..., max_people, K, 2)) of `joints` (..., M, K, 3) in
        heatmap pixels: the heatmap loss's targets and where the AE loss reads its tags."""
        from .bottomup_targets import bottomup_heatmaps, joint_indices

        return (bottomup_heatmaps(joints, self.heatmap_size, self.sigma),
                joint_indices(joints, self.heatmap_size, self.max_people))

    def decode(self, outputs, flipped_outputs=None, *, input_size, center=None, scale=None, backend: str = "auto"):
        """People of each image: a list of `BottomUpPoses` (see `codecs.bottomup_decode.decode_bottomup`)."""
        from .bottomup_decode import decode_bottomup

        return decode_bottomup(outputs, flipped_outputs, codec=self, input_size=input_size, center=center,
                               scale=scale, backend=backend)
