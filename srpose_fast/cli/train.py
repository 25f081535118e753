"""`srpose-fast train CONFIG`: train a model from a config file (torchrun for several GPUs)."""
from __future__ import annotations

import argparse

from .common import KEYPOINT_SET_NAMES


def run(args: argparse.Namespace) -> int:
    from ..engine.config import load_config
    from ..engine.trainer import train

    resume = True if args.resume == "latest" else args.resume
    config = load_config(args.config)
    if args.keypoint_set:
        config = config.replace(keypoint_set=args.keypoint_set)
    train(config, resume=resume, output_dir=args.out)
    return 0


def add_parser(sub) -> None:
    p = sub.add_parser("train", help="train a model from a config file (torchrun for several GPUs)")
    p.add_argument("config", help="a .json or .toml training config (see configs/)")
    p.add_argument("--resume", nargs="?", const="latest", default=None,
                   help="resume from OUT/latest.pth, or from the checkpoint given")
    p.add_argument("--out", default=None, help="output folder (default: the config's output_dir)")
    p.add_argument("--keypoint-set", choices=KEYPOINT_SET_NAMES,
                   help="the model's keypoints (default: the config's keypoint_set, else the training file's)")
    p.set_defaults(func=run)
