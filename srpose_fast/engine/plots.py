"""The figures people look at after a run: loss curve, keypoint overlays, heatmaps of one sample."""
from __future__ import annotations

import csv
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from ..data.coco import read_image  # noqa: E402
from .visualize import draw_pose  # noqa: E402


def plot_loss_curve(log_csv: str | Path, path: str | Path) -> Path:
    """Training loss (log scale) and learning rate against iteration, from the trainer's log.csv."""
    with open(log_csv, newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows:
        raise ValueError(f"{log_csv} has no rows to plot")
    iters = [int(r["iter"]) for r in rows]
    fig, loss_ax = plt.subplots(figsize=(7, 4))
    loss_ax.plot(iters, [float(r["loss"]) for r in rows], color="tab:blue", label="loss")
    loss_ax.set_yscale("log")
    loss_ax.set_xlabel("iteration")
    loss_ax.set_ylabel("multi-stage loss", color="tab:blue")
    lr_ax = loss_ax.twinx()
    lr_ax.plot(iters, [float(r["lr"]) for r in rows], color="tab:orange", alpha=0.6)
    lr_ax.set_ylabel("learning rate", color="tab:orange")
    loss_ax.set_title("training")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return Path(path)


def plot_keypoint_overlays(dataset, results: list[dict], path: str | Path, *, count: int = 8,
                           threshold: float = 0.2) -> Path:
    """Predicted poses drawn on the first `count` validation images that have predictions.

    `results` are COCO keypoint results (image_id, keypoints [x, y, score] * K), as the evaluator writes.
    """
    by_image: dict[int, list[np.ndarray]] = {}
    for result in results:
        by_image.setdefault(result["image_id"], []).append(np.asarray(result["keypoints"]).reshape(-1, 3))
    image_ids = list(by_image)[:count]
    if not image_ids:
        raise ValueError("no predictions to draw")
    columns = min(4, len(image_ids))
    rows = -(-len(image_ids) // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(3 * columns, 3.6 * rows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, image_id in zip(axes.flat, image_ids):
        info = dataset.coco.loadImgs(image_id)[0]
        canvas = read_image(Path(dataset.img_prefix) / info["file_name"])
        for pose in by_image[image_id]:
            canvas = draw_pose(canvas, pose[:, :2], pose[:, 2], dataset.keypoint_set, threshold=threshold)
        ax.imshow(canvas[:, :, ::-1])
        ax.set_title(f"image {image_id}", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)


@torch.no_grad()
def plot_heatmaps(model, sample: dict, path: str | Path) -> Path:
    """The crop of one sample and the model's final heatmap of every keypoint."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    try:
        heatmaps = model(sample["image"][None].to(device))[0].float().cpu().numpy()
    finally:
        model.train(was_training)
    names = model.keypoint_set.names
    columns = 6
    rows = -(-(len(names) + 1) // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(2.2 * columns, 2.6 * rows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    mean = np.array([0.485, 0.456, 0.406])[:, None, None]
    std = np.array([0.229, 0.224, 0.225])[:, None, None]
    crop = np.clip(sample["image"].numpy() * std + mean, 0, 1).transpose(1, 2, 0)
    axes.flat[0].imshow(crop)
    axes.flat[0].set_title("input crop", fontsize=8)
    for ax, name, heatmap in zip(list(axes.flat)[1:], names, heatmaps):
        ax.imshow(heatmap, cmap="magma")
        ax.set_title(f"{name} ({heatmap.max():.2f})", fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)
