"""`srpose-fast eval`: a model's COCO AP, CrowdPose AP or MPII PCKh, scored as `srpose-fast score` scores."""
from __future__ import annotations

import argparse
from pathlib import Path

from .common import add_model_args, config_of, load_model, warn_if_random_weights
from .score import add_benchmark_args


def run(args: argparse.Namespace) -> int:
    from ..engine.config import TrainConfig
    from ..engine.eval_protocol import eval_dataset, evaluate_with
    from ..engine.scoring import benchmark_of, scores_markdown
    from ..models.pose_model import BOTTOM_UP, model_kind

    if args.batch_size < 1:
        raise ValueError(f"--batch-size must be at least 1, got {args.batch_size}")
    config = config_of(args)
    ann = args.ann or (config.val_ann if config else None)
    images = args.images or (config.val_images if config else None)
    if ann is None or images is None:
        raise ValueError("eval needs --ann and --images (or a config that names the validation set)")
    model, config = load_model(args, ann_file=ann)
    protocol = config or TrainConfig(val_bbox_file=None)  # a zoo name: ground-truth boxes unless --detections
    dataset = eval_dataset(model, protocol, ann=ann, images=images, detections=args.detections,
                           gt_boxes=args.gt_boxes)
    if model_kind(model) == BOTTOM_UP:
        return _run_bottom_up(args, model, dataset, ann)
    benchmark = args.dataset or benchmark_of(dataset)
    warn_if_random_weights(args)
    stats = evaluate_with(model, dataset, protocol, method=args.method, flip_test=not args.no_flip,
                          batch_size=args.batch_size, out_dir=args.out, benchmark=benchmark, gt_file=args.mpii_gt)
    print(scores_markdown(benchmark, stats, title=f"{Path(ann).name}, {benchmark}, decoder {args.method}"))
    return 0


def _run_bottom_up(args: argparse.Namespace, model, dataset, ann) -> int:
    """Every person of every image, no boxes: the bottom-up evaluation (engine.bottomup_evaluator)."""
    from ..engine.bottomup_evaluator import evaluate_bottomup
    from ..engine.scoring import benchmark_of, scores_markdown

    warn_if_random_weights(args)
    stats = evaluate_bottomup(model, dataset, flip_test=not args.no_flip, backend=args.backend, out_dir=args.out)
    benchmark = benchmark_of(dataset)
    print(scores_markdown(benchmark, stats, title=f"{Path(ann).name}, {benchmark}, bottom-up"))
    return 0


def add_parser(sub) -> None:
    p = sub.add_parser("eval", help="a model's COCO AP, CrowdPose AP or MPII PCKh on a data set")
    add_model_args(p)
    p.add_argument("--ann", help="annotation file (default: the config's val_ann)")
    p.add_argument("--images", help="image folder (default: the config's val_images)")
    boxes = p.add_mutually_exclusive_group()
    boxes.add_argument("--detections", help="person detections JSON, COCO results format (default: the config's "
                                            "val_bbox_file; ground-truth boxes without one)")
    boxes.add_argument("--gt-boxes", action="store_true", help="use the ground-truth person boxes, whatever the "
                                                               "config's val_bbox_file")
    add_benchmark_args(p)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--out", default="outputs/eval")
    p.set_defaults(func=run)
