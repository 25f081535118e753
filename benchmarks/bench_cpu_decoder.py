"""CPU heatmap decoding: the portable C++ decoder against the decoders it replaces.

Providers (one setup function each, all decoding to image coordinates with center/scale):
- cpp_dark, cpp_dark_1t: srpose_fast.deploy.HeatmapDecoder("dark"), all cores / one thread.
- cpp_shift: HeatmapDecoder("shift"), SRPose's own decoding.
- mmpose_dark: DARK the way mmpose 1.x runs it (written here): per instance, argmax in numpy; per map
  a zero-padded copy, cv2.GaussianBlur of the whole padded map, crop, rescale to the map's maximum;
  log of all maps; then a Python loop over keypoints for the Taylor step with np.linalg.
- reference_srpose: srpose_fast.reference.decode.srpose_decode, SRPose's decoding as the original runs it
  (block max-pool argmax, Python loop for the quarter-pixel shift, per-instance transform).
- torch_dark: srpose_fast.ops.decode.decode_heatmaps(method="dark", backend="torch") on CPU tensors.

Two ways to run it:
    pytest benchmarks --benchmark-only                   (pytest-benchmark, all cases)
    python benchmarks/bench_cpu_decoder.py --out DIR     (a markdown table + JSON with machine info)
The script also reports how far each provider's keypoints are from the C++ decoder's (a sanity check,
not a test).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from functools import lru_cache
from itertools import product
from pathlib import Path

import numpy as np

BLUR_KERNEL = 11
SIZES = {"64x48": (64, 48), "256x192": (256, 192)}
BATCHES = (1, 32, 256)
NUM_KEYPOINTS = 17
# SRPose's target sigma is 8 at 256x192 (2 at the 64x48 resolution of the simple head).
SIGMA = {"64x48": 2.0, "256x192": 8.0}


# ------------------------------------------------------------------------------------------- inputs

@lru_cache(maxsize=2)
def inputs(batch: int, size: str):
    """Gaussian heatmaps (one sub-pixel peak per map, small noise), center and scale: like a model's output."""
    height, width = SIZES[size]
    rng = np.random.default_rng(batch * 1000 + height)
    sigma = SIGMA[size]
    cx = rng.uniform(0.1 * width, 0.9 * width, (batch, NUM_KEYPOINTS, 1, 1)).astype(np.float32)
    cy = rng.uniform(0.1 * height, 0.9 * height, (batch, NUM_KEYPOINTS, 1, 1)).astype(np.float32)
    gx = np.exp(-((np.arange(width, dtype=np.float32) - cx) ** 2) / (2 * sigma ** 2))  # (N, K, 1, W)
    gy = np.exp(-((np.arange(height, dtype=np.float32)[:, None] - cy) ** 2) / (2 * sigma ** 2))  # (N, K, H, 1)
    maps = gy * gx
    maps += rng.normal(0.0, 0.002, maps.shape).astype(np.float32)
    center = rng.uniform(100.0, 500.0, (batch, 2)).astype(np.float32)
    scale = rng.uniform(0.8, 1.6, (batch, 2)).astype(np.float32)
    return np.ascontiguousarray(maps, dtype=np.float32), center, scale


# ------------------------------------------------------------------------ mmpose-style DARK (numpy + cv2)

def _blur_like_mmpose(maps: np.ndarray, kernel: int) -> np.ndarray:
    """(K, H, W): every map zero-padded, blurred whole with cv2, cropped, rescaled to its old maximum."""
    import cv2

    border = (kernel - 1) // 2
    num, height, width = maps.shape
    out = maps.copy()
    for k in range(num):
        peak = np.max(out[k])
        padded = np.zeros((height + 2 * border, width + 2 * border), dtype=np.float32)
        padded[border:-border, border:-border] = out[k]
        padded = cv2.GaussianBlur(padded, (kernel, kernel), 0)
        out[k] = padded[border:-border, border:-border]
        out[k] *= peak / np.max(out[k])
    return out


