import json

import pytest

from srpose_fast.data.layouts import detect_keypoint_set, read_annotation_file
from srpose_fast.keypoint_sets import COCO, CROWDPOSE, MPII


def _write(path, obj):
    path.write_text(json.dumps(obj))
    return path


def test_keypoint_set_from_the_file(tmp_path):
    # mmpose's MPII list
    assert read_annotation_file(_write(tmp_path / "mpii.json", [{"image": "1.jpg"}])).layout == "mpii"
    assert detect_keypoint_set(tmp_path / "mpii.json") is MPII
    # the person category's keypoint names (CrowdPose names its head "head", the count decides)
    names = ["left_shoulder"] * 12 + ["head", "neck"]
    crowd = {"images": [], "annotations": [], "categories": [{"id": 1, "name": "person", "keypoints": names}]}
    assert detect_keypoint_set(_write(tmp_path / "cp.json", crowd)) is CROWDPOSE
    # no category keypoints: the annotations' triplets
    coco = {"images": [], "annotations": [{"id": 1, "keypoints": [0] * 51}], "categories": [{"id": 1}]}
    found = read_annotation_file(_write(tmp_path / "coco.json", coco))
    assert (found.layout, found.num_keypoints, found.keypoint_set) == ("coco", 17, COCO)


def test_unknown_files_are_one_clear_line(tmp_path):
    odd = _write(tmp_path / "odd.json", {"images": [], "annotations": [{"id": 1, "keypoints": [0] * 30}]})
    assert read_annotation_file(odd).num_keypoints == 10  # readable; only the set is unknown
    with pytest.raises(ValueError, match="10 keypoints per person.*coco \\(17\\).*--keypoint-set"):
        detect_keypoint_set(odd)
    with pytest.raises(ValueError, match="no keypoints"):
        detect_keypoint_set(_write(tmp_path / "none.json", {"images": [], "annotations": []}))
    with pytest.raises(ValueError, match="not \\[x, y, v\\] triplets"):
        detect_keypoint_set(_write(tmp_path / "bad.json", {"annotations": [{"id": 3, "keypoints": [0] * 4}]}))
    with pytest.raises(ValueError, match="expected a COCO-format object"):
        detect_keypoint_set(_write(tmp_path / "num.json", 3))
    with pytest.raises(FileNotFoundError, match="missing.json"):
        detect_keypoint_set(tmp_path / "missing.json")
