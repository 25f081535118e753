"""`srpose-fast demo`: the main job on its embedded default data."""
from __future__ import annotations

import argparse


def run(args: argparse.Namespace) -> int:
    from ..engine.demo import run_demo

    run_demo(args.out, seed=args.seed, size=args.size)
    return 0


def add_parser(sub) -> None:
    p = sub.add_parser("demo", help="the main job on its embedded default data")
    p.add_argument("--out", default="outputs/demo", help="output folder")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--size", choices=("cpu", "cuda", "tiny"), default=None,
                   help="how much to train (default: cuda when a GPU is found, else cpu)")
    p.set_defaults(func=run)
