"""`srpose-fast predict`: keypoints of the boxed people in one image."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from .common import add_model_args, load_model


def run(args: argparse.Namespace) -> int:
    from ..engine.predict import predict_image

    boxes = json.loads(args.boxes) if args.boxes.lstrip().startswith("[") else json.loads(Path(args.boxes).read_text())
    model, _ = load_model(args)
    results = predict_image(model, args.image, boxes, method=args.method, flip_test=not args.no_flip,
                            out_dir=args.out)
    print(json.dumps(results, indent=1))
    return 0


def add_parser(sub) -> None:
    p = sub.add_parser("predict", help="keypoints of the boxed people in one image")
    add_model_args(p)
    p.add_argument("image")
    p.add_argument("--boxes", required=True, help="JSON list of [x, y, w, h] boxes, or a file holding one")
    p.add_argument("--out", default="outputs/predict")
    p.set_defaults(func=run)
