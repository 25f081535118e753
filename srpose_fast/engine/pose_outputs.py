"""What `srpose-fast predict` writes under --out: one COCO results file per run, the image list, overlays.

`PoseWriter` takes each image's `PosePrediction` as it comes and writes, under its folder:
- `results.json`: COCO keypoint results, one entry per person: image_id, category_id 1, keypoints
  [x1, y1, s1, ...] in image pixels, score (the instance score `srpose-fast score` and COCO rank by), and
  bbox [x, y, w, h], the box the person was cropped from (its extent for bottom-up models);
- `images.json`: COCO "images" entries, {id, file_name, width, height}, plus "frame" for a video's frames:
  which image each image_id is (ids from the detection file, else 1, 2, ... in input order);
- overlays, keypoints above --kpt-thr drawn: `overlays/<file name>` for images; for a video, the annotated
  video `<video stem>_pose.mp4`.
Both JSON files are written atomically when the writer closes, also when the run is interrupted (the
images done so far). A warning says how many overlays drew nothing (every score under the threshold).
"""
from __future__ import annotations

import json
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from ..codecs.conventions import PIXEL_STD
from ..keypoint_sets import KeypointSet
from .checkpoint import atomic_write
from .coco_metrics import keypoint_results
from .predict import PosePrediction
from .visualize import draw_pose, heatmap_overlay

RESULTS_FILE = "results.json"
IMAGES_FILE = "images.json"
OVERLAY_DIR = "overlays"


@dataclass(frozen=True)
class OverlayOptions:
    kpt_thr: float = 0.3  # keypoints with a score above it are drawn (mmpose's demos: 0.3)
    radius: int = 3
    thickness: int = 2
    skeleton: bool = True
    heatmap: bool = False  # paint each person's heatmap under the keypoints (top-down models)
    boxes: bool = True


def people_json(prediction: PosePrediction) -> list[dict]:
    """[{"box": [x, y, w, h], "keypoints": [[x, y, score], ...], "score"}] of one image's people."""
    return [{"box": [float(v) for v in box], "keypoints": [[float(x), float(y), float(s)] for (x, y), s in
                                                          zip(kpts, kscores)], "score": float(score)}
            for box, kpts, kscores, score in zip(prediction.boxes, prediction.keypoints, prediction.keypoint_scores,
                                                 prediction.scores)]


def coco_results(image_id: int, prediction: PosePrediction) -> list[dict]:
    """COCO keypoint results of one image's people, with each person's bbox."""
    if not len(prediction):
        return []
    rows = keypoint_results(np.full(len(prediction), image_id), prediction.keypoints, prediction.keypoint_scores,
                            prediction.scores)
    for row, box in zip(rows, prediction.boxes):
        row["bbox"] = [float(v) for v in box]
    return rows


def draw_prediction(image_bgr: np.ndarray, prediction: PosePrediction, keypoint_set: KeypointSet,
                    options: OverlayOptions = OverlayOptions()) -> np.ndarray:
    """The image with the prediction drawn: heatmaps (if asked and present), boxes, keypoints and limbs."""
    canvas = image_bgr
    if options.heatmap and prediction.heatmaps is not None:
        canvas = heatmap_overlay(canvas, prediction.heatmaps, prediction.center, prediction.scale,
                                 pixel_std=PIXEL_STD)
    else:
        canvas = canvas.copy()
    if options.boxes:
        for x, y, w, h in prediction.boxes:
            cv2.rectangle(canvas, (int(x), int(y)), (int(x + w), int(y + h)), (200, 200, 200), 1)
    for kpts, kscores in zip(prediction.keypoints, prediction.keypoint_scores):
        canvas = draw_pose(canvas, kpts, kscores, keypoint_set, threshold=options.kpt_thr, radius=options.radius,
                           thickness=options.thickness, skeleton=options.skeleton)
    return canvas


def write_image(path: str | Path, image_bgr: np.ndarray) -> Path:
    """Encode by the file's suffix (PNG, JPEG, ...) and write atomically."""
    path = Path(path)
    ok, data = cv2.imencode(path.suffix or ".png", image_bgr)
    if not ok:
        raise ValueError(f"could not encode an image as {path.suffix or '.png'} for {path}")
    return atomic_write(path, lambda f: f.write(data.tobytes()))


