"""`srpose-fast predict`: one image and person boxes in, keypoints JSON and an overlay PNG out."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np
import torch

from ..data.coco import read_image
from ..codecs.transforms import box_to_center_scale
from ..data.transforms import eval_transform
from .visualize import draw_pose


def parse_boxes(boxes: Sequence[Sequence[float]], width: int, height: int) -> np.ndarray:
    """Boxes (x, y, w, h) as an (M, 4) array, clipped to the image; a clear error for empty or degenerate ones."""
    array = np.asarray(boxes, dtype=np.float64).reshape(-1, 4) if len(boxes) else np.zeros((0, 4))
    if len(array) == 0:
        raise ValueError("predict needs at least one person box (x, y, w, h)")
    x0 = np.clip(array[:, 0], 0, width - 1)
    y0 = np.clip(array[:, 1], 0, height - 1)
    x1 = np.clip(array[:, 0] + array[:, 2], 0, width - 1)
    y1 = np.clip(array[:, 1] + array[:, 3], 0, height - 1)
    clipped = np.stack([x0, y0, x1 - x0, y1 - y0], axis=1)
    bad = np.flatnonzero((clipped[:, 2] <= 1) | (clipped[:, 3] <= 1))
    if len(bad):
        raise ValueError(f"box {array[bad[0]].tolist()} lies outside the {width}x{height} image or is empty")
    return clipped


@torch.no_grad()
def predict_image(model, image_path: str | Path, boxes: Sequence[Sequence[float]], *, method: str = "shift",
                  flip_test: bool = True, out_dir: str | Path | None = None, threshold: float = 0.2) -> list[dict]:
    """Keypoints of each boxed person: a list of {"box", "keypoints": [[x, y, score], ...], "score"}.

    With `out_dir`, writes `<stem>_keypoints.json` and `<stem>_overlay.png` there.
    """
    image = read_image(image_path)
    height, width = image.shape[:2]
    boxes = parse_boxes(boxes, width, height)
    height_in, width_in = model.input_size
    centers, scales = box_to_center_scale(torch.from_numpy(boxes), width_in / height_in)
    num_keypoints = model.keypoint_set.num_keypoints
    crops = [torch.from_numpy(eval_transform(image, np.zeros((num_keypoints, 2)), np.zeros(num_keypoints),
                                             center.numpy(), scale.numpy(), input_size=model.input_size).image)
             for center, scale in zip(centers, scales)]
    device = next(model.parameters()).device
    keypoints, scores = model.predict(torch.stack(crops).to(device), flip_test=flip_test, method=method,
                                      center=centers.to(device), scale=scales.to(device))
    keypoints, scores = keypoints.cpu().numpy(), scores.cpu().numpy()
    results = []
    for box, kpts, kscores in zip(boxes, keypoints, scores):
        confident = kscores[kscores > threshold]
        results.append({"box": [float(v) for v in box],
                        "keypoints": [[float(x), float(y), float(s)] for (x, y), s in zip(kpts, kscores)],
                        "score": float(confident.mean()) if len(confident) else 0.0})
    if out_dir is not None:
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        stem = Path(image_path).stem
        (out_dir / f"{stem}_keypoints.json").write_text(json.dumps(results, indent=1))
        canvas = image
        for (x, y, w, h), kpts, kscores in zip(boxes, keypoints, scores):
            cv2.rectangle(canvas, (int(x), int(y)), (int(x + w), int(y + h)), (200, 200, 200), 1)
            canvas = draw_pose(canvas, kpts, kscores, model.keypoint_set, threshold=threshold)
        cv2.imwrite(str(out_dir / f"{stem}_overlay.png"), canvas)
    return results
