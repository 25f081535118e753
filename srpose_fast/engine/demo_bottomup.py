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

from ..data.bottomup_resize import bottomup_resize
from ..data.synthetic_multi import generate_synthetic_bottomup
from .bottomup_evaluator import evaluate_bottomup
from .config import TrainConfig
from .demo import DemoSize, demo_config, finish_demo, pick_size, train_on_synthetic
from .eval_protocol import eval_dataset
from .plots import plot_heatmaps, plot_keypoint_overlays, plot_loss_curve

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
    for `bottomup_demo`, at its own learning rate (`LR`) and the original's augmentation."""
    return demo_config(data, out, size, seed, model=MODEL, lr=LR)


def run_bottomup_demo(out: str | Path, *, seed: int = 0, size: str | None = None,
                      progress: bool | None = None) -> dict:
    """Run the demo; `size` is "cpu", "cuda" or "tiny" (default: "cuda" when a GPU is found, else "cpu")."""
    start = time.perf_counter()
    size_name, sizes = pick_size(size, BOTTOMUP_DEMO_SIZES)
    out = Path(out)
    model, config = train_on_synthetic(generate_synthetic_bottomup,
                                       lambda data: bottomup_demo_config(data, out, sizes, seed),
                                       out, sizes, seed, progress)
    show = progress if progress is not None else True
    val = eval_dataset(model, config)
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
    return finish_demo(out, model, stats, plots, size_name, sizes, start,
                       f"{MODEL} on synthetic multi-person COCO ({size_name}), flip test")
