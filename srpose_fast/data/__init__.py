"""Data: keypoint-set constants, COCO-format datasets, transforms and synthetic data.

The keypoint sets import nothing heavy. The data set, transforms, collate and generator need
OpenCV (and torch / pycocotools for the data set); they are loaded on first access, so code that
only needs the keypoint sets (the torch-free deploy decoder) does not pull them in.
"""
from importlib import import_module

from ..keypoint_sets import COCO, CROWDPOSE, KEYPOINT_SETS, MPII, KeypointSet, get_keypoint_set

_LAZY = {
    "TopDownCocoDataset": "coco",
    "read_image": "coco",
    "collate_pose": "collate",
    "generate_synthetic_coco": "synthetic",
    "AugmentParams": "transforms",
    "get_affine_transform": "transforms",
    "train_transform": "transforms",
    "eval_transform": "transforms",
}

__all__ = ["COCO", "CROWDPOSE", "KEYPOINT_SETS", "MPII", "KeypointSet", "get_keypoint_set", *_LAZY]


def __getattr__(name):
    if name in _LAZY:
        value = getattr(import_module(f".{_LAZY[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
