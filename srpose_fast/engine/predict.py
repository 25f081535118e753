"""Pose inference on whole images, batched: the people of each image, from its boxes or found by the model.

`predict_stream` takes (tag, BGR image, boxes) items and yields (tag, `PosePrediction`) in the same order.
What a model does with an image follows its kind (`model.kind`, "top_down" unless the model says otherwise):
- top-down: each box (x, y, w, h, score) becomes a crop (mmpose's box-to-center/scale with 1.25 padding, affine
  crop, ImageNet normalisation); crops of consecutive images share batches of `batch_size`; `model.predict`
  decodes them to image pixels. An image without boxes (None) is one box, the whole image, as mmpose's
  `inference_topdown(bboxes=None)`. Instance score: box score x the mean of the keypoint scores above 0.2
  (`rescoring.rescore`, what COCO evaluation ranks by).
- bottom-up: each whole image goes through `bottomup_predict.predict_people` (the model finds the people;
  boxes do not apply).
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

import numpy as np
import torch

from ..codecs.transforms import box_to_center_scale
from ..data.boxes import whole_image_box
from ..data.transforms import crop
from ..models.pose_model import BOTTOM_UP, TOP_DOWN, model_kind
from .rescoring import rescore

@dataclass
class PosePrediction:
    """The people of one image, P of them, in its pixels.

    keypoints (P, K, 2) float32 (x, y); keypoint_scores (P, K); scores (P,): the instance score (top-down:
    box score x mean keypoint score above 0.2; bottom-up: the model's person score); boxes (P, 4) x, y, w, h
    (top-down: the boxes given; bottom-up: the keypoints' extent); box_scores (P,); heatmaps (P, h, w): each
    person's maximum over its keypoints' heatmaps, when asked for, with center / scale (P, 2) placing them
    (top-down only).
    """
    keypoints: np.ndarray
    keypoint_scores: np.ndarray
    scores: np.ndarray
    boxes: np.ndarray
    box_scores: np.ndarray
    center: np.ndarray | None = None
    scale: np.ndarray | None = None
    heatmaps: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.scores)


def _device(model) -> torch.device:
    return next(model.parameters()).device


def _crop_boxes(image: np.ndarray, boxes: np.ndarray, input_size: tuple[int, int]):
    """Normalised crops (M, 3, H, W) float32 and their center, scale (M, 2) for boxes (M, 5)."""
    height, width = input_size
    center, scale = (t.numpy() for t in box_to_center_scale(torch.from_numpy(boxes[:, :4]), width / height))
    none = np.zeros((0, 2), np.float32)
    crops = [crop(image, none, np.zeros(0), c, s, 0.0, input_size).image for c, s in zip(center, scale)]
    return np.stack(crops) if crops else np.zeros((0, 3, height, width), np.float32), center, scale


def _boxes_in_image(boxes: np.ndarray | None, image: np.ndarray) -> np.ndarray:
    """(M, 5) boxes of the image, the whole image for None; boxes that miss the image entirely are dropped."""
    height, width = image.shape[:2]
    if boxes is None:
        return whole_image_box(height, width)
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 5)
    x, y, w, h = boxes[:, :4].T
    inside = (x < width) & (y < height) & (x + w > 0) & (y + h > 0) & (w > 0) & (h > 0)
    return boxes[inside]


class _TopDownBatcher:
    """Crops of consecutive images gathered into batches; each image's prediction once all its crops ran."""

    def __init__(self, model, *, batch_size: int, heatmaps: bool, predict_args: dict):
        self.model, self.batch_size, self.heatmaps, self.predict_args = model, batch_size, heatmaps, predict_args
        self.pending: list[tuple[Any, np.ndarray, dict]] = []  # (tag, boxes, crops) waiting for the model
        self.queued = 0

    def add(self, tag, image: np.ndarray, boxes: np.ndarray | None) -> Iterator[tuple[Any, PosePrediction]]:
        boxes = _boxes_in_image(boxes, image)
        crops, center, scale = _crop_boxes(image, boxes, self.model.input_size)
        self.pending.append((tag, boxes, {"crops": crops, "center": center, "scale": scale}))
        self.queued += len(boxes)
        if self.queued >= self.batch_size:
            yield from self.flush()

    @torch.no_grad()
    def _run(self, crops: np.ndarray, center: np.ndarray, scale: np.ndarray) -> dict[str, np.ndarray]:
        device = _device(self.model)
        images = torch.from_numpy(crops).to(device)
        center, scale = (torch.from_numpy(t).float().to(device) for t in (center, scale))
        keypoints, scores = self.model.predict(images, center=center, scale=scale, **self.predict_args)
        out = {"keypoints": keypoints.float().cpu().numpy(), "keypoint_scores": scores.float().cpu().numpy()}
        if self.heatmaps:
            was_training = self.model.training
            out["heatmaps"] = self.model.eval()(images).amax(1).float().cpu().numpy()  # eval: the final maps
            self.model.train(was_training)
        return out

    def _nothing(self) -> dict[str, np.ndarray]:
        """`_run`'s outputs for no crop at all (every pending image without a box)."""
        k = self.model.keypoint_set.num_keypoints
        return {"keypoints": np.zeros((0, k, 2), np.float32), "keypoint_scores": np.zeros((0, k), np.float32),
                "heatmaps": np.zeros((0, *self.model.heatmap_size), np.float32)}

    def flush(self) -> Iterator[tuple[Any, PosePrediction]]:
        if not self.pending:
            return
        crops, center, scale = (np.concatenate([p[key] for _, _, p in self.pending])
                                for key in ("crops", "center", "scale"))
        chunks = [self._run(crops[i:i + self.batch_size], center[i:i + self.batch_size], scale[i:i + self.batch_size])
                  for i in range(0, len(crops), self.batch_size)] or [self._nothing()]
        outputs = {key: np.concatenate([c[key] for c in chunks]) for key in chunks[0]}
        start = 0
        for tag, boxes, part in self.pending:
            rows = slice(start, start + len(boxes))
            start += len(boxes)
            yield tag, PosePrediction(
                keypoints=outputs["keypoints"][rows], keypoint_scores=outputs["keypoint_scores"][rows],
                scores=rescore(boxes[:, 4], outputs["keypoint_scores"][rows]).astype(np.float32),
                boxes=boxes[:, :4].astype(np.float32), box_scores=boxes[:, 4].astype(np.float32),
                center=part["center"], scale=part["scale"],
                heatmaps=outputs["heatmaps"][rows] if self.heatmaps else None)
        self.pending, self.queued = [], 0


def _bottom_up(model, image: np.ndarray, *, flip_test: bool, backend: str | None) -> PosePrediction:
    from .bottomup_predict import predict_people

    poses = predict_people(model, np.ascontiguousarray(image[:, :, ::-1]), flip_test=flip_test,
                           backend=backend)
    low, high = (poses.keypoints.min(1), poses.keypoints.max(1)) if len(poses) else (np.zeros((0, 2)),) * 2
    return PosePrediction(keypoints=poses.keypoints, keypoint_scores=poses.keypoint_scores, scores=poses.scores,
                          boxes=np.concatenate([low, high - low], axis=1).astype(np.float32),
                          box_scores=poses.scores)


def predict_stream(model, items: Iterable[tuple[Any, np.ndarray, np.ndarray | None]], *, batch_size: int = 32,
                   flip_test: bool = True, method: str | None = None, backend: str | None = None,
                   heatmaps: bool = False) -> Iterator[tuple[Any, PosePrediction]]:
    """(tag, prediction) for each (tag, BGR uint8 image (H, W, 3), boxes) item, in order (see the module
    docstring). boxes: (M, 5) x, y, w, h, score (boxes missing the image are dropped), or None: the whole
    image (top-down), the model's people (bottom-up). method, backend: None = the model's. heatmaps: also
    each person's heatmap (top-down models)."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    kind = model_kind(model)
    if kind == BOTTOM_UP:
        if heatmaps:
            raise ValueError("heatmap overlays are for top-down models (a bottom-up model's maps cover the "
                             "whole image and its people are grouped on the host)")
        for tag, image, boxes in items:
            if boxes is not None:
                raise ValueError("this is a bottom-up model: it finds the people itself, boxes do not apply")
            yield tag, _bottom_up(model, image, flip_test=flip_test, backend=backend)
        return
    if kind != TOP_DOWN:
        raise ValueError(f"the model's kind {kind!r} is neither {TOP_DOWN!r} nor {BOTTOM_UP!r}")
    batcher = _TopDownBatcher(model, batch_size=batch_size, heatmaps=heatmaps,
                              predict_args={"flip_test": flip_test, "method": method, "backend": backend})
    for tag, image, boxes in items:
        yield from batcher.add(tag, image, boxes)
    yield from batcher.flush()


def predict_image(model, image_path: str | Path, boxes: Sequence[Sequence[float]], *, method: str = "shift",
                  flip_test: bool = True, out_dir: str | Path | None = None, threshold: float = 0.2) -> list[dict]:
    """Deprecated: `srpose_fast.inference.predict_poses`, and `srpose-fast predict` for files on disk.

    Keypoints of each boxed (x, y, w, h) person: [{"box", "keypoints": [[x, y, score], ...], "score"}]; with
    `out_dir`, `<stem>_keypoints.json` and `<stem>_overlay.png` there."""
    from ..data.boxes import to_xywh
    from ..data.coco import read_image
    from .pose_outputs import people_json, write_overlay

    warnings.warn("engine.predict.predict_image is deprecated; use srpose_fast.inference.predict_poses",
                  DeprecationWarning, stacklevel=2)
    image = read_image(image_path)
    given = to_xywh(boxes, what="predict_image boxes")
    inside = _boxes_in_image(given, image)
    if len(inside) < len(given) or not len(given):
        raise ValueError(f"predict_image needs boxes inside the {image.shape[1]}x{image.shape[0]} image, got "
                         f"{np.asarray(boxes).tolist()}")
    (_, prediction), = predict_stream(model, [(None, image, inside)], method=method, flip_test=flip_test)
    results = people_json(prediction)
    if out_dir is not None:
        import json

        from .checkpoint import atomic_write

        stem = Path(image_path).stem
        text = json.dumps(results, indent=1).encode()
        atomic_write(Path(out_dir) / f"{stem}_keypoints.json", lambda f: f.write(text))
        write_overlay(Path(out_dir) / f"{stem}_overlay.png", image, prediction, model.keypoint_set,
                      kpt_thr=threshold)
    return results
