"""`srpose-fast train CONFIG`: train a model from a config file (torchrun for several GPUs)."""
from __future__ import annotations

import argparse


def run(args: argparse.Namespace) -> int:
    from ..engine.trainer import train

    resume = True if args.resume == "latest" else args.resume
    train(args.config, resume=resume, output_dir=args.out)
    return 0


def add_parser(sub) -> None:
    p = sub.add_parser("train", help="train a model from a config file (torchrun for several GPUs)")
    p.add_argument("config", help="a .json or .toml training config (see configs/)")
    p.add_argument("--resume", nargs="?", const="latest", default=None,
                   help="resume from OUT/latest.pth, or from the checkpoint given")
    p.add_argument("--out", default=None, help="output folder (default: the config's output_dir)")
    p.set_defaults(func=run)
