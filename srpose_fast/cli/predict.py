"""`srpose-fast predict`: keypoints of the people in one image: the boxed ones (top-down), or all (bottom-up)."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from .common import add_model_args, load_model


def run(args: argparse.Namespace) -> int:
    from ..engine.predict import predict_image

    model, _ = load_model(args)
    if getattr(model, "kind", "top_down") == "bottom_up":
        from ..engine.bottomup_predict import predict_image_bottomup

        if args.boxes:
            raise ValueError(f"{args.config} is a bottom-up model: it finds the people itself, --boxes does not apply")
        results = predict_image_bottomup(model, args.image, flip_test=not args.no_flip, backend=args.backend,
                                         out_dir=args.out)
        print(json.dumps(results, indent=1))
        return 0
    if not args.boxes:
        raise ValueError(f"{args.config} is a top-down model: give the people's boxes with --boxes")
    boxes = json.loads(args.boxes) if args.boxes.lstrip().startswith("[") else json.loads(Path(args.boxes).read_text())
    results = predict_image(model, args.image, boxes, method=args.method, flip_test=not args.no_flip,
                            out_dir=args.out)
    print(json.dumps(results, indent=1))
    return 0


def add_parser(sub) -> None:
    p = sub.add_parser("predict", help="keypoints of the people in one image (boxed ones for top-down models)")
    add_model_args(p)
    p.add_argument("image")
    p.add_argument("--boxes", help="JSON list of [x, y, w, h] boxes, or a file holding one (top-down models; "
                   "bottom-up models find every person)")
    p.add_argument("--out", default="outputs/predict")
    p.set_defaults(func=run)
