"""Which keypoint set an annotation file holds, read from the file itself.

mmpose's MPII layout (a JSON list of persons, `data/mpii.py`) holds MPII's 16 joints. A COCO-format
file names its keypoints in the person category ("keypoints"), else its annotations carry
3 values per keypoint; the count picks the set: COCO 17, MPII 16, CrowdPose 14.
"""
from __future__ import annotations

from dataclasses import dataclass

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


@dataclass(frozen=True)
class AnnotationFile:
    """What an annotation file holds: its layout ("coco": COCO format; "mpii": mmpose's MPII list),
    its keypoints per person (None: the file does not say) and the keypoint set with that count."""

    path: str
    layout: str
    num_keypoints: int | None

    @property
    def keypoint_set(self) -> KeypointSet:
        """ValueError naming the file when its keypoint count is none of the known sets'."""
        if self.num_keypoints not in _BY_COUNT:
            known = ", ".join(f"{s.name} ({k})" for k, s in sorted(_BY_COUNT.items()))
            found = "no keypoints" if self.num_keypoints is None else f"{self.num_keypoints} keypoints per person"
            raise ValueError(f"annotation file {self.path} has {found}; the keypoint sets are {known}: "
                             f"pass --keypoint-set")
        return _BY_COUNT[self.num_keypoints]


def read_annotation_file(ann_file) -> AnnotationFile:
    """The layout and keypoint count of an annotation file (see the module docstring)."""
    data = _load_json(ann_file, "annotation file")
    if is_mpii_annotations(data):
        return AnnotationFile(str(ann_file), "mpii", MPII.num_keypoints)
    if not isinstance(data, dict):
        raise ValueError(f"annotation file {ann_file}: expected a COCO-format object or mmpose's MPII list, "
                         f"got {type(data).__name__}")
    return AnnotationFile(str(ann_file), "coco", keypoint_count(data, f"annotation file {ann_file}"))


def detect_keypoint_set(ann_file) -> KeypointSet:
    """The keypoint set of an annotation file (`read_annotation_file`)."""
    return read_annotation_file(ann_file).keypoint_set


__all__ = ["AnnotationFile", "detect_keypoint_set", "keypoint_count", "read_annotation_file"]