def mmpose_style_dark(maps: np.ndarray, center: np.ndarray, scale: np.ndarray, kernel: int = BLUR_KERNEL):
    """DARK decoding one instance at a time, as mmpose 1.x's heatmap codecs do it."""
    batch, num, height, width = maps.shape
    keypoints = np.zeros((batch, num, 2), dtype=np.float32)
    scores = np.zeros((batch, num), dtype=np.float32)
    for n in range(batch):
        flat = maps[n].reshape(num, -1)
        index = np.argmax(flat, axis=1)
        values = np.amax(flat, axis=1)
        locs = np.stack((index % width, index // width), axis=-1).astype(np.float32)
        locs[values <= 0] = -1
        logs = _blur_like_mmpose(maps[n], kernel)
        np.maximum(logs, 1e-10, out=logs)
        np.log(logs, out=logs)
        for k in range(num):
            x, y = int(locs[k, 0]), int(locs[k, 1])
            if 1 < x < width - 2 and 1 < y < height - 2:
                m = logs[k]
                gradient = np.array([[0.5 * (m[y, x + 1] - m[y, x - 1])], [0.5 * (m[y + 1, x] - m[y - 1, x])]])
                dxx = 0.25 * (m[y, x + 2] - 2 * m[y, x] + m[y, x - 2])
                dyy = 0.25 * (m[y + 2, x] - 2 * m[y, x] + m[y - 2, x])
                dxy = 0.25 * (m[y + 1, x + 1] - m[y - 1, x + 1] - m[y + 1, x - 1] + m[y - 1, x - 1])
                hessian = np.array([[dxx, dxy], [dxy, dyy]])
                if np.linalg.det(hessian) != 0:
                    locs[k] -= (np.linalg.inv(hessian) @ gradient).ravel()
        crop = scale[n] * 200.0
        keypoints[n] = locs * (crop / np.array([width, height])) + center[n] - crop * 0.5
        scores[n] = values
    return keypoints, scores


# ------------------------------------------------------------------------------------------ providers

def setup_cpp(method: str, num_threads=None):
    from srpose_fast.deploy import HeatmapDecoder

    decoder = HeatmapDecoder(method, blur_kernel=BLUR_KERNEL, num_threads=num_threads)
    return lambda maps, center, scale: decoder.decode(maps, center=center, scale=scale)


def setup_mmpose_dark():
    return mmpose_style_dark


def setup_reference_srpose():
    import torch

    from srpose_fast.reference.decode import srpose_decode

    def run(maps, center, scale):
        keypoints, values = srpose_decode(torch.from_numpy(maps), center, scale)
        return keypoints, values[..., 0]
    return run


def setup_torch_dark():
    from srpose_fast.ops.decode import decode_heatmaps

    def run(maps, center, scale):
        return decode_heatmaps(maps, method="dark", blur_kernel=BLUR_KERNEL, center=center, scale=scale,
                               backend="torch")
    return run


PROVIDERS = {
    "cpp_dark": lambda: setup_cpp("dark"),
    "cpp_dark_1t": lambda: setup_cpp("dark", num_threads=1),
    "cpp_shift": lambda: setup_cpp("shift"),
    "mmpose_dark": setup_mmpose_dark,
    "reference_srpose": setup_reference_srpose,
    "torch_dark": setup_torch_dark,
}
# which C++ provider computes the same thing (for the sanity column)
SAME_AS = {"mmpose_dark": "cpp_dark", "torch_dark": "cpp_dark", "reference_srpose": "cpp_shift",
           "cpp_dark_1t": "cpp_dark"}


# --------------------------------------------------------------------------------- pytest-benchmark

try:
    import pytest
except ImportError:  # script mode does not need pytest
    pytest = None

if pytest is not None:
    @pytest.mark.parametrize("size", list(SIZES))
    @pytest.mark.parametrize("batch", BATCHES)
    @pytest.mark.parametrize("provider", list(PROVIDERS))
    def test_cpu_decode(benchmark, provider, batch, size):
        slow = provider in ("mmpose_dark", "torch_dark", "reference_srpose")
        if slow and batch == 256 and size == "256x192":
            pytest.skip("batch 256 at 256x192: several seconds per call on 2 cores; run the script for it")
        try:
            fn = PROVIDERS[provider]()
        except ImportError as err:
            pytest.skip(f"{provider} unavailable: {err}")
        maps, center, scale = inputs(batch, size)
        benchmark.extra_info.update(provider=provider, batch=batch, size=size)
        benchmark.pedantic(fn, args=(maps, center, scale), rounds=5 if batch < 256 else 3, iterations=1,
                           warmup_rounds=1)


# -------------------------------------------------------------------------------------- script mode

def time_call(fn, args, min_time: float, max_repeats: int) -> list[float]:
    fn(*args)  # warm-up
    times: list[float] = []
    start = time.perf_counter()
    while len(times) < 3 or (time.perf_counter() - start < min_time and len(times) < max_repeats):
        t0 = time.perf_counter()
        fn(*args)
        times.append(time.perf_counter() - t0)
    return times


def machine_info() -> dict:
    info = {"python": sys.version.split()[0], "platform": platform.platform(), "machine": platform.machine(),
            "cpu_count": os.cpu_count(), "numpy": np.__version__}
    if hasattr(os, "sched_getaffinity"):
        info["usable_cores"] = len(os.sched_getaffinity(0))
    try:
        with open("/proc/cpuinfo") as f:
            info["cpu"] = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), None)
    except OSError:
        pass
    for module in ("cv2", "torch"):
        try:
            info[module] = __import__(module).__version__
        except ImportError:
            info[module] = None
    try:
        import torch
        info["torch_threads"] = torch.get_num_threads()
    except ImportError:
        pass
    try:
        from srpose_fast.deploy import _decoder
        info["cpp_threads_batch32_256x192"] = _decoder.resolved_num_threads(32, NUM_KEYPOINTS, 256, 192, 0)
    except ImportError:
        pass
    return info


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="directory for cpu_decoder.md and cpu_decoder.json")
    parser.add_argument("--batches", type=int, nargs="+", default=list(BATCHES))
    parser.add_argument("--sizes", nargs="+", default=list(SIZES), choices=list(SIZES))
    parser.add_argument("--providers", nargs="+", default=list(PROVIDERS), choices=list(PROVIDERS))
    parser.add_argument("--skip-slow-largest", action="store_true",
                        help="skip mmpose_dark, torch_dark and reference_srpose at batch 256, 256x192")
    parser.add_argument("--min-time", type=float, default=1.0, help="seconds of repeats per case (at least 3)")
    args = parser.parse_args(argv)

    rows = []
    for size, batch in product(args.sizes, args.batches):
        maps, center, scale = inputs(batch, size)
        results = {}
        for provider in args.providers:
            if (args.skip_slow_largest and batch == 256 and size == "256x192"
                    and provider in ("mmpose_dark", "torch_dark", "reference_srpose")):
                print(f"{size} batch {batch} {provider}: skipped", flush=True)
                continue
            fn = PROVIDERS[provider]()
            times = time_call(fn, (maps, center, scale), args.min_time, max_repeats=50)
            keypoints, _ = fn(maps, center, scale)
            results[provider] = np.asarray(keypoints)
            row = {"size": size, "batch": batch, "provider": provider, "median_ms": 1e3 * statistics.median(times),
                   "min_ms": 1e3 * min(times), "repeats": len(times)}
            rows.append(row)
            print(f"{size} batch {batch:>3} {provider:<17} {row['median_ms']:10.2f} ms (x{len(times)})", flush=True)
        for row in rows:
            if row["size"] == size and row["batch"] == batch and SAME_AS.get(row["provider"]) in results:
                diff = np.abs(results[row["provider"]] - results[SAME_AS[row["provider"]]])
                row["max_abs_diff_px_vs_cpp"] = float(np.nanmax(diff))

    def median(size, batch, provider):
        return next((r["median_ms"] for r in rows if (r["size"], r["batch"], r["provider"]) == (size, batch, provider)),
                    None)

    args.out.mkdir(parents=True, exist_ok=True)
    info = machine_info()
    command = "python benchmarks/bench_cpu_decoder.py " + " ".join(argv if argv is not None else sys.argv[1:])
    (args.out / "cpu_decoder.json").write_text(json.dumps({"machine": info, "command": command, "rows": rows},
                                                          indent=2))
    providers = [p for p in args.providers if any(r["provider"] == p for r in rows)]
    lines = [f"CPU heatmap decoding to image coordinates, K = {NUM_KEYPOINTS}, median ms per call "
             f"(`{command}`)", "",
             f"Machine: {info.get('cpu')}, {info.get('usable_cores', info['cpu_count'])} usable cores, "
             f"numpy {info['numpy']}, opencv {info.get('cv2')}, torch {info.get('torch')}", "",
             "| heatmap | batch | " + " | ".join(providers) + " | dark: mmpose / cpp | shift: reference / cpp |",
             "|---|---:|" + "---:|" * len(providers) + "---:|---:|"]
    for size, batch in product(args.sizes, args.batches):
        cells = []
        for p in providers:
            value = median(size, batch, p)
            cells.append("skipped" if value is None else f"{value:.2f}")
        ratios = []
        for slow, fast in (("mmpose_dark", "cpp_dark"), ("reference_srpose", "cpp_shift")):
            a, b = median(size, batch, slow), median(size, batch, fast)
            ratios.append(f"{a / b:.1f}x" if a and b else "-")
        lines.append(f"| {size} | {batch} | " + " | ".join(cells) + " | " + " | ".join(ratios) + " |")
    lines += ["", "Largest |keypoint difference| in image px against the C++ decoder computing the same thing:", ""]
    for row in rows:
        if "max_abs_diff_px_vs_cpp" in row:
            lines.append(f"- {row['size']} batch {row['batch']} {row['provider']} vs {SAME_AS[row['provider']]}: "
                         f"{row['max_abs_diff_px_vs_cpp']:.2e}")
    (args.out / "cpu_decoder.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
