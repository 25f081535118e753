"""Person boxes as users give them (srpose_fast.data.boxes): box lists in both formats, COCO detection files
as detectors write them, and one-line mistakes."""
import json

import numpy as np
import pytest

from srpose_fast.data.boxes import image_id_from_name, image_ids_by_name, read_boxes, to_xywh

DETECTIONS = [  # the layout of COCO's person_detection_results files (mmdet's bbox results)
    {"image_id": 397133, "category_id": 1, "bbox": [10.5, 20.0, 100.0, 200.0], "score": 0.98},
    {"image_id": 397133, "category_id": 1, "bbox": [50.0, 20.0, 30.0, 60.0], "score": 0.12},
    {"image_id": 397133, "category_id": 18, "bbox": [0.0, 0.0, 40.0, 40.0], "score": 0.99},  # a dog
    {"image_id": 37777, "category_id": 1, "bbox": [1.0, 2.0, 3.0, 4.0], "score": 0.5},
]


def test_xyxy_and_xywh_give_the_same_boxes_with_a_default_score():
    xywh = to_xywh([[10, 20, 30, 40]])
    np.testing.assert_array_equal(xywh, [[10, 20, 30, 40, 1]])
    np.testing.assert_array_equal(to_xywh([[10, 20, 40, 60]], "xyxy"), xywh)
    np.testing.assert_array_equal(to_xywh([10, 20, 40, 60, 0.7], "xyxy"), [[10, 20, 30, 40, 0.7]])
    assert to_xywh([]).shape == (0, 5)


@pytest.mark.parametrize("boxes, bbox_format, message", [
    ([[1, 2, 3]], "xywh", "each box needs 4 numbers"),
    ([["a", 2, 3, 4]], "xywh", "expected a list of"),
    ([[1, 2, float("nan"), 4]], "xywh", "not finite"),
    ([[10, 20, 5, 5]], "xyxy", "has no area (is it xywh?"),
    ([[10, 20, 0, 5]], "xywh", "has no area (is it xyxy?"),
    ([[1, 2, 3, 4]], "cxcywh", "bbox_format must be one of"),
])
def test_bad_boxes_are_one_line_errors(boxes, bbox_format, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace("?", r"\?")):
        to_xywh(boxes, bbox_format)


def test_read_boxes_takes_inline_json_and_files(tmp_path):
    inline = read_boxes("[[10, 20, 30, 40], [0, 0, 5, 5, 0.1]]", min_score=0.3)
    np.testing.assert_array_equal(inline.for_image(None), [[10, 20, 30, 40, 1]])
    (tmp_path / "one.json").write_text("[10, 20, 40, 60]")
    np.testing.assert_array_equal(read_boxes(str(tmp_path / "one.json"), bbox_format="xyxy").for_image(7),
                                  [[10, 20, 30, 40, 1]])


def test_a_coco_detection_file_keeps_people_above_the_threshold_by_image_id(tmp_path):
    path = tmp_path / "person_detection_results.json"
    path.write_text(json.dumps(DETECTIONS))
    boxes = read_boxes(str(path), min_score=0.3)
    np.testing.assert_array_equal(boxes.for_image(397133), [[10.5, 20.0, 100.0, 200.0, 0.98]])
    np.testing.assert_array_equal(boxes.for_image(37777), [[1, 2, 3, 4, 0.5]])
    assert boxes.for_image(5).shape == (0, 5)  # an image the detector found nobody in
    assert len(read_boxes(str(path), min_score=0.0).for_image(397133)) == 2
    with pytest.raises(ValueError, match="gives boxes by image id"):
        boxes.for_image(None)


@pytest.mark.parametrize("text, message", [
    ("{not json", "is not valid JSON"),
    ('{"bbox": [1, 2, 3, 4]}', "expected a JSON list of boxes or of COCO detections, got dict"),
    ('[{"image_id": 1, "bbox": [1, 2, 3, 4]}]', "entry 0 needs image_id, bbox and score"),
    ('[{"image_id": "x", "bbox": [1, 2, 3, 4], "score": 1}]', "both must be numbers"),
    ('[{"image_id": 1, "bbox": [1, 2, 3], "score": 1}]', "entry 0: each box needs 4 numbers"),
])
def test_bad_box_files_are_one_line_errors(tmp_path, text, message):
    path = tmp_path / "boxes.json"
    path.write_text(text)
    with pytest.raises(ValueError, match=message):
        read_boxes(str(path))
    with pytest.raises(FileNotFoundError, match="neither a JSON list of boxes nor an existing file"):
        read_boxes(str(tmp_path / "missing.json"))


def test_image_ids_from_coco_names_and_files(tmp_path):
    assert image_id_from_name("000000397133.jpg") == 397133
    assert image_id_from_name("val2014/COCO_val2014_000000037777.jpg") == 37777
    assert image_id_from_name("holiday.jpg") is None
    ann = tmp_path / "image_info.json"
    ann.write_text(json.dumps({"images": [{"id": 5, "file_name": "a.jpg", "width": 4, "height": 4}]}))
    assert image_ids_by_name(ann) == {"a.jpg": 5}
    ann.write_text(json.dumps([{"id": 5}]))
    with pytest.raises(ValueError, match="images\" list holds id and file_name"):
        image_ids_by_name(ann)
