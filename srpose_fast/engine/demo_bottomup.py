"""`srpose-fast demo --bottom-up`: the bottom-up pipeline end to end on its embedded default data.

Generates the synthetic multi-person COCO-format set (`data.synthetic_multi`: several figures per image,
crowd regions, keypoint-less people), trains `bottomup_demo` (a narrow HRNet with the SR head on
Associative Embedding) with the original's optimiser (Adam, linear warm-up, x0.1 steps) and loss
(masked heatmap loss + AE push/pull), evaluates every validation image as the original does (whole
image, flip test, NMS, grouping by tags, COCO keypoint AP without boxes) and writes under the output
folder: `metrics.json` (the COCO stats and the wall time), `metrics.md`, `keypoints_results.json`, the
plots (`loss_curve.png`, `keypoint_overlays.png`, `heatmaps.png`), the checkpoints and logs (`train/`)
and the data (`data/`). On a CUDA machine it runs longer and on more data.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import torch

from ..data.bottomup import BottomUpCocoDataset
from ..data.bottomup_resize import bottomup_resize
from ..data.synthetic_multi import generate_synthetic_bottomup
from .bottomup_evaluator import evaluate_bottomup
from .coco_metrics import metrics_markdown
from .config import TrainConfig
from .demo import DemoSize, demo_config
from .plots import plot_heatmaps, plot_keypoint_overlays, plot_loss_curve
from .trainer import train

MODEL = "bottomup_demo"
# Twice the original's 1.5e-3. Measured on the synthetic set (400 images, 12 epochs, batch 8, one thread):
# 3e-3 lowered the heatmap loss faster than 5e-3 (3.48e-3 against 3.57e-3 after 10 epochs), and the "max" push
# (the model's) separated the tags where the "exp" push left them equal (push 0.12 against 0.35): AP 0.037
# against 0.001 (exp, sigma 4, narrower net, 6 epochs at 5e-3).
LR = 3e-3
# 24 epochs of 500 images: AP 0.167 in 9.2 minutes on the 2-core container (16 epochs: AP 0.102 in 6.7).
BOTTOMUP_DEMO_SIZES = {
    "cpu": DemoSize(train_images=500, val_images=100, epochs=24, batch_size=8),
    "cuda": DemoSize(train_images=4000, val_images=500, epochs=60, batch_size=32),
    "tiny": DemoSize(train_images=8, val_images=4, epochs=1, batch_size=4),  # the CI smoke run
}


def bottomup_demo_config(data: Path, out: Path, size: DemoSize, seed: int) -> TrainConfig:
    """The top-down demo's schedule (`demo.demo_config`: the original's optimiser shortened to `size.epochs`)
    for `bottomup_demo`, at its own learning rate (`LR`)."""
    return demo_config(data, out, size, seed).replace(model=MODEL, lr=LR)


def run_bottomup_demo(out: str | Path, *, seed: int = 0, size: str | None = None,
                      progress: bool | None = None) -> dict:
    """Run the demo; `size` is "cpu", "cuda" or "tiny" (default: "cuda" when a GPU is found, else "cpu")."""
    start = time.perf_counter()
    size_name = size or ("cuda" if torch.cuda.is_available() else "cpu")
    if size_name not in BOTTOMUP_DEMO_SIZES:
        raise ValueError(f"demo size must be one of {sorted(BOTTOMUP_DEMO_SIZES)}, got {size_name!r}")
    sizes = BOTTOMUP_DEMO_SIZES[size_name]
    out = Path(out)
    data = out / "data"
    show = progress if progress is not None else True
    generate_synthetic_bottomup(data, num_images=sizes.train_images, split="train", seed=seed, progress=show)
    generate_synthetic_bottomup(data, num_images=sizes.val_images, split="val", seed=seed, progress=show)

    config = bottomup_demo_config(data, out, sizes, seed)
    config.progress = progress
    model = train(config).model

    val = BottomUpCocoDataset(config.val_ann, config.val_images, keypoint_set=model.keypoint_set,
                              input_size=model.codec.input_size, train=False)
    stats = evaluate_bottomup(model, val, flip_test=True, out_dir=out, progress=show)
    with open(out / "keypoints_results.json") as f:
        results = json.load(f)
    inputs, _ = bottomup_resize(val[0]["image"], model.codec.input_size)
    plots = {
        "loss_curve": plot_loss_curve(out / "train" / "log.csv", out / "loss_curve.png"),
        "heatmaps": plot_heatmaps(model, {"image": torch.from_numpy(inputs)}, out / "heatmaps.png"),
    }
    if results:  # a model that found nobody has nothing to overlay (the evaluator said so)
        plots["keypoint_overlays"] = plot_keypoint_overlays(val, results, out / "keypoint_overlays.png")
    metrics = {**stats, "wall_time_s": round(time.perf_counter() - start, 1), "size": size_name,
               "device": str(next(model.parameters()).device), "train_images": sizes.train_images,
               "val_images": sizes.val_images, "epochs": sizes.epochs}
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    print(metrics_markdown(stats, title=f"{MODEL} on synthetic multi-person COCO ({size_name}), flip test"))
    print(f"wall time {metrics['wall_time_s']} s; wrote {out / 'metrics.json'} and plots: "
          + ", ".join(str(p) for p in plots.values()))
    return metrics
