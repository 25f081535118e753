"""Top-down COCO-format keypoint data set: one sample per person box, mmpose 0.x semantics.

Works for COCO, CrowdPose and MPII converted to COCO format (the keypoint count of the file is
checked against the keypoint set), and for MPII in mmpose's own layout (a JSON list of persons,
read by `data/mpii.py`; `coco` is then None). Person boxes come from the ground truth (train, or
evaluation with ground-truth boxes) or from a COCO detection results JSON (evaluation).

Which instances become samples (as mmpose's TopDownCocoDataset):
- ground-truth boxes: non-crowd person annotations whose box, clipped to the image, is not
  degenerate and whose area is not 0, and which have at least one labelled keypoint. This holds
  for training and for evaluation with ground-truth boxes (mmpose's use_gt_bbox): COCOeval ignores
  instances without keypoints, so boxes on them would only add false positives.
- detections: every person box with score >= `min_box_score`, used unclipped as mmpose does;
  boxes that are degenerate or lie wholly outside their image are dropped.
Dropped boxes are counted (`num_dropped_boxes`) and reported in one warning.
"""
from __future__ import annotations

import contextlib
import io
import json
import os
import warnings
from pathlib import Path

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from ..keypoint_sets import COCO, KeypointSet, get_keypoint_set
from .boxes import detection_boxes, person_detections
from .mpii import is_mpii_annotations, mpii_samples
from .transforms import AugmentParams, box_to_center_scale, eval_transform, shift_box_center, train_transform


def _load_json(path, what: str):
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{what} not found: {path}")
    try:
        return json.loads(path.read_bytes())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"{what} {path} is not valid JSON: {err}") from None


