"""Keypoint sets of the data sets SRPose is trained on: names, flip indices, OKS sigmas.

Torch-free and dependency-free: the ops, the data pipeline and the deployment decoder all import it.

Flip indices map each keypoint to its mirror image (left <-> right); a keypoint on the
body's midline maps to itself. Sigmas are the per-keypoint OKS constants of each benchmark
(MPII is scored with PCKh; its sigmas are mmpose's, for OKS-style use such as OKS-NMS).
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class KeypointSet:
    name: str
    names: tuple[str, ...]
    flip_indices: tuple[int, ...]
    sigmas: tuple[float, ...]
    skeleton: tuple[tuple[int, int], ...] = ()  # 0-based limb pairs, for drawing

    def __post_init__(self):
        k = len(self.names)
        if len(self.flip_indices) != k or len(self.sigmas) != k:
            raise ValueError(f"{self.name}: names, flip_indices and sigmas must all have {k} entries")
        if sorted(self.flip_indices) != list(range(k)):
            raise ValueError(f"{self.name}: flip_indices must be a permutation of 0..{k - 1}")
        if any(self.flip_indices[j] != i for i, j in enumerate(self.flip_indices)):
            raise ValueError(f"{self.name}: flip_indices must be an involution (flipping twice is the identity)")

    @property
    def num_keypoints(self) -> int:
        return len(self.names)


def _flip_indices(names: tuple[str, ...]) -> tuple[int, ...]:
    """Mirror by name: 'left_x' <-> 'right_x', 'l_x' <-> 'r_x'; other names map to themselves."""
    swaps = (("left_", "right_"), ("right_", "left_"), ("l_", "r_"), ("r_", "l_"))
    index = {name: i for i, name in enumerate(names)}
    out = []
    for name in names:
        mirror = name
        for a, b in swaps:
            if name.startswith(a):
                mirror = b + name[len(a):]
                break
        out.append(index[mirror])
    return tuple(out)


_COCO_NAMES = (
    "nose", "left_eye", "right_eye", "left_ear", "right_ear", "left_shoulder", "right_shoulder",
    "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_hip", "right_hip",
    "left_knee", "right_knee", "left_ankle", "right_ankle",
)
COCO = KeypointSet(
    name="coco",
    names=_COCO_NAMES,
    flip_indices=_flip_indices(_COCO_NAMES),
    sigmas=(0.026, 0.025, 0.025, 0.035, 0.035, 0.079, 0.079, 0.072, 0.072, 0.062, 0.062,
            0.107, 0.107, 0.087, 0.087, 0.089, 0.089),
    skeleton=((15, 13), (13, 11), (16, 14), (14, 12), (11, 12), (5, 11), (6, 12), (5, 6), (5, 7), (6, 8),
              (7, 9), (8, 10), (1, 2), (0, 1), (0, 2), (1, 3), (2, 4), (3, 5), (4, 6)),
)

_MPII_NAMES = (
    "r_ankle", "r_knee", "r_hip", "l_hip", "l_knee", "l_ankle", "pelvis", "thorax", "upper_neck",
    "head_top", "r_wrist", "r_elbow", "r_shoulder", "l_shoulder", "l_elbow", "l_wrist",
)
MPII = KeypointSet(
    name="mpii",
    names=_MPII_NAMES,
    flip_indices=_flip_indices(_MPII_NAMES),
    sigmas=(0.089, 0.083, 0.107, 0.107, 0.083, 0.089, 0.026, 0.026, 0.026, 0.026, 0.062, 0.072,
            0.179, 0.179, 0.072, 0.062),
    skeleton=((0, 1), (1, 2), (2, 6), (6, 3), (3, 4), (4, 5), (6, 7), (7, 8), (8, 9), (10, 11), (11, 12),
              (12, 7), (7, 13), (13, 14), (14, 15)),
)

_CROWDPOSE_NAMES = (
    "left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist",
    "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle", "top_head", "neck",
)
CROWDPOSE = KeypointSet(
    name="crowdpose",
    names=_CROWDPOSE_NAMES,
    flip_indices=_flip_indices(_CROWDPOSE_NAMES),
    sigmas=(0.079, 0.079, 0.072, 0.072, 0.062, 0.062, 0.107, 0.107, 0.087, 0.087, 0.089, 0.089,
            0.079, 0.079),
    skeleton=((12, 13), (13, 0), (13, 1), (0, 2), (2, 4), (1, 3), (3, 5), (0, 6), (1, 7), (6, 7), (6, 8),
              (8, 10), (7, 9), (9, 11)),
)

KEYPOINT_SETS = {s.name: s for s in (COCO, MPII, CROWDPOSE)}


def get_keypoint_set(name: str | KeypointSet) -> KeypointSet:
    """The keypoint set called `name` ("coco", "mpii", "crowdpose"; any case); a KeypointSet is returned as it is."""
    if isinstance(name, KeypointSet):
        return name
    try:
        return KEYPOINT_SETS[name.lower()]
    except KeyError:
        raise ValueError(f"unknown keypoint set {name!r}; known: {sorted(KEYPOINT_SETS)}") from None
