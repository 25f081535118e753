"""`srpose-fast eval`: a model's COCO AP, CrowdPose AP or MPII PCKh, scored as `srpose-fast score` scores."""
from __future__ import annotations

import argparse
from pathlib import Path

from .common import add_model_args, config_of, load_model
from .score import add_benchmark_args


def run(args: argparse.Namespace) -> int:
    from ..data.coco import TopDownCocoDataset
    from ..engine.evaluator import evaluate
    from ..engine.scoring import benchmark_of, scores_markdown

    config = config_of(args)
    ann = args.ann or (config.val_ann if config else None)
    images = args.images or (config.val_images if config else None)
    if ann is None or images is None:
        raise ValueError("eval needs --ann and --images (or a config that names the validation set)")
    model, config = load_model(args, ann_file=ann)
    detections = args.detections or (config.val_bbox_file if config else None)
    dataset = TopDownCocoDataset(ann, images, keypoint_set=model.keypoint_set, input_size=model.input_size,
                                 train=False, detections=detections)
    benchmark = args.dataset or benchmark_of(dataset)
    stats = evaluate(model, dataset, batch_size=args.batch_size, method=args.method, flip_test=not args.no_flip,
                     out_dir=args.out, benchmark=benchmark, gt_file=args.mpii_gt)
    print(scores_markdown(benchmark, stats, title=f"{Path(ann).name}, {benchmark}, decoder {args.method}"))
    return 0


def add_parser(sub) -> None:
    p = sub.add_parser("eval", help="a model's COCO AP, CrowdPose AP or MPII PCKh on a data set")
    add_model_args(p)
    p.add_argument("--ann", help="annotation file (default: the config's val_ann)")
    p.add_argument("--images", help="image folder (default: the config's val_images)")
    p.add_argument("--detections", help="person detections JSON (default: ground-truth boxes)")
    add_benchmark_args(p)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--out", default="outputs/eval")
    p.set_defaults(func=run)
