"""`srpose-fast quantization`: each decoder's AP upper bound at each heatmap resolution."""
from __future__ import annotations

import argparse
from pathlib import Path


def run(args: argparse.Namespace) -> int:
    from ..engine.quantization import quantization_table, write_quantization

    ann = args.ann
    if ann is None:  # the embedded default: a synthetic validation set
        from ..data.synthetic import generate_synthetic_coco

        ann = generate_synthetic_coco(Path(args.out) / "data", num_images=args.num_images, split="val", seed=0)
    table = quantization_table(ann, target=args.target)
    write_quantization(table, args.out)
    return 0


def add_parser(sub) -> None:
    p = sub.add_parser("quantization", help="each decoder's AP upper bound at each heatmap resolution")
    p.add_argument("--ann", help="annotation file (default: a generated synthetic set)")
    p.add_argument("--num-images", type=int, default=200, help="size of the generated default set")
    p.add_argument("--target", choices=("msra", "unbiased"), default="msra",
                   help="ground-truth encoding: msra (SRPose's, integer centres) or unbiased (exact centres)")
    p.add_argument("--out", default="outputs/quantization")
    p.set_defaults(func=run)
