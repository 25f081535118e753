"""The `srpose-fast` command."""
from __future__ import annotations

import argparse
import sys


def _models(args: argparse.Namespace) -> int:
    from .models import MODEL_SPECS

    width = max(map(len, MODEL_SPECS))
    for name, spec in sorted(MODEL_SPECS.items()):
        print(f"{name:<{width}}  {spec.input_size[0]}x{spec.input_size[1]}  {spec.description}")
    return 0


def _demo(args: argparse.Namespace) -> int:
    from .engine.demo import run_demo

    run_demo(args.out, seed=args.seed)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="srpose-fast", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    models = sub.add_parser("models", help="list the model zoo")
    models.set_defaults(func=_models)

    demo = sub.add_parser("demo", help="the main job on its embedded default data")
    demo.add_argument("--out", default="outputs/demo", help="output folder")
    demo.add_argument("--seed", type=int, default=0)
    demo.set_defaults(func=_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
