"""Deployment helpers that need no torch: the portable heatmap decoder (numpy in, numpy out).

Importing this package never imports torch and never fails when the compiled decoder is missing;
constructing a `HeatmapDecoder` then raises an ImportError that says how to build it.
"""
from .decoder import COCO_FLIP_INDICES, DECODE_METHODS, HeatmapDecoder, decoder_available

__all__ = ["COCO_FLIP_INDICES", "DECODE_METHODS", "HeatmapDecoder", "decoder_available"]
