"""`srpose-fast export`: a top-down model as one graph from normalised crops to image keypoints.

ONNX (opset `deploy.export.ONNX_OPSET`, for onnxruntime, TensorRT, ...) or a torch.export program (.pt2):
inputs images (N, 3, H, W), center (N, 2), scale (N, 2); outputs keypoints (N, K, 2) in image pixels and
scores (N, K); the flip test (--flip-test) and the decoder (--method) run inside the graph.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..codecs.conventions import DECODE_METHODS
from ..deploy.graph_spec import EXPORT_FORMATS, ONNX_OPSET
from .common import KEYPOINT_SET_NAMES, load_model, warn_if_random_weights


def run(args: argparse.Namespace) -> int:
    from ..deploy.export import export_model
    from ..models.pose_model import TOP_DOWN, model_kind

    out = Path(args.out)
    if out.is_dir():
        raise ValueError(f"--out {out} is a folder; name the file to write (e.g. {out / 'model.onnx'})")
    if args.format == "onnx":
        import importlib.util

        missing = [m for m in ("onnx", "onnxscript") if importlib.util.find_spec(m) is None]
        if missing:
            raise ValueError(f"--format onnx needs {' and '.join(missing)}: pip install onnx onnxscript onnxruntime")
    args.no_flip, args.device, args.backend = not args.flip_test, "cpu", "torch"
    model, _ = load_model(args)
    if model_kind(model) != TOP_DOWN:
        raise ValueError(f"{args.config} is a bottom-up model; export takes top-down models (its people are "
                         f"grouped on the host)")
    warn_if_random_weights(args)
    path = export_model(model, out, format=args.format, flip_test=args.flip_test, method=args.method)
    opset = f", opset {ONNX_OPSET}" if args.format == "onnx" else ""
    print(f"wrote {path} ({args.format}{opset}; flip test {'on' if args.flip_test else 'off'}, decoder "
          f"{args.method}; inputs images (N, 3, {model.input_size[0]}, {model.input_size[1]}), center, scale)",
          file=sys.stderr)
    return 0


def add_parser(sub) -> None:
    p = sub.add_parser("export", help="a top-down model as an ONNX graph or torch.export program, decoding inside")
    p.add_argument("config", help="a training config file, or a zoo model name")
    p.add_argument("--checkpoint", help="weights to load (any layout `eval` takes)")
    p.add_argument("--format", choices=EXPORT_FORMATS, default="onnx", help="onnx (default) or torch-export (.pt2)")
    p.add_argument("--out", required=True, help="the file to write (model.onnx, model.pt2)")
    p.add_argument("--flip-test", action="store_true", help="average with the mirrored crops inside the graph")
    p.add_argument("--method", choices=DECODE_METHODS, help="decoder (default: the config's decode_method, shift)")
    p.add_argument("--keypoint-set", choices=KEYPOINT_SET_NAMES,
                   help="the model's keypoints (default: the config's, else coco)")
    p.set_defaults(func=run)
