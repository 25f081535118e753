"""What several subcommands share: the model arguments and loading a model with its weights."""
from __future__ import annotations

import argparse
import warnings

from ..codecs.conventions import DECODE_METHODS
from ..keypoint_sets import KEYPOINT_SETS

KEYPOINT_SET_NAMES = tuple(sorted(KEYPOINT_SETS))


def add_model_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("config", help="a training config file, or a zoo model name")
    p.add_argument("--checkpoint", help="weights to load: a srpose-fast checkpoint, an SRPose release (mmcv 1.x "
                   "epoch_N.pth / best.pth) or an mmpose top-down checkpoint")
    p.add_argument("--method", choices=DECODE_METHODS, help="decoder (default: the config's decode_method, shift)")
    p.add_argument("--no-flip", action="store_true", help="turn the flip test off (default: the config's flip_test)")
    p.add_argument("--device", default=None)
    p.add_argument("--backend", default="auto",
                   help="backend of the fused ops (SR head, decode): auto (default), torch, triton, cuda, cpp")
    p.add_argument("--keypoint-set", choices=KEYPOINT_SET_NAMES,
                   help="the model's keypoints (default: the config's, else the annotation file's, else coco)")


def config_of(args: argparse.Namespace):
    """The training config that args.config names, or None for a zoo model name."""
    from ..engine.config import load_config

    return load_config(args.config) if args.config.endswith((".json", ".toml")) else None


def model_keypoint_set(args: argparse.Namespace, config, ann_file=None) -> str:
    """--keypoint-set, else the config's "keypoint_set", else the annotation file's
    (`data.layouts.detect_keypoint_set`), else COCO's."""
    if args.keypoint_set:
        return args.keypoint_set
    if config is not None and config.keypoint_set:
        return config.keypoint_set
    if ann_file:
        from ..data.layouts import detect_keypoint_set

        return detect_keypoint_set(ann_file).name
    return "coco"


def load_model(args: argparse.Namespace, ann_file=None):
    """The model of a config (or zoo name), with weights from a checkpoint (any layout `load_weights`
    reads), on the best device. `args.method` and `args.no_flip` left unset take the config's test
    settings (TrainConfig's defaults, SRPose's, for a zoo name). The keypoint set: `model_keypoint_set`
    (ann_file: the annotation file the model will be evaluated on)."""
    import torch

    from ..engine.config import TrainConfig
    from ..models import build_model

    config = config_of(args)
    name = config.model if config else args.config
    protocol = config or TrainConfig()
    args.method = args.method or protocol.decode_method
    args.no_flip = args.no_flip or not protocol.flip_test
    model = build_model(name, keypoint_set=model_keypoint_set(args, config, ann_file),
                        input_size=config.input_size if config else None, checkpoint=args.checkpoint or None)
    model.set_backend(args.backend)
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    return model.to(device).eval(), config


def warn_if_random_weights(args: argparse.Namespace) -> None:
    """A warning when the model about to run has no --checkpoint: zoo models are built with random weights.
    Called once the command's inputs are checked, right before the model runs (an error before stays one line)."""
    if not args.checkpoint:
        warnings.warn(f"no --checkpoint: {args.config} runs on random weights; its keypoints and scores mean "
                      f"nothing (and change from run to run)", stacklevel=2)
