"""A synthetic COCO person-keypoint set for bottom-up models: several figures per image, with the two kinds of
unlabelled people COCO has, so the bottom-up loss mask has something to do.

Each image is `data.synthetic.render_image`'s (articulated figures, occlusion, truncation, textured
backgrounds; see that module), and then:
- a crowd region, with probability `CROWD_PROB`: a patch of several small figures (another rendered image,
  scaled down) pasted where it covers no annotated person, annotated as one `iscrowd: 1` person without
  keypoints whose segmentation is the patch's RLE (as COCO's crowds);
- people too cut off to label: a figure with fewer than `MIN_LABELLED` labelled keypoints keeps its box
  but loses its keypoints (`num_keypoints: 0`, a polygon segmentation), as COCO's small or hidden people.
The bottom-up loss ignores both regions; COCOeval ignores both annotations.

Deterministic in the seed and the image index, as `generate_synthetic_coco`.
"""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from ..keypoint_sets import COCO
from .synthetic import generate_synthetic_coco, render_image

CROWD_PROB = 0.25
CROWD_PEOPLE = 6  # figures drawn in a crowd patch (at most)
CROWD_SIDE = (0.25, 0.4)  # the patch's side as a fraction of the image's shorter side
PLACEMENT_TRIES = 8
MIN_LABELLED = 4


def _overlaps(box, people) -> bool:
    x0, y0, x1, y1 = box
    for _, (bx, by, bw, bh), *_ in people:
        if x0 < bx + bw and bx < x1 and y0 < by + bh and by < y1:
            return True
    return False


def _crowd_region(rng: np.random.Generator, image: np.ndarray, people: list) -> tuple | None:
    """Paste a patch of small figures where no annotated person is; return its annotation or None."""
    h, w = image.shape[:2]
    side = int(min(h, w) * rng.uniform(*CROWD_SIDE))
    if side < 16:
        return None
    patch, _ = render_image(rng, (2 * side, 2 * side), CROWD_PEOPLE)  # drawn at twice the size, then shrunk
    patch = cv2.resize(patch, (side, side), interpolation=cv2.INTER_AREA)
    for _ in range(PLACEMENT_TRIES):
        x0, y0 = int(rng.integers(0, w - side + 1)), int(rng.integers(0, h - side + 1))
        if not _overlaps((x0, y0, x0 + side, y0 + side), people):
            break
    else:
        return None
    image[y0:y0 + side, x0:x0 + side] = patch
    region = np.zeros((h, w), np.uint8)
    region[y0:y0 + side, x0:x0 + side] = 1
    return (np.zeros((COCO.num_keypoints, 3)), [float(x0), float(y0), float(side), float(side)], float(side * side),
            {"iscrowd": 1, "num_keypoints": 0, "segmentation": uncompressed_rle(region)})


def uncompressed_rle(binary: np.ndarray) -> dict:
    """COCO's uncompressed RLE of a 0/1 mask (h, w), as its crowd annotations store it: run lengths over the
    column-major pixels, starting with a run of zeros."""
    flat = np.asarray(binary, dtype=bool).flatten(order="F")
    changes = np.flatnonzero(flat[1:] != flat[:-1]) + 1
    bounds = np.concatenate([[0], changes, [flat.size]])
    counts = np.diff(bounds).tolist()
    if flat.size and flat[0]:
        counts = [0] + counts
    return {"size": [int(binary.shape[0]), int(binary.shape[1])], "counts": counts}


def _unlabelled(person: tuple) -> tuple:
    """The same person without keypoints: box kept, segmentation the box's polygon."""
    kpts, (x, y, bw, bh), area = person[:3]
    polygon = [x, y, x + bw, y, x + bw, y + bh, x, y + bh]
    return (np.zeros_like(kpts), [x, y, bw, bh], area,
            {"num_keypoints": 0, "segmentation": [[round(float(v), 2) for v in polygon]]})


def render_multi_person(rng: np.random.Generator, image_size: tuple[int, int], max_people: int):
    """`render_image` plus crowd regions and keypoint-less people (see the module docstring)."""
    image, people = render_image(rng, image_size, max_people)
    people = [p if (p[0][:, 2] > 0).sum() >= MIN_LABELLED else _unlabelled(p) for p in people]
    if rng.random() < CROWD_PROB:
        crowd = _crowd_region(rng, image, people)
        if crowd is not None:
            people.append(crowd)
    return image, people


def generate_synthetic_bottomup(out_dir, *, num_images: int, split: str = "train", seed: int = 0,
                                image_size: tuple[int, int] = (128, 160), max_people: int = 4,
                                image_format: str = "jpg", progress: bool = True) -> Path:
    """Write the multi-person set as `generate_synthetic_coco` writes its own (same layout); return the JSON's path."""
    return generate_synthetic_coco(out_dir, num_images=num_images, split=split, seed=seed, image_size=image_size,
                                   max_people=max_people, image_format=image_format, progress=progress,
                                   render=render_multi_person)

