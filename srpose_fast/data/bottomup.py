"""Bottom-up COCO-format keypoint data set: one sample per image with all its people (mmpose 0.x
`BottomUpCocoDataset` semantics, SPEC.md section 6).

- Images: for training, those with at least one annotation of any kind; for evaluation, all.
- People: annotations with iscrowd 0 or num_keypoints > 0 (their joints feed the targets); more than
  `max_people` in a training image is an IndexError, as in the original.
- Loss mask: 0 on crowd regions and on non-crowd people with num_keypoints 0
  (`codecs.bottomup_targets.ignore_mask`), warped with the image.

Training samples (`train=True`) are augmented (`bottomup_transforms`) and hold `image` (3, S, S) float32
ImageNet-normalised RGB, `joints` (max_people, K, 3) float32 (x, y, v) in heatmap pixels (people padded
with zeros), `mask` (R, R) float32 of {0, 1}, `image_id` and `index`; the loss makes the targets from
them (`ops.bottomup_loss`). Evaluation samples (`train=False`) hold the image as read, uint8 RGB (h, w, 3),
with `image_id`, `file_name`, `height` and `width`: the bottom-up evaluator resizes it.

Training randomness is drawn from `numpy.random.default_rng([seed, epoch, index])`; call `set_epoch`
each epoch for fresh augmentation.
"""
from __future__ import annotations

import contextlib
import io
from pathlib import Path

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from ..codecs.bottomup_targets import MAX_PEOPLE, ignore_mask
from ..keypoint_sets import COCO, KeypointSet, get_keypoint_set
from .bottomup_transforms import bottomup_train_transform
from .coco import _load_json, read_image
from .transforms import normalize_image


class BottomUpCocoDataset(Dataset):
    """Whole images from a COCO-format keypoint file.

    Args:
        ann_file, img_prefix: the annotation JSON and the folder of its images.
        keypoint_set: "coco" | "mpii" | "crowdpose" or a KeypointSet (K and the flip indices).
        input_size: the square training input S (512 in the original); heatmap_size: the square map R
            the joints and the mask are given in (S for the SR head, S / 4 for the baseline).
        train: augmented training samples, else evaluation samples (see the module docstring).
    """

    def __init__(self, ann_file, img_prefix, *, keypoint_set: KeypointSet | str = COCO, input_size: int = 512,
                 heatmap_size: int | None = None, train: bool = True, seed: int = 0, max_people: int = MAX_PEOPLE):
        self.ann_file = Path(ann_file)
        self.img_prefix = Path(img_prefix)
        self.keypoint_set = get_keypoint_set(keypoint_set)
        self.input_size = int(input_size)
        self.heatmap_size = self.input_size if heatmap_size is None else int(heatmap_size)
        if self.input_size <= 0 or self.heatmap_size <= 0:
            raise ValueError(f"input_size and heatmap_size must be positive, got {input_size} and {heatmap_size}")
        self.train = train
        self.seed = seed
        self.max_people = max_people
        self.epoch = 0

        data = _load_json(self.ann_file, "annotation file")
        if not isinstance(data, dict) or not isinstance(data.get("images"), list) \
                or not isinstance(data.get("annotations"), list):
            raise ValueError(f"annotation file {self.ann_file}: expected a JSON object with 'images' and "
                             f"'annotations' lists")
        from pycocotools.coco import COCO as _COCOApi

        self.coco = _COCOApi()
        self.coco.dataset = data
        with contextlib.redirect_stdout(io.StringIO()):
            self.coco.createIndex()
        self.image_ids = sorted(self.coco.imgs)
        if train:
            self.image_ids = [i for i in self.image_ids if self.coco.getAnnIds(imgIds=i, iscrowd=None)]
            for image_id in self.image_ids:
                people = len(self._people(image_id))
                if people > max_people:
                    raise IndexError(f"annotation file {self.ann_file}: image {image_id} has {people} people, "
                                     f"more than max_people = {max_people}")

    def _annotations(self, image_id: int) -> list[dict]:
        return self.coco.loadAnns(self.coco.getAnnIds(imgIds=image_id, iscrowd=None))

    def _people(self, image_id: int) -> list[dict]:
        return [a for a in self._annotations(image_id) if not a.get("iscrowd", 0) or a.get("num_keypoints", 0) > 0]

    def _joints(self, people: list[dict]) -> np.ndarray:
        k = self.keypoint_set.num_keypoints
        joints = np.zeros((len(people), k, 3), np.float32)
        for i, ann in enumerate(people):
            values = ann.get("keypoints") or [0.0] * 3 * k
            if len(values) != 3 * k:
                raise ValueError(f"annotation file {self.ann_file}: annotation {ann.get('id')} has {len(values)} "
                                 f"keypoint values, keypoint set {self.keypoint_set.name!r} needs {3 * k}")
            joints[i] = np.asarray(values, np.float32).reshape(k, 3)
        return joints

    def _image(self, image_id: int) -> tuple[dict, np.ndarray]:
        info = self.coco.imgs[image_id]
        path = self.img_prefix / info["file_name"]
        image = read_image(path)
        if image.shape[:2] != (info["height"], info["width"]):
            raise ValueError(f"image {path} is {image.shape[1]}x{image.shape[0]} (WxH) but {self.ann_file} "
                             f"says {info['width']}x{info['height']}")
        return info, cv2.cvtColor(image, cv2.COLOR_BGR2RGB)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.image_ids)

    def __getitem__(self, index: int) -> dict:
        image_id = self.image_ids[index]
        info, image = self._image(image_id)
        if not self.train:
            return {"image": image, "image_id": int(image_id), "file_name": info["file_name"],
                    "height": int(info["height"]), "width": int(info["width"])}
        mask = ignore_mask(self._annotations(image_id), image.shape[0], image.shape[1])
        rng = np.random.default_rng([self.seed, self.epoch, index])
        sample = bottomup_train_transform(image, self._joints(self._people(image_id)), mask, rng=rng,
                                          input_size=self.input_size, heatmap_size=self.heatmap_size,
                                          flip_indices=self.keypoint_set.flip_indices)
        joints = np.zeros((self.max_people, self.keypoint_set.num_keypoints, 3), np.float32)
        joints[:len(sample.joints)] = sample.joints
        return {"image": torch.from_numpy(normalize_image(sample.image)), "joints": torch.from_numpy(joints),
                "mask": torch.from_numpy(sample.mask), "image_id": int(image_id), "index": int(index)}
