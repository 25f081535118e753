"""`srpose-fast convert SRC DST [--model NAME]`: a released SRPose / mmpose checkpoint as a srpose-fast one.

The layout of SRC is detected, its keys are renamed (SPEC.md section 8), the weights are loaded strictly
into the zoo model they belong to (found from the keys, or --model), and DST is written atomically as a
srpose-fast checkpoint that names its model and keypoint set. What was mapped is printed.
"""
from __future__ import annotations

import argparse

from .common import KEYPOINT_SET_NAMES


def _keypoint_set_with(num_keypoints: int | None) -> str:
    from ..keypoint_sets import KEYPOINT_SETS

    names = [s.name for s in KEYPOINT_SETS.values() if s.num_keypoints == num_keypoints]
    if not names:
        raise ValueError(f"the checkpoint predicts {num_keypoints} keypoints; no keypoint set has that many "
                         f"(known: {', '.join(KEYPOINT_SETS)}); pass --keypoint-set")
    return names[0]


def _target(weights, args) -> tuple[str, str]:
    """The zoo name and keypoint set to load into: the options, what a srpose-fast file says, or the keys."""
    from ..models.weights import identify

    name = args.model or weights.model_name
    kset = args.keypoint_set or weights.keypoint_set
    if name is not None and kset is not None:
        return name, kset
    found = identify(weights.state)
    if name is None:
        if found is None or found.backbone_only:
            what = "a backbone only" if found is not None else "no zoo model's keys"
            raise ValueError(f"{args.src} ({weights.layout}) holds {what}; pass --model NAME "
                             f"(`srpose-fast models` lists them)")
        name = found.model
    if kset is None:
        same_model = found is not None and found.model == name and not found.backbone_only
        kset = _keypoint_set_with(found.num_keypoints) if same_model else "coco"
    return name, kset


def run(args: argparse.Namespace) -> int:
    from ..engine.checkpoint import save_checkpoint
    from ..models import build_model
    from ..models.weights import load_mapped, read_weights

    weights = read_weights(args.src)
    print(f"{args.src}: {weights.layout}, {len(weights.state)} tensors")
    for change in weights.changes:
        print(f"  {change}")
    if weights.ignored_entries:
        print(f"  left out (no model weights): {', '.join(weights.ignored_entries)}")
    name, kset = _target(weights, args)
    model = build_model(name, keypoint_set=kset)
    load_mapped(model, weights, path=args.src, model_name=name)
    print(f"  every key and shape fits {name} ({kset}, {model.keypoint_set.num_keypoints} keypoints)")
    save_checkpoint(args.dst, model, model_name=name, rng=[],
                    extra={"converted_from": str(args.src), "layout": weights.layout})
    print(f"wrote {args.dst}")
    return 0


def add_parser(sub) -> None:
    p = sub.add_parser("convert", help="turn a released SRPose / mmpose checkpoint into a srpose-fast one",
                       description="Detect the layout of SRC (an SRPose release, an mmpose 0.x / 1.x top-down "
                                   "checkpoint, a torchvision-style state dict), rename its keys, load them "
                                   "strictly into the zoo model they belong to and write DST.")
    p.add_argument("src", help="the checkpoint to convert")
    p.add_argument("dst", help="where to write the srpose-fast checkpoint")
    p.add_argument("--model", help="the zoo model (default: the one whose keys the file holds)")
    p.add_argument("--keypoint-set", choices=KEYPOINT_SET_NAMES, help="the file's keypoints (default: from the "
                                                                      "head's shapes)")
    p.set_defaults(func=run)
