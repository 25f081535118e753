"""Person boxes as users give them: box lists (xywh or xyxy) and COCO detection files (torch-free).

A box list is a JSON list of [x, y, w, h] (or [x1, y1, x2, y2] with bbox_format="xyxy"), optionally with a
fifth number, the box's score; the same boxes apply to every image. A COCO detection file is what detectors
write for COCO (mmdet's results, `person_detection_results/*.json`): a JSON list of {"image_id",
"category_id", "bbox": [x, y, w, h], "score"}; only people (category 1) at or above a score threshold are
kept, grouped by image id. `read_boxes` tells the two apart by their content.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

import numpy as np

BBOX_FORMATS = ("xywh", "xyxy")
PERSON_CATEGORY = 1


def to_xywh(boxes, bbox_format: str = "xywh", *, what: str = "boxes", keep_empty: bool = False) -> np.ndarray:
    """(M, 5) float64 [x, y, w, h, score] from (M, 4) or (M, 5) boxes in `bbox_format` (score 1 when absent).
    A ValueError names `what` for a bad shape, a non-finite number or, unless `keep_empty` (the evaluation
    data set drops and counts those), an empty box."""
    if bbox_format not in BBOX_FORMATS:
        raise ValueError(f"bbox_format must be one of {BBOX_FORMATS}, got {bbox_format!r}")
    if isinstance(boxes, (list, tuple)) and all(isinstance(b, (list, tuple)) for b in boxes):
        boxes = [list(b) + [1.0] if len(b) == 4 else b for b in boxes]  # some boxes with a score, some without
    try:
        array = np.asarray(boxes, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{what}: expected a list of [x, y, w, h] boxes (numbers), got {_short(boxes)}") from None
    if array.size == 0:
        return np.zeros((0, 5))
    if array.ndim == 1:
        array = array[None]
    if array.ndim != 2 or array.shape[1] not in (4, 5):
        raise ValueError(f"{what}: each box needs 4 numbers ({'x1, y1, x2, y2' if bbox_format == 'xyxy' else 'x, y, w, h'})"
                         f" and optionally a score, got shape {array.shape}")
    if not np.isfinite(array).all():
        raise ValueError(f"{what}: box {array[~np.isfinite(array).all(1)][0].tolist()} is not finite")
    out = np.ones((len(array), 5))
    out[:, :array.shape[1]] = array
    if bbox_format == "xyxy":
        out[:, 2:4] -= out[:, 0:2]
    empty = (out[:, 2] <= 0) | (out[:, 3] <= 0)
    if empty.any() and not keep_empty:
        raise ValueError(f"{what}: box {array[empty][0].tolist()} has no area (is it {_other(bbox_format)}? "
                         f"see --bbox-format)")
    return out


def _other(bbox_format: str) -> str:
    return "xyxy" if bbox_format == "xywh" else "xywh"


def _short(value) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


@dataclass(frozen=True)
class Boxes:
    """Where each image's boxes come from: the same `fixed` (M, 5) for every image, or `by_image_id`
    {image id: (M, 5)} from a detection file (an image it does not list has no people)."""
    fixed: np.ndarray | None = None
    by_image_id: Mapping[int, np.ndarray] | None = None
    source: str = ""

    def for_image(self, image_id: int | None) -> np.ndarray:
        """(M, 5) [x, y, w, h, score] of an image."""
        if self.by_image_id is None:
            return self.fixed
        if image_id is None:
            raise ValueError(f"{self.source} gives boxes by image id, and this image has none")
        return self.by_image_id.get(int(image_id), np.zeros((0, 5)))


def person_detections(detections: list, *, min_score: float = 0.0, source: str = "detection file"):
    """(index, image id, score, bbox as written) of each person in a COCO detection list scoring at least
    `min_score`, in file order; a ValueError names `source` and the entry for a malformed one."""
    for i, det in enumerate(detections):
        if not isinstance(det, dict) or not {"image_id", "bbox", "score"} <= det.keys():
            raise ValueError(f"{source}: entry {i} needs image_id, bbox and score (COCO detection results)")
        try:
            image_id, score = int(det["image_id"]), float(det["score"])
        except (TypeError, ValueError):
            raise ValueError(f"{source}: entry {i} has image_id {det['image_id']!r} and score {det['score']!r}; "
                             f"both must be numbers") from None
        if det.get("category_id", PERSON_CATEGORY) == PERSON_CATEGORY and score >= min_score:
            yield i, image_id, score, det["bbox"]


def detection_boxes(entries: list, *, bbox_format: str = "xywh", source: str = "detection file",
                    keep_empty: bool = False) -> np.ndarray:
    """(M, 5) [x, y, w, h, score] of `person_detections` entries, checked as `to_xywh` checks boxes; all at once
    (a detection file holds ~100k), entry by entry only to name the entry of an error."""
    try:
        boxes = to_xywh([bbox for _, _, _, bbox in entries], bbox_format, what=source, keep_empty=keep_empty)
    except ValueError:
        for i, _, _, bbox in entries:
            to_xywh(bbox, bbox_format, what=f"{source}: entry {i}", keep_empty=keep_empty)
        raise
    boxes[:, 4] = [score for _, _, score, _ in entries]
    return boxes


def read_detections(detections: list, *, min_score: float = 0.0, bbox_format: str = "xywh",
                    source: str = "detection file") -> dict[int, np.ndarray]:
    """{image id: (M, 5) [x, y, w, h, score]} of the people in a COCO detection list scoring at least
    `min_score`, in file order."""
    entries = list(person_detections(detections, min_score=min_score, source=source))
    boxes = detection_boxes(entries, bbox_format=bbox_format, source=source)
    grouped: dict[int, list] = {}
    for (_, image_id, _, _), box in zip(entries, boxes):
        grouped.setdefault(image_id, []).append(box)
    return {image_id: np.stack(rows) for image_id, rows in grouped.items()}


def read_boxes(value: str, *, bbox_format: str = "xywh", min_score: float = 0.0) -> Boxes:
    """The boxes of `--boxes`: a JSON list written inline, or a JSON file holding a box list or COCO
    detections (those filtered by category and `min_score`). One-line errors name the problem."""
    text = value.strip()
    if text.startswith("["):
        source = "--boxes"
    else:
        path = Path(value)
        if not path.is_file():
            raise FileNotFoundError(f"--boxes: {value} is neither a JSON list of boxes nor an existing file")
        text, source = path.read_text(), str(path)
    try:
        data = json.loads(text)
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"{source} is not valid JSON: {err}") from None
    if not isinstance(data, list):
        raise ValueError(f"{source}: expected a JSON list of boxes or of COCO detections, got {type(data).__name__}")
    if data and all(isinstance(d, dict) for d in data):
        return Boxes(by_image_id=read_detections(data, min_score=min_score, bbox_format=bbox_format, source=source),
                     source=source)
    if data and all(isinstance(d, (int, float)) for d in data):
        data = [data]  # one box written without the outer list
    fixed = to_xywh(data, bbox_format, what=source)
    return Boxes(fixed=fixed[fixed[:, 4] >= min_score], source=source)


def whole_image_box(height: int, width: int) -> np.ndarray:
    """(1, 5): the whole image as the box, score 1 (mmpose's inference_topdown with bboxes=None)."""
    return np.array([[0.0, 0.0, float(width), float(height), 1.0]])


def image_id_from_name(name: str) -> int | None:
    """COCO's file names carry the image id (000000397133.jpg -> 397133); None for other names."""
    stem = Path(name).stem
    digits = stem.rsplit("_", 1)[-1]  # COCO 2014: COCO_val2014_000000397133
    return int(digits) if digits.isdigit() else None


def image_ids_by_name(ann_file: str | Path) -> dict[str, int]:
    """{file_name: id} of a COCO-format file's "images" (an annotation or image-info file)."""
    from .coco import _load_json

    data = _load_json(ann_file, "annotation file")
    images = data.get("images") if isinstance(data, dict) else None
    if not isinstance(images, list) or not all(isinstance(i, dict) and {"id", "file_name"} <= i.keys() for i in images):
        raise ValueError(f"{ann_file}: expected a COCO-format file whose \"images\" list holds id and file_name")
    return {str(image["file_name"]): int(image["id"]) for image in images}
