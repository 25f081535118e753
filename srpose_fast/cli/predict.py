"""`srpose-fast predict`: the poses in an image, a folder of images or a video, batched.

Boxes (top-down models): --boxes with a JSON list (inline or in a file; x, y, w, h, or corners with
--bbox-format xyxy), or a COCO detection file (people scoring at least --det-thr, matched to each image by
its id); without --boxes the whole image is the box. Bottom-up models find the people themselves.
Output under --out (`engine.pose_outputs`): results.json (COCO results), images.json (which image each id is),
overlays or the annotated video. For one image its people are also printed as JSON.
"""
from __future__ import annotations

import argparse
import json
import sys
import warnings
from pathlib import Path
from typing import Callable

from .common import add_model_args, load_model, warn_if_random_weights


def _image_ids(args: argparse.Namespace, media, boxes) -> Callable:
    """frame -> image id: --ann's id of its file name; else, with a detection file and image inputs, the id in
    the file name (COCO's 000000397133.jpg); else the position in the input, from 1. Checked up front."""
    from ..data.boxes import image_id_from_name, image_ids_by_name

    position = lambda frame: frame.index + 1  # noqa: E731
    if media.kind == "video":
        if args.ann:
            raise ValueError("--ann names images; a video's frames are numbered from 1 in input order")
        return position
    if args.ann:
        by_name = image_ids_by_name(args.ann)
        by_base = {Path(name).name: i for name, i in by_name.items()}

        def from_ann(name: str) -> int | None:
            return by_name.get(name, by_base.get(Path(name).name))
        lookup, missing_hint = from_ann, f"is not among the images of {args.ann}"
    elif boxes is not None and boxes.by_image_id is not None:
        lookup = image_id_from_name
        missing_hint = ("has no COCO image id in its name (000000397133.jpg); give the COCO file that lists the "
                        "images with --ann")
    else:
        return position
    ids = {name: lookup(name) for name in media.names()}
    for name, image_id in ids.items():
        if image_id is None:
            raise ValueError(f"image {name} {missing_hint}")
    if boxes is not None and boxes.by_image_id is not None and not set(ids.values()) & set(boxes.by_image_id):
        warnings.warn(f"{boxes.source} has no detection for any of the {len(ids)} images (their ids: "
                      f"{_some(ids.values())}; the file's: {_some(boxes.by_image_id)})")
    return lambda frame: ids[frame.name]


def _some(values) -> str:
    values = sorted(values)
    return ", ".join(str(v) for v in values[:3]) + (", ..." if len(values) > 3 else "")


def _check_options(args: argparse.Namespace) -> None:
    from ..ops.backend import BACKENDS

    if args.backend not in BACKENDS:
        raise ValueError(f"--backend must be one of {BACKENDS}, got {args.backend!r}")
    for name, low in (("batch_size", 1), ("radius", 1), ("thickness", 1)):
        if getattr(args, name) < low:
            raise ValueError(f"--{name.replace('_', '-')} must be at least {low}, got {getattr(args, name)}")
    for name in ("kpt_thr", "det_thr"):
        if not 0.0 <= getattr(args, name) <= 1.0:
            raise ValueError(f"--{name.replace('_', '-')} must lie in [0, 1], got {getattr(args, name)}")


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from ..data.boxes import read_boxes
    from ..data.media import open_media
    from ..engine.pose_outputs import OverlayOptions, PoseWriter, people_json
    from ..engine.predict import predict_stream
    from ..models.pose_model import BOTTOM_UP, model_kind

    _check_options(args)
    media = open_media(args.input)  # inputs and boxes are checked before the model loads
    boxes = read_boxes(args.boxes, bbox_format=args.bbox_format, min_score=args.det_thr) if args.boxes else None
    image_id = _image_ids(args, media, boxes)
    model, _ = load_model(args)
    if model_kind(model) == BOTTOM_UP and boxes is not None:
        raise ValueError(f"{args.config} is a bottom-up model: it finds the people itself, --boxes does not apply")
    if model_kind(model) == BOTTOM_UP and args.heatmap:
        raise ValueError(f"{args.config} is a bottom-up model: --heatmap overlays are for top-down models")
    overlays = None if args.no_overlays else OverlayOptions(
        kpt_thr=args.kpt_thr, radius=args.radius, thickness=args.thickness, skeleton=not args.no_skeleton,
        heatmap=args.heatmap)
    video = media.kind == "video"
    warn_if_random_weights(args)
    items = ((frame, frame.image, None if boxes is None else boxes.for_image(image_id(frame)))
             for frame in media.frames())
    stream = predict_stream(model, items, batch_size=args.batch_size, flip_test=not args.no_flip, method=args.method,
                            heatmaps=overlays is not None and overlays.heatmap)
    people = 0
    with PoseWriter(args.out, model.keypoint_set, overlays=overlays, video_name=media.path.name if video else None,
                    video_fps=media.fps) as writer:
        for frame, prediction in tqdm(stream, total=media.length, desc="predict", unit="frame" if video else "image"):
            writer.add(image_id(frame), frame.name, frame.index if video else None, frame.image, prediction)
            people += len(prediction)
    if media.kind == "image":
        print(json.dumps(people_json(prediction), indent=1))
    where = writer.video_path if video else Path(args.out) / "overlays"
    print(f"{people} people in {len(writer.images)} {'frames' if video else 'images'}: {Path(args.out) / 'results.json'}"
          + ("" if overlays is None else f", overlays: {where}"), file=sys.stderr)
    return 0


def add_parser(sub) -> None:
    from ..data.boxes import BBOX_FORMATS

    p = sub.add_parser("predict", help="poses in an image, a folder of images or a video")
    add_model_args(p)
    p.add_argument("input", help="an image, a folder of images, or a video (.mp4, .avi, .mov, ...)")
    p.add_argument("--boxes", help="person boxes: a JSON list ('[[x, y, w, h], ...]', a fifth number is the box's "
                   "score) or a file holding one, or a COCO detection file (a list of {image_id, category_id, bbox, "
                   "score}); default: the whole image (top-down models). Bottom-up models take none")
    p.add_argument("--bbox-format", choices=BBOX_FORMATS, default="xywh",
                   help="xywh (x, y, width, height; COCO's, the default) or xyxy (corners; mmdet's)")
    p.add_argument("--det-thr", type=float, default=0.3,
                   help="keep boxes scoring at least this (default 0.3, mmpose's demos; 0 keeps all)")
    p.add_argument("--ann", help="a COCO-format file whose images list gives each image's id (for a detection "
                   "file, default: the id in COCO's file names; without one: 1, 2, ... in input order)")
    p.add_argument("--batch-size", type=int, default=32, help="crops per forward pass")
    p.add_argument("--out", default="outputs/predict")
    p.add_argument("--kpt-thr", type=float, default=0.3, help="draw keypoints scoring above this (default 0.3)")
    p.add_argument("--radius", type=int, default=3, help="keypoint radius in pixels")
    p.add_argument("--thickness", type=int, default=2, help="limb thickness in pixels")
    p.add_argument("--no-skeleton", action="store_true", help="draw the keypoints without the limbs")
    p.add_argument("--heatmap", action="store_true", help="paint the heatmaps under the keypoints (top-down)")
    p.add_argument("--no-overlays", action="store_true", help="write results.json only")
    p.set_defaults(func=run)
