"""`srpose-fast demo`: the main job on its embedded default data (`--bottom-up`: the bottom-up pipeline)."""
from __future__ import annotations

import argparse


def run(args: argparse.Namespace) -> int:
    if args.bottom_up:
        from ..engine.demo_bottomup import run_bottomup_demo

        run_bottomup_demo(args.out or "outputs/demo_bottomup", seed=args.seed, size=args.size)
        return 0
    from ..engine.demo import run_demo

    run_demo(args.out or "outputs/demo", seed=args.seed, size=args.size)
    return 0


def add_parser(sub) -> None:
    p = sub.add_parser("demo", help="the main job on its embedded default data")
    p.add_argument("--out", default=None, help="output folder (default: outputs/demo, or outputs/demo_bottomup)")
    p.add_argument("--bottom-up", action="store_true",
                   help="the bottom-up demo: bottomup_demo (SR head on Associative Embedding) on synthetic "
                        "multi-person images, whole-image evaluation")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--size", choices=("cpu", "cuda", "tiny"), default=None,
                   help="how much to train (default: cuda when a GPU is found, else cpu)")
    p.set_defaults(func=run)
