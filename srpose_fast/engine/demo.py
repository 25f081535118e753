"""`srpose-fast demo`: a smoke run of the demo model on a synthetic batch.

Builds `srpose_demo`, takes a few optimisation steps on Gaussian-blob images whose blobs are the
keypoints, and prints the decoded keypoints next to the truth.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import torch

from ..models import build_model


def synthetic_batch(n: int, size: tuple[int, int], num_joints: int, generator: torch.Generator):
    """Images with one bright dot per keypoint, and those keypoints in pixels."""
    height, width = size
    keypoints = torch.rand(n, num_joints, 2, generator=generator) * torch.tensor([width - 16.0, height - 16.0]) + 8
    ys = torch.arange(height, dtype=torch.float32)[:, None]
    xs = torch.arange(width, dtype=torch.float32)[None, :]
    dist = (xs - keypoints[..., 0, None, None]) ** 2 + (ys - keypoints[..., 1, None, None]) ** 2
    dots = torch.exp(-dist / 8.0).amax(dim=1, keepdim=True)
    return dots.expand(n, 3, height, width).contiguous(), keypoints


def run_demo(out: str | Path, *, seed: int = 0, steps: int = 3) -> dict:
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    model = build_model("srpose_demo")
    images, keypoints = synthetic_batch(2, model.input_size, model.keypoint_set.num_keypoints, generator)
    weights = torch.ones(keypoints.shape[:2])
    optimizer = torch.optim.Adam(model.parameters(), lr=5e-4)
    start = time.perf_counter()
    losses = []
    for _ in range(steps):
        model.train()
        loss = model.loss(model(images), keypoints / model.output_stride, weights)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    predicted, scores = model.predict(images, flip_test=True, method="shift")
    print(f"srpose_demo: {sum(p.numel() for p in model.parameters()):,} parameters, "
          f"input {model.input_size[0]}x{model.input_size[1]}, losses {', '.join(f'{x:.6f}' for x in losses)}")
    for name, truth, pred, score in zip(model.keypoint_set.names, keypoints[0], predicted[0], scores[0]):
        print(f"  {name:<15} truth ({truth[0]:6.1f}, {truth[1]:6.1f})  "
              f"decoded ({pred[0]:6.1f}, {pred[1]:6.1f})  score {score:.4f}")
    result = {"losses": losses, "keypoints": predicted.tolist(), "scores": scores.tolist(),
              "wall_time_s": time.perf_counter() - start}
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "smoke.json").write_text(json.dumps(result, indent=2))
    print(f"wrote {out / 'smoke.json'}")
    return result
