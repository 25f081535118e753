"""`HeatmapDecoder`: the torch-free front of the portable C++ decoder (`srpose_fast.deploy._decoder`).

Same semantics as `srpose_fast.ops.decode.decode_heatmaps(..., backend="torch")`: flip merge (when
`flipped` is given), argmax (lowest flat index on ties; NaN map -> NaN; maximum <= 0 -> score 0, no
refinement), the refinement named by `method`, then image coordinates (when center and scale are given).

Input dtypes: float32 and float16 heatmaps are decoded as given (float16 is widened to float32 on read,
which is exact). Other floats (float64) and integers are converted to float32 first, as the reference's
`.float()` does; bool, complex and object arrays are rejected with a TypeError. When
`heatmaps` and `flipped` differ in dtype both are converted to float32 (the merge is float32 anyway).
center and scale are converted to float32. Non-contiguous arrays are copied to C order.
"""
from __future__ import annotations

import numbers
from typing import Optional, Sequence

import numpy as np

from ..codecs.conventions import DECODE_METHODS
from ..keypoint_sets import COCO

COCO_FLIP_INDICES = COCO.flip_indices

_BUILD_HINT = ("build it with a C++17 compiler and pybind11 from the repository root: "
               "`pip install pybind11 && pip install -e . --no-build-isolation`")


def _extension():
    try:
        from . import _decoder
    except ImportError as err:
        raise ImportError(f"srpose_fast.deploy: the compiled decoder srpose_fast.deploy._decoder is not "
                          f"available ({err}); {_BUILD_HINT}") from err
    return _decoder


def decoder_available() -> bool:
    """True when the compiled decoder can be imported."""
    try:
        _extension()
    except ImportError:
        return False
    return True


def _as_maps(array, name: str) -> np.ndarray:
    array = np.asarray(array)
    if array.dtype.kind not in "fiu":
        raise TypeError(f"HeatmapDecoder: {name} must hold real numbers, got dtype {array.dtype}")
    if array.dtype not in (np.float32, np.float16):
        array = array.astype(np.float32)
    if array.ndim != 4:
        raise ValueError(f"HeatmapDecoder: {name} must be (N, K, H, W), got shape {array.shape}")
    return array


def _as_pairs(array, name: str, n: int) -> np.ndarray:
    array = np.asarray(array)
    if array.dtype.kind not in "fiu":
        raise TypeError(f"HeatmapDecoder: {name} must hold real numbers, got dtype {array.dtype}")
    if array.shape != (n, 2):
        raise ValueError(f"HeatmapDecoder: {name} must have shape (N, 2) = ({n}, 2), got {array.shape}")
    return np.ascontiguousarray(array, dtype=np.float32)


def _check_permutation(indices: Sequence[int]) -> tuple[int, ...]:
    try:
        values = tuple(int(i) for i in indices)
    except (TypeError, ValueError) as err:
        raise ValueError(f"HeatmapDecoder: flip_indices must be a sequence of ints, got {indices!r}") from err
    if sorted(values) != list(range(len(values))):
        raise ValueError(f"HeatmapDecoder: flip_indices must be a permutation of 0..{len(values) - 1}, got {values}")
    return values


class HeatmapDecoder:
    """Decode (N, K, H, W) heatmaps into keypoints (N, K, 2) as (x, y) and scores (N, K), both float32.

    method: "argmax", "shift", "dark" or "dark_udp". blur_kernel: odd Gaussian size for the DARK methods.
    flip_indices: the left/right swap used with `flipped` (default COCO's when K == 17, else required).
    flip_shift: shift the mirrored map one pixel right before merging (default True, False for "dark_udp").
    num_threads: threads over the N * K maps; None picks from the core count and the amount of work.
    """

    def __init__(self, method: str = "dark", blur_kernel: int = 11, flip_indices: Optional[Sequence[int]] = None,
                 flip_shift: Optional[bool] = None, num_threads: Optional[int] = None):
        if method not in DECODE_METHODS:
            raise ValueError(f"HeatmapDecoder: method must be one of {DECODE_METHODS}, got {method!r}")
        if (isinstance(blur_kernel, bool) or not isinstance(blur_kernel, numbers.Integral)
                or blur_kernel < 1 or blur_kernel % 2 == 0):
            raise ValueError(f"HeatmapDecoder: blur_kernel must be a positive odd int, got {blur_kernel!r}")
        if num_threads is not None and (isinstance(num_threads, bool) or not isinstance(num_threads, numbers.Integral)
                                        or num_threads < 1):
            raise ValueError(f"HeatmapDecoder: num_threads must be None or an int >= 1, got {num_threads!r}")
        self.method = method
        self.blur_kernel = int(blur_kernel)
        self.flip_indices = None if flip_indices is None else _check_permutation(flip_indices)
        self.flip_shift = method != "dark_udp" if flip_shift is None else bool(flip_shift)
        self.num_threads = None if num_threads is None else int(num_threads)
        self._ext = _extension()

    def __repr__(self) -> str:
        return (f"HeatmapDecoder(method={self.method!r}, blur_kernel={self.blur_kernel}, "
                f"flip_indices={self.flip_indices}, flip_shift={self.flip_shift}, num_threads={self.num_threads})")

    def _flip_indices_for(self, num_keypoints: int) -> list[int]:
        if self.flip_indices is None:
            if num_keypoints == len(COCO_FLIP_INDICES):
                return list(COCO_FLIP_INDICES)
            raise ValueError(f"HeatmapDecoder: flip_indices is required for a flip test with K = {num_keypoints} "
                             f"(the COCO default needs K = 17)")
        if len(self.flip_indices) != num_keypoints:
            raise ValueError(f"HeatmapDecoder: flip_indices has {len(self.flip_indices)} entries, "
                             f"the heatmaps have K = {num_keypoints}")
        return list(self.flip_indices)

    def decode(self, heatmaps, flipped=None, center=None, scale=None) -> tuple[np.ndarray, np.ndarray]:
        """(keypoints (N, K, 2) float32, scores (N, K) float32); see the module docstring for dtypes."""
        heatmaps = _as_maps(heatmaps, "heatmaps")
        n, k, height, width = heatmaps.shape
        if height < 1 or width < 1:
            raise ValueError(f"HeatmapDecoder: heatmaps must be at least 1x1, got shape {heatmaps.shape}")
        flip_indices: list[int] = []
        if flipped is not None:
            flipped = _as_maps(flipped, "flipped")
            if flipped.shape != heatmaps.shape:
                raise ValueError(f"HeatmapDecoder: flipped has shape {flipped.shape}, "
                                 f"the heatmaps {heatmaps.shape}")
            if flipped.dtype != heatmaps.dtype:
                heatmaps, flipped = heatmaps.astype(np.float32), flipped.astype(np.float32)
            flip_indices = self._flip_indices_for(k)
            flipped = np.ascontiguousarray(flipped)
        if (center is None) != (scale is None):
            raise ValueError("HeatmapDecoder: give both center and scale, or neither")
        if center is not None:
            if self.method == "dark_udp" and (height < 2 or width < 2):
                raise ValueError("HeatmapDecoder: dark_udp's (W - 1, H - 1) scaling needs maps of at least 2x2")
            center = _as_pairs(center, "center", n)
            scale = _as_pairs(scale, "scale", n)
        heatmaps = np.ascontiguousarray(heatmaps)
        return self._ext.decode(heatmaps, flipped, center, scale, method=self.method,
                                blur_kernel=self.blur_kernel, flip_shift=self.flip_shift,
                                flip_indices=flip_indices, num_threads=self.num_threads or 0)
