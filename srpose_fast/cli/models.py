"""`srpose-fast models`: the model zoo."""
from __future__ import annotations

import argparse


def run(args: argparse.Namespace) -> int:
    from ..models import MODEL_SPECS

    width = max(map(len, MODEL_SPECS))
    for name, spec in sorted(MODEL_SPECS.items()):
        print(f"{name:<{width}}  {spec.input_size[0]}x{spec.input_size[1]}  {spec.description}")
    return 0


def add_parser(sub) -> None:
    sub.add_parser("models", help="list the model zoo").set_defaults(func=run)
