"""The quantization upper bound: COCO AP of perfect heatmaps at several resolutions and decoders.

For every annotated person (non-crowd, with keypoints and a box of positive size):
box -> center/scale (`box_to_center_scale`, the input's aspect ratio, padding 1.25) -> ground-truth
keypoints to heatmap pixels (`image_to_heatmap`: the affine crop to the input followed by the
input -> heatmap scaling, one map for both as there is no rotation) -> targets of `target`
(default MSRA, SRPose's) with sigma = 2 * H / 64 (2 at 64x48, 8 at 256x192) -> each decoder via
`decode_heatmaps` with the same center/scale back to the image -> COCOeval against the same
annotations. Keypoint scores are the decoded maxima; the instance score is their mean over those
above 0.2 (box score 1). No flip test and no NMS: one prediction per ground truth.

What the numbers mean: MSRA targets put each Gaussian on the nearest pixel (mu = int(p + 0.5)),
so the map itself has lost up to half a heatmap pixel; and the Gaussian is symmetric about mu,
so "shift" finds equal neighbours and does not move and DARK's Newton step is ~0: on MSRA targets
all decoders return the integer peak (up to DARK's zero-padded blur at the map border) and only
the resolution matters. That is the quantization error SRPose removes by predicting at 256x192.
With `target="unbiased"` (Gaussians centred at the float position, DARK's encoding) the maps keep
the sub-pixel position, and the decoders separate: DARK recovers it, shift recovers part of it,
argmax none.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from ..codecs.conventions import TARGET_METHODS, sigma_for_height
from ..codecs.targets import encode_heatmaps
from ..codecs.transforms import box_to_center_scale, image_to_heatmap
from ..keypoint_sets import COCO, KeypointSet, get_keypoint_set
from ..ops.decode import decode_heatmaps
from .coco_metrics import coco_keypoint_eval, keypoint_results
from .evaluator import rescore

SIZES = ((64, 48), (128, 96), (256, 192))
DECODERS = ("argmax", "shift", "dark")


def size_key(size: Sequence[int]) -> str:
    return f"{int(size[0])}x{int(size[1])}"


def _load_persons(ann_file, keypoint_set: KeypointSet):
    """(data dict, image ids (N,), boxes (N, 4) xywh, keypoints (N, K, 2), visible (N, K))."""
    data = json.loads(Path(ann_file).read_bytes())
    k = keypoint_set.num_keypoints
    ids, boxes, kpts = [], [], []
    for ann in data.get("annotations", []):
        if ann.get("iscrowd", 0) or ann.get("category_id", 1) != 1 or "bbox" not in ann:
            continue
        values = np.asarray(ann.get("keypoints", [0] * 3 * k), dtype=np.float64)
        if values.size != 3 * k:
            raise ValueError(f"{ann_file}: annotation {ann.get('id')} has {values.size} keypoint values, "
                             f"keypoint set {keypoint_set.name!r} needs {3 * k}")
        values = values.reshape(k, 3)
        if not (values[:, 2] > 0).any() or ann["bbox"][2] <= 0 or ann["bbox"][3] <= 0:
            continue
        ids.append(ann["image_id"])
        boxes.append(ann["bbox"])
        kpts.append(values)
    kpts = np.asarray(kpts, dtype=np.float64).reshape(-1, k, 3)
    return data, np.asarray(ids, dtype=np.int64), np.asarray(boxes, dtype=np.float64).reshape(-1, 4), \
        kpts[..., :2], (kpts[..., 2] > 0).astype(np.float32)


def quantization_table(ann_file, *, sizes=SIZES, decoders=DECODERS, input_size=(256, 192),
                       sigma_at_256: float = 8.0, target: str = "msra", keypoint_set: KeypointSet | str = COCO,
                       blur_kernel: int = 11, chunk: int = 64) -> dict[str, dict[str, float]]:
    """{"<H>x<W>": {"<decoder>": AP}}: the COCO AP that perfect heatmaps of each size reach with each
    decoder (see the module docstring).

    Args:
        ann_file: COCO-format keypoint annotations (ground truth and evaluation set at once).
        sizes: heatmap sizes (H, W); decoders: `decode_heatmaps` methods.
        input_size: (H, W) of the model input; sets the crop's aspect ratio.
        sigma_at_256: target sigma at a height of 256; sigma = sigma_at_256 * H / 256
            (8 -> 2 at 64x48, SRPose's 8 at 256x192).
        target: "msra" | "unbiased" | "udp" (`encode_heatmaps` method).
        chunk: persons encoded and decoded at once (memory: chunk * K * H * W floats).
    """
    if target not in TARGET_METHODS:
        raise ValueError(f"target must be one of {TARGET_METHODS}, got {target!r}")
    kset = get_keypoint_set(keypoint_set)
    data, ids, boxes, kpts, visible = _load_persons(ann_file, kset)
    if len(ids) == 0:
        raise ValueError(f"{ann_file}: no person annotation with keypoints and a box to measure")
    center, scale = box_to_center_scale(torch.from_numpy(boxes), input_size[1] / input_size[0])
    kpts_t = torch.from_numpy(kpts)
    vis_t = torch.from_numpy(visible)
    table: dict[str, dict[str, float]] = {}
    for size in sizes:
        height, width = int(size[0]), int(size[1])
        sigma = sigma_for_height(sigma_at_256, height)
        found = {d: ([], []) for d in decoders}
        for a in range(0, len(ids), chunk):
            sl = slice(a, a + chunk)
            on_map = image_to_heatmap(kpts_t[sl], center[sl], scale[sl], (height, width))
            maps, _ = encode_heatmaps(on_map, vis_t[sl], (height, width), sigma, method=target)
            for d in decoders:
                xy, sc = decode_heatmaps(maps, method=d, blur_kernel=blur_kernel, center=center[sl], scale=scale[sl])
                found[d][0].append(xy.numpy())
                found[d][1].append(sc.numpy())
        row = {}
        for d in decoders:
            xy, sc = np.concatenate(found[d][0]), np.concatenate(found[d][1])
            results = keypoint_results(ids, xy, sc, rescore(np.ones(len(ids)), sc))
            row[d] = coco_keypoint_eval(data, results, kset.sigmas)["AP"]
        table[size_key(size)] = row
    return table


def quantization_markdown(table: dict[str, dict[str, float]]) -> str:
    """Rows = heatmap sizes, columns = decoders, AP in percent (two decimals)."""
    decoders = list(next(iter(table.values())))
    lines = ["| heatmap | " + " | ".join(decoders) + " |", "|---|" + "---|" * len(decoders)]
    for size, row in table.items():
        lines.append(f"| {size} | " + " | ".join(f"{100.0 * row[d]:.2f}" for d in decoders) + " |")
    return "\n".join(lines) + "\n"


def plot_quantization(table: dict[str, dict[str, float]], path) -> Path:
    """AP (percent) against heatmap height, one line per decoder; a PNG drawn with matplotlib's Agg
    canvas (pyplot and its global backend are not touched)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    sizes = list(table)
    heights = [int(s.split("x")[0]) for s in sizes]
    fig = Figure(figsize=(5.0, 3.6), dpi=120)
    FigureCanvasAgg(fig)  # the Agg canvas, whatever pyplot's backend is
    ax = fig.add_subplot()
    for d in next(iter(table.values())):
        ax.plot(heights, [100.0 * table[s][d] for s in sizes], marker="o", label=d)
    ax.set_xscale("log", base=2)
    ax.set_xticks(heights, sizes)
    ax.minorticks_off()
    ax.set_xlabel("heatmap size (H x W)")
    ax.set_ylabel("AP of ground-truth heatmaps (%)")
    ax.set_title("Quantization upper bound")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    return path


def write_quantization(table: dict[str, dict[str, float]], out_dir, *, verbose: bool = True) -> dict[str, Path]:
    """Write `quantization.json` (the table exactly), `quantization.png` and `quantization.md`
    under out_dir; print the markdown table when verbose. Returns the paths by kind."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"json": out / "quantization.json", "png": out / "quantization.png", "md": out / "quantization.md"}
    paths["json"].write_text(json.dumps(table, indent=2) + "\n")
    markdown = quantization_markdown(table)
    paths["md"].write_text(markdown)
    plot_quantization(table, paths["png"])
    if verbose:
        print(markdown, end="")
    return paths
