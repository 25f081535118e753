"""What several subcommands share: the model arguments and loading a model with its weights."""
from __future__ import annotations

import argparse

from ..codecs.conventions import DECODE_METHODS


def add_model_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("config", help="a training config file, or a zoo model name")
    p.add_argument("--checkpoint", help="weights to load (a trainer checkpoint)")
    p.add_argument("--method", default="shift", choices=DECODE_METHODS)
    p.add_argument("--no-flip", action="store_true", help="turn the flip test off")
    p.add_argument("--device", default=None)


def load_model(args: argparse.Namespace):
    """The model of a config (or zoo name), with weights from a checkpoint, on the best device."""
    import torch

    from ..engine.checkpoint import load_checkpoint
    from ..engine.config import load_config
    from ..models import build_model

    config = load_config(args.config) if args.config.endswith((".json", ".toml")) else None
    name = config.model if config else args.config
    model = build_model(name, keypoint_set=config.keypoint_set if config else "coco",
                        input_size=config.input_size if config else None)
    if args.checkpoint:
        load_checkpoint(args.checkpoint, model, model_name=name)
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    return model.to(device).eval(), config