def read_image(path) -> np.ndarray:
    """Decode an image file to BGR uint8 (H, W, 3), ignoring EXIF orientation (COCO's annotations
    are on the stored pixel layout). Raises FileNotFoundError / ValueError naming the file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"image not found: {path}")
    image = cv2.imdecode(np.fromfile(path, dtype=np.uint8), cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION)
    if image is None:
        raise ValueError(f"could not decode image {path} (OpenCV cannot read it; is it truncated or not an image?)")
    return image


def _pair(value, name: str) -> tuple[int, int]:
    try:
        h, w = (int(v) for v in value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be (H, W), got {value!r}") from None
    if h <= 0 or w <= 0:
        raise ValueError(f"{name} must be positive, got {value!r}")
    return h, w


class TopDownCocoDataset(Dataset):
    """Person crops from a COCO-format keypoint file.

    `__getitem__` returns a dict:
      image (3, H, W) float32, ImageNet-normalised RGB; keypoints (K, 2) float32 in input-image
      pixels after the affine crop; target_weight (K,) float32, the joint's visibility (1 where
      labelled, inside the crop or not: the loss zeroes it only when the joint's Gaussian window lies
      wholly outside the heatmap, SPEC.md section 2); visible (K,) float32, 1 where labelled;
      center (2,), scale (2,) float32 of the crop (after augmentation),
      image_id int, box_score float (1.0 for ground-truth boxes), area float (the annotation's area,
      or w * h of a detection box), index int (the sample index).

    Training boxes: 30% of the centres (`augment.box_shift_prob`) move by up to +-20% of the box, drawn
    once when the set is built from `numpy.random.RandomState(seed)` in mmpose 0.x's order (SRPose's COCO
    training set; `shift_box_center`).
    Training randomness is drawn from `numpy.random.default_rng([seed, epoch, index])`: call
    `set_epoch` each epoch for fresh augmentation (DataLoader workers copy the data set when an
    iterator is created, so do not combine this with persistent_workers=True).
    """

    def __init__(self, ann_file, img_prefix, *, keypoint_set: KeypointSet | str = COCO,
                 input_size=(256, 192), heatmap_size=None, train: bool = True,
                 augment: AugmentParams | None = None, padding: float = 1.25, seed: int = 0,
                 detections=None, min_box_score: float = 0.0):
        self.ann_file = Path(ann_file)
        self.img_prefix = Path(img_prefix)
        self.keypoint_set = get_keypoint_set(keypoint_set)
        self.input_size = _pair(input_size, "input_size")
        self.heatmap_size = self.input_size if heatmap_size is None else _pair(heatmap_size, "heatmap_size")
        self.train = train
        self.augment = augment if augment is not None else AugmentParams()
        self.padding = padding
        self.seed = seed
        self.epoch = 0
        if train and detections is not None:
            raise ValueError("detections are for evaluation; pass train=False")

        data = _load_json(self.ann_file, "annotation file")
        self.num_dropped_boxes = 0
        self.num_without_keypoints = 0
        if is_mpii_annotations(data):  # mmpose's MPII layout: a list of persons, no COCO index
            if detections is not None:
                raise ValueError(f"{self.ann_file} is in mmpose's MPII layout, which is evaluated on its own "
                                 f"person boxes: detections are for COCO-format files")
            self.coco = None
            self.samples = mpii_samples(data, self.ann_file, self.img_prefix, self.keypoint_set, padding=padding)
            return
        self._check(data)
        from pycocotools.coco import COCO as _COCOApi

        self.coco = _COCOApi()
        self.coco.dataset = data
        with contextlib.redirect_stdout(io.StringIO()):
            self.coco.createIndex()

        if detections is None:
            self.samples = self._gt_samples()
        else:
            self.samples = self._detection_samples(detections, min_box_score)
        if self.num_dropped_boxes:
            warnings.warn(f"{self.ann_file if detections is None else detections}: dropped "
                          f"{self.num_dropped_boxes} person boxes that are degenerate or lie outside "
                          f"their image", stacklevel=2)

    # ----------------------------------------------------------------------------------- loading
    def _check(self, data) -> None:
        where = f"annotation file {self.ann_file}"
        if not isinstance(data, dict):
            raise ValueError(f"{where}: expected a JSON object with 'images' and 'annotations', "
                             f"got {type(data).__name__}")
        for key in ("images", "annotations"):
            if not isinstance(data.get(key), list):
                raise ValueError(f"{where}: missing or non-list '{key}'")
        for i, img in enumerate(data["images"]):
            missing = [k for k in ("id", "file_name", "width", "height") if not isinstance(img, dict) or k not in img]
            if missing:
                raise ValueError(f"{where}: images[{i}] lacks {missing}")
        ids = {img["id"] for img in data["images"]}
        k = self.keypoint_set.num_keypoints
        for cat in data.get("categories", []):
            if isinstance(cat, dict) and cat.get("id") == 1 and "keypoints" in cat and len(cat["keypoints"]) != k:
                raise ValueError(f"{where}: the person category has {len(cat['keypoints'])} keypoints, "
                                 f"keypoint set {self.keypoint_set.name!r} has {k}")
        for i, ann in enumerate(data["annotations"]):
            if not isinstance(ann, dict) or "image_id" not in ann:
                raise ValueError(f"{where}: annotations[{i}] is not an object with an 'image_id'")
            if ann["image_id"] not in ids:
                raise ValueError(f"{where}: annotations[{i}] refers to image_id {ann['image_id']!r}, "
                                 f"which is not in 'images'")
            kpts = ann.get("keypoints")
            if kpts is not None and len(kpts) != 3 * k:
                raise ValueError(f"{where}: annotations[{i}] (id {ann.get('id')}) has {len(kpts)} keypoint "
                                 f"values, keypoint set {self.keypoint_set.name!r} needs {3 * k} "
                                 f"({k} x [x, y, v])")
            bbox = ann.get("bbox")
            if bbox is not None and len(bbox) != 4:
                raise ValueError(f"{where}: annotations[{i}] (id {ann.get('id')}) bbox must be [x, y, w, h]")

    def _sample(self, img, bbox, keypoints, visible, box_score, area, ann_id=None):
        center, scale = box_to_center_scale(*bbox, self.input_size, self.padding)
        return {
            "image_id": img["id"], "file": self.img_prefix / img["file_name"],
            "size": (int(img["height"]), int(img["width"])),
            "bbox": np.asarray(bbox, dtype=np.float32), "center": center, "scale": scale,
            "keypoints": keypoints, "visible": visible,
            "box_score": float(box_score), "area": float(area),
            "ann_id": ann_id,  # the annotation of a ground-truth box; None for a detection
        }

    def _gt_samples(self) -> list[dict]:
        """One sample per usable ground-truth box, images in the file's order as mmpose reads them."""
        k = self.keypoint_set.num_keypoints
        # SRPose's training set moves some box centres, drawn once here in mmpose's order (see shift_box_center).
        shift_rng = np.random.RandomState(self.seed) if self.train and self.augment.box_shift_prob > 0 else None
        samples = []
        for img_id in self.coco.getImgIds():
            img = self.coco.imgs[img_id]
            width, height = img["width"], img["height"]
            for ann in self.coco.loadAnns(self.coco.getAnnIds(imgIds=img_id, iscrowd=False)):
                if ann.get("category_id", 1) != 1 or "bbox" not in ann:
                    continue
                x, y, w, h = ann["bbox"]
                # mmpose 0.x's box sanitising: the far corner is measured from the clipped near one.
                x1, y1 = max(0.0, x), max(0.0, y)
                x2 = min(width - 1.0, x1 + max(0.0, w - 1.0))
                y2 = min(height - 1.0, y1 + max(0.0, h - 1.0))
                if ann.get("area", 1) <= 0 or x2 <= x1 or y2 <= y1:
                    self.num_dropped_boxes += 1
                    continue
                kpts = np.asarray(ann.get("keypoints", [0] * 3 * k), dtype=np.float32).reshape(k, 3)
                if kpts.max() <= 0 or ann.get("num_keypoints", 1) == 0:
                    self.num_without_keypoints += 1
                    continue
                visible = (kpts[:, 2] > 0).astype(np.float32)  # v = 1 and v = 2 both count, as in mmpose
                sample = self._sample(img, (x1, y1, x2 - x1, y2 - y1), kpts[:, :2] * visible[:, None], visible, 1.0,
                                      ann.get("area", (x2 - x1) * (y2 - y1)), ann.get("id"))
                if shift_rng is not None:
                    sample["center"] = shift_box_center(sample["center"], x2 - x1, y2 - y1, shift_rng,
                                                        self.augment.box_shift_prob)
                samples.append(sample)
        return samples

    def _detection_samples(self, detections, min_box_score: float) -> list[dict]:
        dets = _load_json(detections, "detection file")
        source = f"detection file {detections}"
        if not isinstance(dets, list):
            raise ValueError(f"{source}: expected a JSON list of {{image_id, category_id, bbox, score}}, "
                             f"got {type(dets).__name__}")
        entries = list(person_detections(dets, min_score=min_box_score, source=source))
        for i, image_id, _, _ in entries:
            if image_id not in self.coco.imgs:
                raise ValueError(f"{source}: entry {i} has image_id {image_id!r}, which is not in {self.ann_file}")
        boxes = detection_boxes(entries, source=source, keep_empty=True)
        k = self.keypoint_set.num_keypoints
        samples = []
        for (_, image_id, score, _), (x, y, w, h, _) in zip(entries, boxes):
            img = self.coco.imgs[image_id]
            if w <= 0 or h <= 0 or x >= img["width"] or y >= img["height"] or x + w <= 0 or y + h <= 0:
                self.num_dropped_boxes += 1
                continue
            samples.append(self._sample(img, (x, y, w, h), np.zeros((k, 2), np.float32),
                                        np.zeros(k, np.float32), score, w * h))
        return samples

    def check_images(self) -> None:
        """A FileNotFoundError, before any image is read, when image files the samples need are missing: how many,
        the first, and the folder they were looked for in (existence only: a stat per image)."""
        files = sorted({str(s["file"]) for s in self.samples})
        missing = [f for f in files if not os.path.isfile(f)]
        if missing:
            raise FileNotFoundError(f"{len(missing)} of the {len(files)} images {self.ann_file} names are missing "
                                    f"(the first: {missing[0]}); is the image folder {self.img_prefix} right?")

    # ----------------------------------------------------------------------------------- access
    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> dict:
        s = self.samples[index]
        image = read_image(s["file"])
        if s["size"] is not None and image.shape[:2] != s["size"]:
            raise ValueError(f"image {s['file']} is {image.shape[1]}x{image.shape[0]} (WxH) but "
                             f"{self.ann_file} says {s['size'][1]}x{s['size'][0]}")
        if self.train:
            rng = np.random.default_rng([self.seed, self.epoch, index])
            out = train_transform(image, s["keypoints"], s["visible"], s["center"], s["scale"], rng=rng,
                                  keypoint_set=self.keypoint_set, input_size=self.input_size, params=self.augment)
        else:
            out = eval_transform(image, s["keypoints"], s["visible"], s["center"], s["scale"],
                                 input_size=self.input_size)
        return {
            "image": torch.from_numpy(out.image),
            "keypoints": torch.from_numpy(out.keypoints),
            "target_weight": torch.from_numpy(out.target_weight),
            "visible": torch.from_numpy(out.visible),
            "center": torch.from_numpy(out.center),
            "scale": torch.from_numpy(out.scale),
            "image_id": int(s["image_id"]),
            "box_score": s["box_score"],
            "area": s["area"],
            "index": int(index),
        }
