"""A synthetic COCO person-keypoint data set: articulated figures drawn with OpenCV.

Each image holds 1..max_people figures at varying scales on a textured background (smooth noise,
gradients or stripes, plus clutter), some cut by the image border, some covered by occluders.
A figure has a head (face with eyes, nose and ears when it faces the camera, hair when it faces
away), a neck, a torso and four two-segment limbs whose lengths and joint angles are drawn from
plausible ranges; the 17 COCO keypoints are its joints. Written as JPEG/PNG images plus
`annotations/person_keypoints_<split>.json` in COCO format.

Visibility follows COCO: 2 = labelled and visible, 1 = labelled but covered (by an occluder,
another figure or the figure's own parts), 0 = not labelled (outside the image, or the face
points of a figure seen from behind), with coordinates (0, 0).

How left and right can be told apart, and why it is not by a fixed colour per side. A
horizontal flip mirrors the pixels and swaps the labels: the limb that was the left arm is called
the right arm, and its colour has not changed. A rule "left limbs are blue" would therefore be
contradicted by every flipped training sample, and a model that learned it would be wrong on
flipped inputs (the flip test). So the side is carried by cues a mirror maps onto the swapped
label, as in real photographs: a figure facing the camera (a face is drawn) has its left limbs
on the image-right side of its body axis, a figure seen from behind (hair, no face) the opposite.
Within a figure the two arms and the two legs still have different colours, so the sides are told
apart and crossing limbs stay separable, but which colour goes to which side is random per figure.

Deterministic: image i of a split is drawn from `numpy.random.default_rng([seed, crc32(split), i])`,
so the same seed gives byte-identical JSON and images, and images do not depend on `num_images`.
"""
from __future__ import annotations

import argparse
import colorsys
import json
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from ..keypoint_sets import COCO


# Body parts; the owner map stores 1 + person * _NUM_PARTS + part.
HEAD, TORSO, L_UPPER_ARM, L_FOREARM, R_UPPER_ARM, R_FOREARM, L_THIGH, L_SHIN, R_THIGH, R_SHIN = range(10)
_NUM_PARTS = 16
_OCCLUDER = np.iinfo(np.uint16).max

# The parts whose pixels show each COCO keypoint (a keypoint covered by anything else is occluded).
_KEYPOINT_PARTS = (
    (HEAD,), (HEAD,), (HEAD,), (HEAD,), (HEAD,),
    (TORSO, L_UPPER_ARM), (TORSO, R_UPPER_ARM),
    (L_UPPER_ARM, L_FOREARM), (R_UPPER_ARM, R_FOREARM),
    (L_FOREARM,), (R_FOREARM,),
    (TORSO, L_THIGH), (TORSO, R_THIGH),
    (L_THIGH, L_SHIN), (R_THIGH, R_SHIN),
    (L_SHIN,), (R_SHIN,),
)

_SKIN = ((60, 90, 140), (90, 130, 190), (130, 170, 225), (45, 65, 105), (110, 150, 205))  # BGR
_SHIFT = 4  # sub-pixel bits for cv2 drawing
_ONE = 1 << _SHIFT

_BACK_FACING_PROB = 0.15
_OCCLUDER_PROB = 0.35  # per figure
_MIN_VISIBLE_AREA = 24  # figures with fewer visible pixels are not annotated


@dataclass
class _Figure:
    keypoints: np.ndarray  # (17, 2) float64
    labelled: np.ndarray  # (17,) bool: False for face points of a figure seen from behind
    height: float
    prims: list = field(default_factory=list)  # (kind, geometry, bgr colour, part), in draw order


def _hsv_bgr(h: float, s: float, v: float) -> tuple[int, int, int]:
    r, g, b = colorsys.hsv_to_rgb(h % 1.0, s, v)
    return int(b * 255), int(g * 255), int(r * 255)


def _shade(colour, f: float) -> tuple[int, int, int]:
    return tuple(int(min(255, c * f)) for c in colour)


def _rot(v: np.ndarray, angle: float) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    return np.array([v[0] * c - v[1] * s, v[0] * s + v[1] * c])