def write_overlay(path: str | Path, image_bgr: np.ndarray, prediction: PosePrediction, keypoint_set: KeypointSet,
                  **options) -> Path:
    return write_image(path, draw_prediction(image_bgr, prediction, keypoint_set, OverlayOptions(**options)))


def draws_nothing(prediction: PosePrediction, kpt_thr: float) -> bool:
    """True when an overlay of this prediction shows no keypoint although it has people."""
    return len(prediction) > 0 and not (prediction.keypoint_scores > kpt_thr).any()


class PoseWriter:
    """Collects one run's predictions and writes them (see the module docstring); use as a context manager.

    overlays: None (no overlays), or the options; video_fps: the input is a video (its annotated copy is
    written at that rate)."""

    def __init__(self, out_dir: str | Path, keypoint_set: KeypointSet, *, overlays: OverlayOptions | None,
                 video_name: str | None = None, video_fps: float = 0.0):
        self.out_dir = Path(out_dir)
        self.keypoint_set = keypoint_set
        self.overlays = overlays
        self.video_name, self.video_fps = video_name, video_fps
        self.results: list[dict] = []
        self.images: list[dict] = []
        self.empty_overlays: list[str] = []
        self.highest_score = 0.0
        self._video: cv2.VideoWriter | None = None
        self._video_tmp: Path | None = None

    @property
    def video_path(self) -> Path | None:
        return None if self.video_name is None else self.out_dir / f"{Path(self.video_name).stem}_pose.mp4"

    def add(self, image_id: int, name: str, frame_index: int | None, image_bgr: np.ndarray,
            prediction: PosePrediction) -> None:
        height, width = image_bgr.shape[:2]
        entry = {"id": int(image_id), "file_name": name, "width": width, "height": height}
        if frame_index is not None:
            entry["frame"] = int(frame_index)
        self.images.append(entry)
        self.results += coco_results(image_id, prediction)
        if self.overlays is None:
            return
        if draws_nothing(prediction, self.overlays.kpt_thr):
            self.empty_overlays.append(name if frame_index is None else f"{name} frame {frame_index}")
            self.highest_score = max(self.highest_score, float(np.nan_to_num(prediction.keypoint_scores).max()))
        canvas = draw_prediction(image_bgr, prediction, self.keypoint_set, self.overlays)
        if self.video_name is None:
            write_image(self.out_dir / OVERLAY_DIR / name, canvas)
        else:
            self._write_frame(canvas)

    def _write_frame(self, canvas: np.ndarray) -> None:
        if self._video is None:
            self.out_dir.mkdir(parents=True, exist_ok=True)
            self._video_tmp = self.video_path.with_name(f".{self.video_path.name}.tmp.mp4")
            self._video = cv2.VideoWriter(str(self._video_tmp), cv2.VideoWriter_fourcc(*"mp4v"), self.video_fps,
                                          (canvas.shape[1], canvas.shape[0]))
            if not self._video.isOpened():
                raise OSError(f"OpenCV cannot write the video {self.video_path} (no mp4v encoder?)")
        self._video.write(canvas)

    def close(self) -> None:
        if self._video is not None:
            self._video.release()
            os.replace(self._video_tmp, self.video_path)
            self._video = None
        for name, data in ((RESULTS_FILE, self.results), (IMAGES_FILE, self.images)):
            text = json.dumps(data).encode()
            atomic_write(self.out_dir / name, lambda f, text=text: f.write(text))
        if self.empty_overlays:
            shown = ", ".join(self.empty_overlays[:3]) + (", ..." if len(self.empty_overlays) > 3 else "")
            warnings.warn(f"{len(self.empty_overlays)} of {len(self.images)} overlays draw no keypoint ({shown}): "
                          f"every score is at most {self.highest_score:.3g}, under --kpt-thr {self.overlays.kpt_thr} "
                          f"(random weights? lower --kpt-thr to see them)", stacklevel=2)

    def __enter__(self) -> "PoseWriter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
