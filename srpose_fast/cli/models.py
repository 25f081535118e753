"""`srpose-fast models`: the model zoo."""
from __future__ import annotations

import argparse


def run(args: argparse.Namespace) -> int:
    from ..models import MODEL_SPECS
    from ..models.bottomup_zoo import BOTTOMUP_SPECS

    rows = {name: (f"{spec.input_size[0]}x{spec.input_size[1]}", spec.description) for name, spec in MODEL_SPECS.items()}
    rows.update({name: (f"{spec.input_size}x{spec.input_size}", spec.description)  # whole images, square training
                 for name, spec in BOTTOMUP_SPECS.items()})
    width = max(map(len, rows))
    for name, (size, description) in sorted(rows.items()):
        print(f"{name:<{width}}  {size}  {description}")
    return 0


def add_parser(sub) -> None:
    sub.add_parser("models", help="list the model zoo").set_defaults(func=run)