def _two_colours(rng: np.random.Generator) -> tuple[tuple[int, int, int], tuple[int, int, int]]:
    """Two clearly different clothing colours, in random order."""
    h = rng.random()
    s = rng.uniform(0.45, 0.95)
    return (_hsv_bgr(h, s, rng.uniform(0.55, 1.0)),
            _hsv_bgr(h + rng.uniform(0.3, 0.7), rng.uniform(0.45, 0.95), rng.uniform(0.55, 1.0)))


def _sample_figure(rng: np.random.Generator, height: float, pelvis: np.ndarray) -> _Figure:
    deg = np.pi / 180
    # Body frame: `up` from pelvis to neck, `right` = image right of an upright figure (y points down).
    lean = np.clip(rng.normal(0, 12), -35, 35) if rng.random() > 0.08 else rng.uniform(-100, 100)
    lean *= deg
    up = np.array([np.sin(lean), -np.cos(lean)])
    right = np.array([np.cos(lean), np.sin(lean)])
    front = rng.random() >= _BACK_FACING_PROB
    yaw = rng.uniform(-55, 55) * deg
    cy, sy = np.cos(yaw), np.sin(yaw)
    left_sign = 1.0 if front else -1.0  # the figure's left is image-right of its axis when it faces us
    side = {"l": left_sign, "r": -left_sign}

    k = np.zeros((17, 2))
    labelled = np.ones(17, dtype=bool)
    hw, sw = 0.085 * height * cy, 0.115 * height * cy
    neck = pelvis + 0.29 * height * rng.uniform(0.92, 1.05) * up
    k[11], k[12] = pelvis + side["l"] * hw * right, pelvis + side["r"] * hw * right
    k[5], k[6] = neck + side["l"] * sw * right, neck + side["r"] * sw * right

    head_up = _rot(up, np.clip(rng.normal(0, 10), -30, 30) * deg)
    head_right = np.array([-head_up[1], head_up[0]])
    radius = 0.06 * height
    head = neck + 0.115 * height * head_up
    d = sy * 0.55 * radius  # the face slides sideways as the head turns
    k[0] = head + d * head_right - 0.1 * radius * head_up
    k[1] = head + 0.28 * radius * head_up + (0.9 * d + side["l"] * 0.38 * radius * cy) * head_right
    k[2] = head + 0.28 * radius * head_up + (0.9 * d + side["r"] * 0.38 * radius * cy) * head_right
    k[3] = head + 0.05 * radius * head_up + (0.25 * d + side["l"] * 0.97 * radius * cy) * head_right
    k[4] = head + 0.05 * radius * head_up + (0.25 * d + side["r"] * 0.97 * radius * cy) * head_right
    if not front:
        labelled[0:3] = False

    def limb(root, outward, lengths, bend_deg, s):
        """Two segments from `root`; angle measured from 'down' towards the figure's outside."""
        a = outward * deg
        dir1 = np.cos(a) * (-up) + np.sin(a) * s * right
        foreshorten = rng.uniform(0.55, 1.0) if rng.random() < 0.3 else 1.0
        mid = root + lengths[0] * rng.uniform(0.9, 1.08) * foreshorten * dir1
        dir2 = _rot(dir1, bend_deg * deg * (1 if rng.random() < 0.5 else -1))
        foreshorten = rng.uniform(0.55, 1.0) if rng.random() < 0.3 else 1.0
        end = mid + lengths[1] * rng.uniform(0.9, 1.08) * foreshorten * dir2
        return mid, end

    for s_name, shoulder, elbow, hip, knee in (("l", 5, 7, 11, 13), ("r", 6, 8, 12, 14)):
        s = side[s_name]
        outward = rng.uniform(-20, 60) if rng.random() < 0.6 else rng.uniform(60, 175)
        k[elbow], k[elbow + 2] = limb(k[shoulder], outward, (0.165 * height, 0.15 * height),
                                      rng.uniform(0, 150), s)
        outward = rng.uniform(-12, 40) if rng.random() < 0.85 else rng.uniform(40, 95)
        k[knee], k[knee + 2] = limb(k[hip], outward, (0.24 * height, 0.23 * height),
                                    abs(rng.normal(0, 30)) if rng.random() < 0.8 else rng.uniform(30, 110), s)

    fig = _Figure(keypoints=k, labelled=labelled, height=height)
    skin = _SKIN[int(rng.integers(len(_SKIN)))]
    arm_a, arm_b = _two_colours(rng)
    leg_a, leg_b = _two_colours(rng)
    shirt = _hsv_bgr(rng.random(), rng.uniform(0.1, 0.8), rng.uniform(0.3, 0.95))
    shoe = _hsv_bgr(rng.random(), rng.uniform(0.0, 0.5), rng.uniform(0.1, 0.4))
    hair = _hsv_bgr(rng.uniform(0.02, 0.12), rng.uniform(0.3, 0.8), rng.uniform(0.1, 0.45))

    def thick(f):
        return max(1.0, f * height)

    def arm(s_name, colour):
        sh, el, wr = (5, 7, 9) if s_name == "l" else (6, 8, 10)
        upper, lower = (L_UPPER_ARM, L_FOREARM) if s_name == "l" else (R_UPPER_ARM, R_FOREARM)
        t = thick(0.05)
        return [("line", (k[sh], k[el], t), colour, upper),
                ("line", (k[el], k[wr], thick(0.042)), _shade(colour, 0.7), lower),
                ("circle", (k[el], 0.55 * t), _shade(colour, 0.4), lower),
                ("circle", (k[wr], 0.6 * t), skin, lower)]

    def leg(s_name, colour):
        hp, kn, an = (11, 13, 15) if s_name == "l" else (12, 14, 16)
        upper, lower = (L_THIGH, L_SHIN) if s_name == "l" else (R_THIGH, R_SHIN)
        t = thick(0.07)
        foot = k[an] + 0.07 * height * (0.6 * (k[an] - k[kn]) / (np.linalg.norm(k[an] - k[kn]) + 1e-6)
                                        + 0.8 * side[s_name] * right)
        return [("line", (k[hp], k[kn], t), colour, upper),
                ("line", (k[kn], k[an], thick(0.055)), _shade(colour, 0.72), lower),
                ("circle", (k[kn], 0.5 * t), _shade(colour, 0.4), lower),
                ("line", (k[an], foot, thick(0.04)), shoe, lower)]

    ext = 0.02 * height * right * left_sign
    torso = [("poly", np.stack([k[5] + ext, k[6] - ext, k[12], k[11]]), shirt, TORSO),
             ("line", (neck, head, thick(0.05)), skin, TORSO)]
    head_prims = [("circle", (head, radius), skin if front else hair, HEAD)]
    for ear in (3, 4):
        head_prims.append(("circle", (k[ear], max(1.0, 0.22 * radius)), _shade(skin, 0.8), HEAD))
    if front:
        for eye in (1, 2):
            head_prims.append(("circle", (k[eye], max(0.7, 0.13 * radius)), (30, 25, 20), HEAD))
        head_prims.append(("circle", (k[0], max(0.7, 0.14 * radius)), (60, 60, 170), HEAD))

    # The arm on the side turned away from the camera may pass behind the torso.
    far = "l" if (sy > 0) == front else "r"
    near = "r" if far == "l" else "l"
    arms = {"l": arm("l", arm_a), "r": arm("r", arm_b)}
    behind = abs(yaw) > 20 * deg and rng.random() < 0.6
    fig.prims += arms[far] if behind else []
    fig.prims += leg(far, leg_a if far == "l" else leg_b) + leg(near, leg_a if near == "l" else leg_b)
    fig.prims += torso
    fig.prims += ([] if behind else arms[far]) + arms[near] + head_prims
    return fig


