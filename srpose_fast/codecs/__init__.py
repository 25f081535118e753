"""Targets (encode), decoders (decode) and the codec that owns every unit conversion.

The names load on first use, so `srpose_fast.codecs.conventions` (the shared constants) imports without
torch: the torch-free deployment decoder and the CLI read it.
"""
import importlib

_HOMES = {
    "DECODE_METHODS": "conventions", "PIXEL_STD": "conventions", "SRPOSE_STAGE_WEIGHTS": "conventions",
    "TARGET_METHODS": "conventions", "dark_blur_sigma": "conventions", "sigma_for_height": "conventions",
    "HeatmapCodec": "heatmap_codec",
    "decode_locations": "decoders", "gaussian_blur": "decoders", "heatmap_argmax": "decoders",
    "refine_dark": "decoders", "refine_dark_udp": "decoders", "refine_shift": "decoders",
    "flip_merge": "flip",
    "encode_heatmaps": "targets", "pooled_target": "targets",
    "box_to_center_scale": "transforms", "heatmap_to_box": "transforms", "heatmap_to_image": "transforms",
    "image_to_heatmap": "transforms",
}
__all__ = sorted(_HOMES)


def __getattr__(name):
    if name in _HOMES:
        return getattr(importlib.import_module(f".{_HOMES[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
