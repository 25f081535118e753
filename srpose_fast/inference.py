"""Poses from Python: `predict_poses(model, images, boxes=None)`, the call `srpose-fast predict` makes.

    from srpose_fast.inference import predict_poses
    model = build_model("srpose_hrnet_w32", checkpoint="srpose_hrnet_w32.pth").eval()
    people = predict_poses(model, "photo.jpg", [[100, 50, 120, 300]])        # xywh boxes
    people.keypoints, people.keypoint_scores                                  # (P, 17, 2), (P, 17)
    batch = predict_poses(model, [frame_a, frame_b], [boxes_a, None])         # BGR arrays; None: whole image

A top-down model crops each box (or the whole image when an image has no boxes, as mmpose's
`inference_topdown(bboxes=None)`), a bottom-up model finds the people itself; crops of several images
share batches (`engine.predict.predict_stream`).
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from .data.boxes import BBOX_FORMATS, to_xywh
from .data.coco import read_image
from .engine.predict import PosePrediction, predict_stream

__all__ = ["PosePrediction", "predict_poses"]


def _one_image(image, index: int) -> np.ndarray:
    if isinstance(image, (str, Path)):
        return read_image(image)
    array = np.asarray(image)
    if array.dtype != np.uint8 or array.ndim != 3 or array.shape[2] != 3:
        raise ValueError(f"image {index}: expected a path or a BGR uint8 array (H, W, 3), as cv2.imread gives, "
                         f"got {array.dtype} of shape {array.shape}")
    return array


def predict_poses(model, images, boxes=None, *, bbox_format: str = "xywh", batch_size: int = 32,
                  flip_test: bool = True, method: str | None = None, backend: str | None = None,
                  progress: bool = False) -> PosePrediction | list[PosePrediction]:
    """The people of one image or of each of a list of images.

    Args:
        model: a `build_model` model (top-down or bottom-up), in eval mode, on its device.
        images: one image or a list: file paths, or BGR uint8 arrays (H, W, 3).
        boxes: for one image, its boxes (M, 4), or (M, 5) with each box's score (1 otherwise); for a list,
            one such entry per image. None (for all, or for one image of a list): the whole image is the box
            (top-down); bottom-up models take no boxes.
        bbox_format: "xywh" (x, y, width, height; COCO's) or "xyxy" (corners; mmpose's and mmdet's).
        batch_size: crops per forward pass.
        flip_test, method, backend: the test settings (method, backend None: the model's).
        progress: a progress bar over the images.
    Returns a `PosePrediction` (keypoints (P, K, 2) image pixels, keypoint_scores (P, K), scores, boxes, ...)
    for one image, a list of them for a list.
    """
    if bbox_format not in BBOX_FORMATS:
        raise ValueError(f"bbox_format must be one of {BBOX_FORMATS}, got {bbox_format!r}")
    single = isinstance(images, (str, Path)) or (isinstance(images, np.ndarray) and images.ndim == 3)
    image_list: Sequence = [images] if single else list(images)
    if boxes is None:
        box_list = [None] * len(image_list)
    else:
        box_list = [boxes] if single else list(boxes)
        if len(box_list) != len(image_list):
            raise ValueError(f"boxes: one entry per image expected, got {len(box_list)} for {len(image_list)} images")
    box_list = [None if b is None else to_xywh(b, bbox_format, what=f"boxes of image {i}")
                for i, b in enumerate(box_list)]
    items = ((i, _one_image(image, i), b) for i, (image, b) in enumerate(zip(image_list, box_list)))
    stream = predict_stream(model, items, batch_size=batch_size, flip_test=flip_test, method=method, backend=backend)
    if progress:
        from tqdm import tqdm

        stream = tqdm(stream, total=len(image_list), desc="predict", unit="image")
    predictions = [prediction for _, prediction in stream]
    return predictions[0] if single else predictions