def _fixed(p) -> tuple[int, int]:
    return int(round(float(p[0]) * _ONE)), int(round(float(p[1]) * _ONE))


def _draw(image: np.ndarray, owner: np.ndarray, kind: str, geom, colour, value: int) -> None:
    """Draw one primitive in colour on the image (anti-aliased) and as `value` on the owner map."""
    if kind == "line":
        p0, p1, t = geom
        t = max(1, int(round(t)))
        cv2.line(image, _fixed(p0), _fixed(p1), colour, t, cv2.LINE_AA, _SHIFT)
        cv2.line(owner, _fixed(p0), _fixed(p1), value, t, cv2.LINE_8, _SHIFT)
    elif kind == "circle":
        c, r = geom
        r = max(_ONE // 2, int(round(r * _ONE)))
        cv2.circle(image, _fixed(c), r, colour, -1, cv2.LINE_AA, _SHIFT)
        cv2.circle(owner, _fixed(c), r, value, -1, cv2.LINE_8, _SHIFT)
    elif kind == "poly":
        pts = np.round(geom * _ONE).astype(np.int32)
        cv2.fillConvexPoly(image, pts, colour, cv2.LINE_AA, _SHIFT)
        cv2.fillConvexPoly(owner, pts, value, cv2.LINE_8, _SHIFT)
    elif kind == "rect":
        p0, p1 = geom
        cv2.rectangle(image, _fixed(p0), _fixed(p1), colour, -1, cv2.LINE_AA, _SHIFT)
        cv2.rectangle(owner, _fixed(p0), _fixed(p1), value, -1, cv2.LINE_8, _SHIFT)
    elif kind == "ellipse":
        c, axes, angle = geom
        axes = (max(1, int(round(axes[0] * _ONE))), max(1, int(round(axes[1] * _ONE))))
        cv2.ellipse(image, _fixed(c), axes, angle, 0, 360, colour, -1, cv2.LINE_AA, _SHIFT)
        cv2.ellipse(owner, _fixed(c), axes, angle, 0, 360, value, -1, cv2.LINE_8, _SHIFT)
    else:
        raise ValueError(f"unknown primitive {kind!r}")


_GRIDS: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]] = {}


