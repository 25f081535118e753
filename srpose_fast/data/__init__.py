"""Data: keypoint-set constants, COCO-format datasets, transforms and synthetic data."""
from .meta import COCO, CROWDPOSE, KEYPOINT_SETS, MPII, KeypointSet, get_keypoint_set

__all__ = ["COCO", "CROWDPOSE", "KEYPOINT_SETS", "MPII", "KeypointSet", "get_keypoint_set"]
