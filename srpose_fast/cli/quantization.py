"""`srpose-fast quantization`: each decoder's AP upper bound at each heatmap resolution."""
from __future__ import annotations

import argparse
from pathlib import Path

from .common import KEYPOINT_SET_NAMES


def run(args: argparse.Namespace) -> int:
    from ..data.layouts import read_annotation_file
    from ..engine.quantization import quantization_table, write_quantization

    ann = args.ann
    if ann is None:  # the embedded default: a synthetic validation set
        from ..data.synthetic import generate_synthetic_coco

        ann = generate_synthetic_coco(Path(args.out) / "data", num_images=args.num_images, split="val", seed=0)
    found = read_annotation_file(ann)
    if found.layout != "coco":
        raise ValueError(f"quantization scores COCO-style AP: it needs a COCO-format annotation file, and {ann} "
                         f"is in mmpose's MPII layout")
    kset = args.keypoint_set or found.keypoint_set
    table = quantization_table(ann, target=args.target, keypoint_set=kset)
    write_quantization(table, args.out)
    return 0


def add_parser(sub) -> None:
    p = sub.add_parser("quantization", help="each decoder's AP upper bound at each heatmap resolution")
    p.add_argument("--ann", help="annotation file (default: a generated synthetic set)")
    p.add_argument("--num-images", type=int, default=200, help="size of the generated default set")
    p.add_argument("--keypoint-set", choices=KEYPOINT_SET_NAMES,
                   help="the annotation file's keypoints (default: read from the file)")
    p.add_argument("--target", choices=("msra", "unbiased"), default="msra",
                   help="ground-truth encoding: msra (SRPose's, integer centres) or unbiased (exact centres)")
    p.add_argument("--out", default="outputs/quantization")
    p.set_defaults(func=run)
