"""Bottom-up prediction on whole images: every person of an image, no boxes.

`predict_people` resizes an image as the original's test time does (`data.bottomup_resize`), runs the
model (batch 1, flip test as asked) and returns its people in the image's pixels; `predict_image_bottomup`
is `srpose-fast predict` for bottom-up models: a JSON of the people and an overlay PNG.
"""
from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import torch

from ..codecs.bottomup_decode import BottomUpPoses
from ..data.bottomup_resize import bottomup_resize
from ..data.coco import read_image
from .checkpoint import atomic_write
from .visualize import draw_pose


def _device(model) -> torch.device:
    return next(model.parameters()).device


@torch.no_grad()
def predict_people(model, image_rgb: np.ndarray, *, flip_test: bool = True, backend: str = "auto") -> BottomUpPoses:
    """The people of one uint8 RGB image (h, w, 3), keypoints in its pixels."""
    inputs, geometry = bottomup_resize(image_rgb, model.codec.input_size)
    images = torch.from_numpy(inputs)[None].to(_device(model))
    return model.predict(images, flip_test=flip_test, center=geometry.center, scale=geometry.scale,
                         backend=backend)[0]


def people_json(poses: BottomUpPoses) -> list[dict]:
    """[{"keypoints": [[x, y, score], ...], "score"}, ...] in the decode's order."""
    return [{"keypoints": [[float(x), float(y), float(s)] for (x, y), s in zip(kpts, scores)], "score": float(score)}
            for kpts, scores, score in zip(poses.keypoints, poses.keypoint_scores, poses.scores)]


def predict_image_bottomup(model, image_path: str | Path, *, flip_test: bool = True, backend: str = "auto",
                           out_dir: str | Path | None = None, threshold: float = 0.2) -> list[dict]:
    """`people_json` of every person in the image; with `out_dir`, `<stem>_keypoints.json` and
    `<stem>_overlay.png` there (keypoints with a score above `threshold` drawn)."""
    image_bgr = read_image(image_path)
    poses = predict_people(model, np.ascontiguousarray(image_bgr[:, :, ::-1]), flip_test=flip_test, backend=backend)
    results = people_json(poses)
    if out_dir is not None:
        stem = Path(image_path).stem
        text = json.dumps(results, indent=1).encode()
        atomic_write(Path(out_dir) / f"{stem}_keypoints.json", lambda f: f.write(text))
        canvas = image_bgr
        for kpts, scores in zip(poses.keypoints, poses.keypoint_scores):
            canvas = draw_pose(canvas, kpts, scores, model.keypoint_set, threshold=threshold)
        ok, png = cv2.imencode(".png", canvas)
        if not ok:
            raise ValueError(f"could not encode the overlay of {image_path} as PNG")
        atomic_write(Path(out_dir) / f"{stem}_overlay.png", lambda f: f.write(png.tobytes()))
    return results
