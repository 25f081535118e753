"""Which keypoint set an annotation file holds, read from the file itself.

mmpose's MPII layout (a JSON list of persons, `data/mpii.py`) holds MPII's 16 joints. A COCO-format
file names its keypoints in the person category ("keypoints"), else its annotations carry
3 values per keypoint; the count picks the set: COCO 17, MPII 16, CrowdPose 14.
"""
from __future__ import annotations

from ..keypoint_sets import KEYPOINT_SETS, MPII, KeypointSet
from .coco import _load_json
from .mpii import is_mpii_annotations

_BY_COUNT = {s.num_keypoints: s for s in KEYPOINT_SETS.values()}


def keypoint_count(data, source) -> int | None:
    """Keypoints per person of a parsed COCO-format file (None when it says nothing)."""
    for cat in data.get("categories") or []:
        if isinstance(cat, dict) and isinstance(cat.get("keypoints"), list) and cat.get("id", 1) == 1:
            return len(cat["keypoints"])
    for ann in data.get("annotations") or []:
        if isinstance(ann, dict) and isinstance(ann.get("keypoints"), list):
            if len(ann["keypoints"]) % 3:
                raise ValueError(f"{source}: annotation {ann.get('id')} has {len(ann['keypoints'])} keypoint "
                                 f"values, not [x, y, v] triplets")
            return len(ann["keypoints"]) // 3
    return None


def detect_keypoint_set(ann_file) -> KeypointSet:
    """The keypoint set of an annotation file (see the module docstring); ValueError naming the file
    when its keypoint count is none of the known sets'."""
    data = _load_json(ann_file, "annotation file")
    if is_mpii_annotations(data):
        return MPII
    if not isinstance(data, dict):
        raise ValueError(f"annotation file {ann_file}: expected a COCO-format object or mmpose's MPII list, "
                         f"got {type(data).__name__}")
    count = keypoint_count(data, f"annotation file {ann_file}")
    if count not in _BY_COUNT:
        known = ", ".join(f"{s.name} ({k})" for k, s in sorted(_BY_COUNT.items()))
        found = "no keypoints" if count is None else f"{count} keypoints per person"
        raise ValueError(f"annotation file {ann_file} has {found}; the keypoint sets are {known}: "
                         f"pass --keypoint-set")
    return _BY_COUNT[count]


__all__ = ["detect_keypoint_set", "keypoint_count"]