def _grid(h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    if (h, w) not in _GRIDS:
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        _GRIDS[(h, w)] = (xx, yy)
    return _GRIDS[(h, w)]


def _random_colour(rng: np.random.Generator) -> np.ndarray:
    return rng.integers(0, 256, 3).astype(np.float32)


def _background(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    kind = int(rng.integers(3))
    if kind == 0:  # smooth colour noise
        cell = int(rng.integers(8, 40))
        base, contrast = _random_colour(rng), rng.uniform(0.2, 1.0)
        small = base + contrast * (rng.random((h // cell + 2, w // cell + 2, 3), dtype=np.float32) * 255 - base)
        img = cv2.resize(small.astype(np.uint8), (w, h), interpolation=cv2.INTER_CUBIC)
    else:
        xx, yy = _grid(h, w)
        a = rng.uniform(0, np.pi)
        t = xx * np.float32(np.cos(a)) + yy * np.float32(np.sin(a))
        if kind == 1:  # linear gradient
            t = (t - t.min()) / max(float(t.max() - t.min()), 1.0)
        else:  # stripes, soft or hard
            t = np.sin(t * np.float32(2 * np.pi / rng.uniform(5, 40))) * np.float32(0.5) + np.float32(0.5)
            if rng.random() < 0.5:
                t = (t > 0.5).astype(np.float32)
        c0, c1 = _random_colour(rng), _random_colour(rng)
        img = (c0 + t[..., None] * (c1 - c0)).astype(np.uint8)
    for _ in range(int(rng.integers(0, 6))):  # clutter
        colour = tuple(int(c) for c in rng.integers(0, 256, 3))
        p0 = (float(rng.uniform(0, w)), float(rng.uniform(0, h)))
        size = float(rng.uniform(0.03, 0.25)) * min(h, w)
        shape = int(rng.integers(3))
        if shape == 0:
            p1 = (p0[0] + rng.uniform(-2, 2) * size, p0[1] + rng.uniform(-2, 2) * size)
            cv2.line(img, _fixed(p0), _fixed(p1), colour, int(rng.integers(1, 6)), cv2.LINE_AA, _SHIFT)
        elif shape == 1:
            cv2.circle(img, _fixed(p0), int(size * _ONE), colour, -1, cv2.LINE_AA, _SHIFT)
        else:
            cv2.rectangle(img, _fixed(p0), _fixed((p0[0] + size, p0[1] + size * rng.uniform(0.3, 2))),
                          colour, -1, cv2.LINE_AA, _SHIFT)
    return img


def _occluder(rng: np.random.Generator, fig: _Figure) -> tuple:
    """A rectangle or ellipse over one of the figure's joints."""
    c = fig.keypoints[int(rng.integers(5, 17))] + rng.normal(0, 0.04 * fig.height, 2)
    a, b = rng.uniform(0.06, 0.18, 2) * fig.height
    colour = tuple(int(x) for x in rng.integers(0, 256, 3))
    if rng.random() < 0.5:
        return ("rect", (c - (a, b), c + (a, b)), colour)
    return ("ellipse", (c, (a, b), float(rng.uniform(0, 180))), colour)


def render_image(rng: np.random.Generator, image_size: tuple[int, int], max_people: int):
    """One synthetic image (BGR uint8) and its people: a list of (keypoints (17, 3) with COCO
    visibility, bbox [x, y, w, h], area in visible pixels)."""
    h, w = image_size
    image = _background(rng, h, w)
    owner = np.zeros((h, w), dtype=np.uint16)
    n = int(rng.integers(1, max_people + 1))
    heights = np.sort(rng.uniform(0.3, 1.0, n) * h)  # the nearest (largest) is drawn last
    figures = []
    for height in heights:
        pelvis = np.array([rng.uniform(-0.05, 1.05) * w, rng.uniform(0.25, 0.85) * h])
        figures.append(_sample_figure(rng, float(height), pelvis))
    for p, fig in enumerate(figures):
        for kind, geom, colour, part in fig.prims:
            _draw(image, owner, kind, geom, colour, 1 + p * _NUM_PARTS + part)
        if rng.random() < _OCCLUDER_PROB:
            kind, geom, colour = _occluder(rng, fig)
            _draw(image, owner, kind, geom, colour, _OCCLUDER)
    # sensor noise and, sometimes, blur
    noise = np.repeat(rng.integers(0, 17, (h, w, 1), dtype=np.uint8), 3, axis=2)
    image = cv2.subtract(cv2.add(image, noise), np.full_like(image, 8))  # +-8, saturating
    if rng.random() < 0.3:
        image = cv2.GaussianBlur(image, (3, 3), 0)

    people = []
    for p, fig in enumerate(figures):
        mine = (owner > p * _NUM_PARTS) & (owner <= (p + 1) * _NUM_PARTS)  # owner = 1 + p * parts + part
        area = int(np.count_nonzero(mine))
        if area < _MIN_VISIBLE_AREA:
            continue
        xs, ys = np.flatnonzero(mine.any(axis=0)), np.flatnonzero(mine.any(axis=1))
        kpts = np.zeros((17, 3))
        for j in range(17):
            x, y = fig.keypoints[j]
            ix, iy = int(round(x)), int(round(y))
            if not fig.labelled[j] or not (0 <= x <= w - 1 and 0 <= y <= h - 1):
                continue  # not labelled: (0, 0, 0)
            ours = {1 + p * _NUM_PARTS + part for part in _KEYPOINT_PARTS[j]}
            kpts[j] = (x, y, 2 if int(owner[iy, ix]) in ours else 1)
        lab = kpts[:, 2] > 0
        x0 = min([float(xs.min())] + list(kpts[lab, 0]))
        x1 = max([float(xs.max()) + 1] + list(kpts[lab, 0] + 1))
        y0 = min([float(ys.min())] + list(kpts[lab, 1]))
        y1 = max([float(ys.max()) + 1] + list(kpts[lab, 1] + 1))
        margin = 0.03 * max(x1 - x0, y1 - y0) + 1
        x0, y0 = max(0.0, x0 - margin), max(0.0, y0 - margin)
        x1, y1 = min(float(w), x1 + margin), min(float(h), y1 + margin)
        people.append((kpts, [x0, y0, x1 - x0, y1 - y0], area))
    return image, people


def _r2(x: float) -> float:
    return round(float(x), 2)


def generate_synthetic_coco(out_dir, *, num_images: int, split: str = "train", seed: int = 0,
                            image_size: tuple[int, int] = (256, 192), max_people: int = 3,
                            image_format: str = "jpg", progress: bool = True, render=render_image) -> Path:
    """Write `num_images` synthetic images to `out_dir/images/<split>/` and their COCO keypoint
    annotations to `out_dir/annotations/person_keypoints_<split>.json`; return the JSON's path.

    `image_size` is (H, W). `image_format` is "jpg" (quality 92) or "png". The data set's
    `img_prefix` is `out_dir/images/<split>`. `render(rng, image_size, max_people)` draws one image
    (`render_image`'s signature; a person may carry a 4th item, a dict of annotation fields that
    replace the defaults, e.g. a crowd region's iscrowd and segmentation).
    """
    if num_images < 0:
        raise ValueError(f"num_images must be >= 0, got {num_images}")
    if not 1 <= max_people <= 1000:
        raise ValueError(f"max_people must be in [1, 1000], got {max_people}")
    if image_format not in ("jpg", "png"):
        raise ValueError(f"image_format must be 'jpg' or 'png', got {image_format!r}")
    h, w = (int(v) for v in image_size)
    if h < 16 or w < 16:
        raise ValueError(f"image_size must be at least 16x16, got {image_size}")
    out_dir = Path(out_dir)
    img_dir = out_dir / "images" / split
    ann_dir = out_dir / "annotations"
    img_dir.mkdir(parents=True, exist_ok=True)
    ann_dir.mkdir(parents=True, exist_ok=True)
    params = ([cv2.IMWRITE_JPEG_QUALITY, 92] if image_format == "jpg" else [cv2.IMWRITE_PNG_COMPRESSION, 1])
    split_key = zlib.crc32(split.encode())

    images, annotations = [], []
    for i in tqdm(range(num_images), desc=f"synthetic {split}", disable=not progress, unit="img"):
        rng = np.random.default_rng([seed, split_key, i])
        image, people = render(rng, (h, w), max_people)
        image_id = i + 1
        file_name = f"{image_id:012d}.{image_format}"
        ok, buf = cv2.imencode("." + image_format, image, params)
        if not ok:
            raise RuntimeError(f"OpenCV could not encode {file_name}")
        (img_dir / file_name).write_bytes(buf.tobytes())
        images.append({"id": image_id, "file_name": file_name, "width": w, "height": h})
        for kpts, bbox, area, *fields in people:
            flat = []
            for x, y, v in kpts:
                flat += [_r2(x), _r2(y), int(v)]
            annotations.append({
                "id": len(annotations) + 1, "image_id": image_id, "category_id": 1, "iscrowd": 0,
                "keypoints": flat, "num_keypoints": int((kpts[:, 2] > 0).sum()),
                "bbox": [_r2(v) for v in bbox], "area": float(area), **(fields[0] if fields else {}),
            })

    data = {
        "info": {"description": "srpose-fast synthetic person keypoints", "split": split, "seed": seed},
        "images": images,
        "annotations": annotations,
        "categories": [{"id": 1, "name": "person", "supercategory": "person",
                        "keypoints": list(COCO.names), "skeleton": [[a + 1, b + 1] for a, b in COCO.skeleton]}],
    }
    ann_file = ann_dir / f"person_keypoints_{split}.json"
    ann_file.write_text(json.dumps(data, separators=(",", ":")))
    return ann_file


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description="Write a synthetic COCO person-keypoint data set.")
    parser.add_argument("out_dir")
    parser.add_argument("--num-images", type=int, required=True)
    parser.add_argument("--split", default="train")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--image-size", type=int, nargs=2, default=(256, 192), metavar=("H", "W"))
    parser.add_argument("--max-people", type=int, default=3)
    parser.add_argument("--format", default="jpg", choices=("jpg", "png"))
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    path = generate_synthetic_coco(args.out_dir, num_images=args.num_images, split=args.split, seed=args.seed,
                                   image_size=tuple(args.image_size), max_people=args.max_people,
                                   image_format=args.format, progress=not args.no_progress)
    elapsed = time.perf_counter() - start
    print(f"{path}: {args.num_images} images in {elapsed:.2f} s "
          f"({args.num_images / max(elapsed, 1e-9):.1f} images/s)")


if __name__ == "__main__":
    main()
