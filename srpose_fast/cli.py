"""The `srpose-fast` command: models, train, eval, predict, quantization, bench, demo."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def _models(args: argparse.Namespace) -> int:
    from .models import MODEL_SPECS

    width = max(map(len, MODEL_SPECS))
    for name, spec in sorted(MODEL_SPECS.items()):
        print(f"{name:<{width}}  {spec.input_size[0]}x{spec.input_size[1]}  {spec.description}")
    return 0


def _train(args: argparse.Namespace) -> int:
    from .engine.trainer import train

    resume = True if args.resume == "latest" else args.resume
    try:
        train(args.config, resume=resume, output_dir=args.out)
    except KeyboardInterrupt:
        print("interrupted; resume with --resume", file=sys.stderr)
        return 130
    return 0


def _load_model(args: argparse.Namespace):
    """The model of a config (or zoo name), with weights from a checkpoint, on the best device."""
    import torch

    from .engine.checkpoint import load_checkpoint
    from .engine.config import load_config
    from .models import build_model

    config = load_config(args.config) if args.config.endswith((".json", ".toml")) else None
    name = config.model if config else args.config
    model = build_model(name, keypoint_set=config.keypoint_set if config else "coco",
                        input_size=config.input_size if config else None)
    if args.checkpoint:
        load_checkpoint(args.checkpoint, model, model_name=name)
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    return model.to(device).eval(), config


def _eval(args: argparse.Namespace) -> int:
    from .data.coco import TopDownCocoDataset
    from .engine.coco_metrics import metrics_markdown
    from .engine.evaluator import evaluate

    model, config = _load_model(args)
    ann = args.ann or (config.val_ann if config else None)
    images = args.images or (config.val_images if config else None)
    detections = args.detections or (config.val_bbox_file if config else None)
    if ann is None or images is None:
        raise SystemExit("eval needs --ann and --images (or a config that names the validation set)")
    dataset = TopDownCocoDataset(ann, images, keypoint_set=model.keypoint_set, input_size=model.input_size,
                                 train=False, detections=detections)
    stats = evaluate(model, dataset, batch_size=args.batch_size, method=args.method, flip_test=not args.no_flip,
                     out_dir=args.out)
    print(metrics_markdown(stats, title=f"{Path(ann).name}, decoder {args.method}"))
    return 0


def _predict(args: argparse.Namespace) -> int:
    from .engine.predict import predict_image

    boxes = json.loads(args.boxes) if args.boxes.lstrip().startswith("[") else json.loads(Path(args.boxes).read_text())
    model, _ = _load_model(args)
    results = predict_image(model, args.image, boxes, method=args.method, flip_test=not args.no_flip,
                            out_dir=args.out)
    print(json.dumps(results, indent=1))
    return 0


def _quantization(args: argparse.Namespace) -> int:
    from .engine.quantization import quantization_table, write_quantization

    ann = args.ann
    if ann is None:  # the embedded default: a synthetic validation set
        from .data.synthetic import generate_synthetic_coco

        ann = generate_synthetic_coco(Path(args.out) / "data", num_images=args.num_images, split="val", seed=0)
    table = quantization_table(ann, target=args.target)
    write_quantization(table, args.out)
    return 0


def _bench(args: argparse.Namespace) -> int:
    from .benchmarking.runner import run_benchmarks
    from .benchmarking.suites import parse_suite

    try:
        for spec in args.suite or ():
            parse_suite(spec)
    except ValueError as err:
        print(f"srpose-fast bench: error: {err}", file=sys.stderr)
        return 2
    run_benchmarks(quick=args.quick, out=args.out, suites=args.suite)
    return 0


def _demo(args: argparse.Namespace) -> int:
    from .engine.demo import run_demo

    run_demo(args.out, seed=args.seed, size=args.size)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="srpose-fast", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    sub.add_parser("models", help="list the model zoo").set_defaults(func=_models)

    train = sub.add_parser("train", help="train a model from a config file (torchrun for several GPUs)")
    train.add_argument("config", help="a .json or .toml training config (see configs/)")
    train.add_argument("--resume", nargs="?", const="latest", default=None,
                       help="resume from OUT/latest.pth, or from the checkpoint given")
    train.add_argument("--out", default=None, help="output folder (default: the config's output_dir)")
    train.set_defaults(func=_train)

    def model_args(p: argparse.ArgumentParser) -> None:
        p.add_argument("config", help="a training config file, or a zoo model name")
        p.add_argument("--checkpoint", help="weights to load (a trainer checkpoint)")
        p.add_argument("--method", default="shift", choices=("argmax", "shift", "dark", "dark_udp"))
        p.add_argument("--no-flip", action="store_true", help="turn the flip test off")
        p.add_argument("--device", default=None)

    evaluate = sub.add_parser("eval", help="COCO keypoint AP of a model on a COCO-format set")
    model_args(evaluate)
    evaluate.add_argument("--ann", help="annotation file (default: the config's val_ann)")
    evaluate.add_argument("--images", help="image folder (default: the config's val_images)")
    evaluate.add_argument("--detections", help="person detections JSON (default: ground-truth boxes)")
    evaluate.add_argument("--batch-size", type=int, default=32)
    evaluate.add_argument("--out", default="outputs/eval")
    evaluate.set_defaults(func=_eval)

    predict = sub.add_parser("predict", help="keypoints of the boxed people in one image")
    model_args(predict)
    predict.add_argument("image")
    predict.add_argument("--boxes", required=True, help='JSON list of [x, y, w, h] boxes, or a file holding one')
    predict.add_argument("--out", default="outputs/predict")
    predict.set_defaults(func=_predict)

    quant = sub.add_parser("quantization", help="each decoder's AP upper bound at each heatmap resolution")
    quant.add_argument("--ann", help="annotation file (default: a generated synthetic set)")
    quant.add_argument("--num-images", type=int, default=200, help="size of the generated default set")
    quant.add_argument("--target", choices=("msra", "unbiased"), default="msra",
                       help="ground-truth encoding: msra (SRPose's, integer centres) or unbiased (exact centres)")
    quant.add_argument("--out", default="outputs/quantization")
    quant.set_defaults(func=_quantization)

    bench = sub.add_parser("bench", help="time every backend against the reference (see benchmarks/)")
    bench.add_argument("--quick", action="store_true", help="small sizes: a minute or two on a CPU")
    bench.add_argument("--out", default="outputs/bench", help="folder for the JSON, the table and the plot")
    bench.add_argument("--suite", action="append", default=None,
                       help="run only this suite (repeatable): sr_head, decode, sr_head_decode, loss, deploy, "
                            "train[:MODELS], infer[:MODELS] (MODELS: zoo names, comma-separated)")
    bench.set_defaults(func=_bench)

    demo = sub.add_parser("demo", help="the main job on its embedded default data")
    demo.add_argument("--out", default="outputs/demo", help="output folder")
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument("--size", choices=("cpu", "cuda", "tiny"), default=None,
                      help="how much to train (default: cuda when a GPU is found, else cpu)")
    demo.set_defaults(func=_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
