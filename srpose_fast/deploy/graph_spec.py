"""What an exported pose graph looks like (`deploy.export`), torch-free so the CLI and deployments can read it.

Inputs, in this order: images (N, 3, H, W) float32, RGB normalised with ImageNet's mean and std on 0-255
values; center (N, 2) and scale (N, 2) of the crops (scale in units of 200 px). Outputs: keypoints (N, K, 2)
in image pixels, scores (N, K). N is dynamic.
"""
from __future__ import annotations

ONNX_OPSET = 18
EXPORT_FORMATS = ("onnx", "torch-export")
INPUT_NAMES = ("images", "center", "scale")
OUTPUT_NAMES = ("keypoints", "scores")
METADATA_FILE = "srpose_fast.json"  # graph_metadata inside a .pt2 archive
