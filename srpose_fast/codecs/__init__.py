"""Targets (encode) and decoders (decode): the torch reference semantics every kernel is tested against."""
from .decoders import (DECODE_METHODS, decode_locations, gaussian_blur, heatmap_argmax, refine_dark,
                       refine_dark_udp, refine_shift)
from .flip import flip_merge
from .targets import TARGET_METHODS, encode_heatmaps, pooled_target
from .transforms import box_to_center_scale, heatmap_to_box, heatmap_to_image, image_to_heatmap

__all__ = [
    "DECODE_METHODS", "TARGET_METHODS", "box_to_center_scale", "decode_locations", "encode_heatmaps",
    "flip_merge", "gaussian_blur", "heatmap_argmax", "heatmap_to_box", "heatmap_to_image", "image_to_heatmap",
    "pooled_target", "refine_dark", "refine_dark_udp", "refine_shift",
]
