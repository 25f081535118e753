"""What `predict` reads: one image, a folder of images or a video (OpenCV), as a stream of BGR frames.

`open_media(path)` tells the three apart (a folder; a video by its suffix; anything else is read as an
image) and returns a `Media`: its kind, its length when known, the video's frame rate, and `frames()`,
which yields `Frame`s (name, frame index, BGR uint8 image) one at a time, so a long video or a large
folder is never held in memory.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import cv2
import numpy as np

from .coco import read_image

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")
VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv")


@dataclass(frozen=True)
class Frame:
    """One image of the input: `name` its file name (relative to the folder; the video's name for a frame),
    `index` its position in the input (the frame number for a video), `image` BGR uint8 (H, W, 3)."""
    name: str
    index: int
    image: np.ndarray


@dataclass(frozen=True)
class Media:
    path: Path
    kind: str  # "image" | "folder" | "video"
    length: int | None  # images or frames; None when a video does not say
    fps: float = 0.0  # videos only
    files: tuple[Path, ...] = ()  # the image files, listed once (none for a video)

    def _name(self, file: Path) -> str:
        return file.relative_to(self.path).as_posix() if self.kind == "folder" else file.name

    def names(self) -> list[str]:
        """The frames' names, read without decoding anything (a video's: its file name, once)."""
        return [self.path.name] if self.kind == "video" else [self._name(f) for f in self.files]

    def frames(self) -> Iterator[Frame]:
        if self.kind == "video":
            yield from _video_frames(self.path)
            return
        for index, file in enumerate(self.files):
            yield Frame(self._name(file), index, read_image(file))


def _folder_images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def _open_video(path: Path) -> cv2.VideoCapture:
    # FFmpeg's own log lines ("moov atom not found") would precede our one-line error; a user's setting wins.
    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")  # AV_LOG_QUIET, read when OpenCV opens FFmpeg
    capture = cv2.VideoCapture(str(path))
    if not capture.isOpened():
        raise ValueError(f"could not open video {path} (OpenCV cannot read it; is it truncated or not a video?)")
    return capture


def _video_frames(path: Path) -> Iterator[Frame]:
    capture = _open_video(path)
    try:
        index = 0
        while True:
            ok, image = capture.read()
            if not ok:
                return
            yield Frame(path.name, index, image)
            index += 1
    finally:
        capture.release()


def open_media(path: str | Path) -> Media:
    """The input at `path`; FileNotFoundError / ValueError name a missing path, an empty folder or a video
    OpenCV cannot open."""
    path = Path(path)
    if path.is_dir():
        images = _folder_images(path)
        if not images:
            raise ValueError(f"folder {path} holds no images ({', '.join(IMAGE_SUFFIXES)})")
        return Media(path, "folder", len(images), files=tuple(images))
    if not path.is_file():
        raise FileNotFoundError(f"no such image, folder or video: {path}")
    if path.suffix.lower() in VIDEO_SUFFIXES:
        capture = _open_video(path)
        count, fps = int(capture.get(cv2.CAP_PROP_FRAME_COUNT)), float(capture.get(cv2.CAP_PROP_FPS))
        capture.release()
        return Media(path, "video", count if count > 0 else None, fps if fps > 0 else 25.0)
    return Media(path, "image", 1, files=(path,))
