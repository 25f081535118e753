"""Test-time decoding: heatmaps (N, K, H, W) to keypoints (N, K, 2) and scores (N, K).

`decode_heatmaps` runs, in order: flip merge (if `flipped` is given), argmax, the refinement
named by `method`, and the transform to image coordinates (if `center` and `scale` are given).
The torch reference `decode_heatmaps_reference` is the oracle every other backend is tested
against; its building blocks live in `srpose_fast.codecs`.

The fused backends are the registered ops `torch.ops.srpose_fast.decode_heatmaps_<backend>` (`ops.registry`):
- "triton": two kernels (`srpose_fast.kernels.decode`), an argmax pass that merges the flip on the fly
  with each map split over programs, then the refinement and the transform, one program per map; the
  merged heatmaps are never written.
- "cuda": the compiled extension `srpose_fast._C` (csrc/cuda/decode.cu), the same steps in one launch,
  one thread block per map.
Decoding has no gradient, so the ops have no autograd formula (their inputs are detached).

backend="cpp" (what "auto" picks on the CPU when it is built) runs the portable C++ decoder of
`srpose_fast.deploy`, multi-threaded over maps, computing in float64.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from ..codecs.decoders import DECODE_METHODS, decode_locations
from ..codecs.flip import check_flip_indices, flip_merge
from ..codecs.transforms import heatmap_to_image
from ..keypoint_sets import COCO
from .backend import resolve_backend
from .registry import FusedOp, fused_op, register

# The largest DARK blur kernel every backend takes. It is the Triton refinement's limit (the CUDA and C++
# decoders take larger ones): up to 17 its whole-map blurred-maximum tiles read 32x32 windows; from 19 on
# they read 64x64 windows, and the sm_90 compile (tests/kernels/hopper_compile.py) then reports a kernel
# that spills (at 19: about 90 KB of shared memory, 255 registers, 944 B of spills a thread) and, from 51
# on (128x128 windows), more shared memory than a Hopper block may have. mmpose's DARK configurations use
# 11 (64x48 heatmaps) and 17 (96x72 and larger).
MAX_BLUR_KERNEL = 17


def _as_tensor(name: str, value, device: torch.device | None = None, *, op: str = "decode_heatmaps") -> torch.Tensor:
    if isinstance(value, torch.Tensor):
        tensor = value
    elif isinstance(value, np.ndarray):
        tensor = torch.from_numpy(value if value.flags.writeable else value.copy())
    else:
        try:
            tensor = torch.as_tensor(value)
        except (TypeError, ValueError, RuntimeError) as err:
            raise ValueError(f"{op}: {name} must be a tensor or an array ({err})") from None
    if device is not None and tensor.device != device:
        if isinstance(value, torch.Tensor):
            raise ValueError(f"{op}: {name} is on {tensor.device}, the maps' input on {device}")
        tensor = tensor.to(device)
    return tensor


_FLIP_INDEX_TENSORS: dict[tuple[tuple[int, ...], torch.device], torch.Tensor] = {}


def flip_index_tensor(indices: Sequence[int], device: torch.device) -> torch.Tensor:
    """The flip indices as an int32 tensor on `device`, made once per device: a host-to-device copy per call
    would synchronise with the host, which CUDA graph capture forbids. Inside torch.compile, a constant."""
    if torch.compiler.is_compiling():
        return torch.tensor(indices, dtype=torch.int32, device=device)
    key = (tuple(indices), device)
    if key not in _FLIP_INDEX_TENSORS:
        _FLIP_INDEX_TENSORS[key] = torch.tensor(indices, dtype=torch.int32, device=device)
    return _FLIP_INDEX_TENSORS[key]


def check_decode_options(map_shape: tuple[int, int, int, int], method: str, blur_kernel: int, with_flip: bool,
                         flip_indices, center: torch.Tensor | None, scale: torch.Tensor | None, *,
                         op: str) -> list[int] | None:
    """Validate what decoding maps of `map_shape` (N, K, H, W) takes besides the maps; return the flip indices
    to use (None without flip). Errors start with `op`."""
    n, k, height, width = map_shape
    if method not in DECODE_METHODS:
        raise ValueError(f"{op}: method must be one of {DECODE_METHODS}, got {method!r}")
    if isinstance(blur_kernel, bool) or not isinstance(blur_kernel, int) or blur_kernel < 1 or blur_kernel % 2 == 0:
        raise ValueError(f"{op}: blur_kernel must be a positive odd int, got {blur_kernel!r}")
    if blur_kernel > MAX_BLUR_KERNEL:
        raise ValueError(f"{op}: blur_kernel must be at most MAX_BLUR_KERNEL = {MAX_BLUR_KERNEL}, got {blur_kernel}")
    if (center is None) != (scale is None):
        raise ValueError(f"{op}: give both center and scale, or neither")
    for name, value in (("center", center), ("scale", scale)):
        if value is not None and tuple(value.shape) != (n, 2):
            raise ValueError(f"{op}: {name} must be (N, 2) = ({n}, 2), got shape {tuple(value.shape)}")
    if method == "dark_udp" and center is not None and (height < 2 or width < 2):
        raise ValueError(f"{op}: dark_udp's (W - 1, H - 1) scaling needs maps of at least 2x2")
    if not with_flip:
        if flip_indices is not None:
            raise ValueError(f"{op}: flip_indices given without flipped maps")
        return None
    if flip_indices is None:
        if k != COCO.num_keypoints:
            raise ValueError(f"{op}: flip_indices is required for K = {k} "
                             f"(the COCO default only applies to K = {COCO.num_keypoints})")
        flip_indices = COCO.flip_indices
    try:
        return check_flip_indices(flip_indices, k)
    except ValueError as err:
        raise ValueError(f"{op}: {err}") from None


def check_decode_inputs(heatmaps: torch.Tensor, method: str, blur_kernel: int, flipped: torch.Tensor | None,
                        flip_indices, center: torch.Tensor | None, scale: torch.Tensor | None) -> list[int] | None:
    """Validate everything `decode_heatmaps` takes; return the flip indices to use (None without flip)."""
    op = "decode_heatmaps"
    if heatmaps.dim() != 4:
        raise ValueError(f"{op}: heatmaps must be (N, K, H, W), got shape {tuple(heatmaps.shape)}")
    if heatmaps.shape[2] < 1 or heatmaps.shape[3] < 1:
        raise ValueError(f"{op}: heatmaps must have H, W >= 1, got shape {tuple(heatmaps.shape)}")
    if not (heatmaps.is_floating_point() or heatmaps.dtype in (torch.uint8, torch.int8, torch.int16,
                                                                torch.int32, torch.int64)):
        raise ValueError(f"{op}: heatmaps must be real numbers, got dtype {heatmaps.dtype}")
    if flipped is not None and tuple(flipped.shape) != tuple(heatmaps.shape):
        raise ValueError(f"{op}: flipped has shape {tuple(flipped.shape)}, the heatmaps {tuple(heatmaps.shape)}")
    return check_decode_options(tuple(heatmaps.shape), method, blur_kernel, flipped is not None, flip_indices,
                                center, scale, op=op)


def decode_heatmaps_reference(heatmaps: torch.Tensor, *, method: str = "shift", blur_kernel: int = 11,
                              flipped: torch.Tensor | None = None, flip_indices: Sequence[int] | None = None,
                              flip_shift: bool = True, center: torch.Tensor | None = None,
                              scale: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """The torch reference of `decode_heatmaps` on validated tensors (flip_indices resolved)."""
    maps = heatmaps if flipped is None else flip_merge(heatmaps, flipped, flip_indices, shift=flip_shift)
    keypoints, scores = decode_locations(maps, method, blur_kernel)
    if center is not None:
        keypoints = heatmap_to_image(keypoints, center, scale, maps.shape[-2:], udp=method == "dark_udp")
    return keypoints, scores


def decode_heatmaps(heatmaps, *, method: str = "shift", blur_kernel: int = 11, flipped=None,
                    flip_indices: Sequence[int] | None = None, flip_shift: bool | None = None,
                    center=None, scale=None, backend: str = "auto"):
    """Keypoints (N, K, 2) float32 (x, y) and scores (N, K) float32 from heatmaps (N, K, H, W).

    Args:
        heatmaps: torch tensor (any device, any float dtype; computed in float32) or numpy array.
            Torch in -> torch out on the same device; numpy in -> numpy out.
        method: "argmax" (integer argmax), "shift" (+-0.25 px toward the higher neighbour, SRPose's
            default), "dark" (DARK Newton step on the log of the blurred map), "dark_udp"
            (DARK-UDP, with UDP (W - 1, H - 1) scaling to the image).
        blur_kernel: odd Gaussian kernel size of "dark" / "dark_udp".
        flipped: heatmaps of the mirrored image, same shape; merged first (see `codecs.flip`).
        flip_indices: left/right permutation of the joints; COCO's by default when K == 17,
            required otherwise.
        flip_shift: shift the flipped maps one pixel right before averaging; None means True
            except for "dark_udp" (UDP-aligned maps need no shift).
        center, scale: (N, 2) each (x200 convention); both or neither. Without them keypoints are
            in heatmap pixels.
        backend: "auto" | "torch" | "triton" | "cuda" | "cpp" ("triton" and "cuda" need CUDA tensors,
            "cpp" CPU ones; "auto" picks triton, else cuda, on CUDA and cpp, else torch, on the CPU). The triton and
            cuda kernels compute what the reference computes (argmax, scores and "shift" bit for
            bit); for "dark"/"dark_udp" they blur only around the maximum and may differ in the last
            bits of the blurred map, see `srpose_fast.kernels.decode`. Every backend takes blur_kernel
            up to MAX_BLUR_KERNEL.

    Special cases, which every backend follows:
        - ties: the lowest flat index (y * W + x) wins;
        - a map containing NaN: score NaN, keypoint (NaN, NaN), also after the transform;
        - a map whose maximum is <= 0: score 0, keypoint at its argmax, never refined;
        - otherwise the score is the maximum of the (flip-merged) map.
        - N == 0 gives empty outputs.
    Decoding is not differentiable: the outputs are detached.
    """
    as_numpy = isinstance(heatmaps, np.ndarray)
    maps = _as_tensor("heatmaps", heatmaps).detach()
    device = maps.device
    flipped_t = None if flipped is None else _as_tensor("flipped", flipped, device).detach()
    center_t = None if center is None else _as_tensor("center", center, device)
    scale_t = None if scale is None else _as_tensor("scale", scale, device)
    indices = check_decode_inputs(maps, method, blur_kernel, flipped_t, flip_indices, center_t, scale_t)
    if flip_shift is None:
        flip_shift = method != "dark_udp"
    chosen = resolve_backend(backend, device, op="decode_heatmaps", supported=SUPPORTED_BACKENDS)
    if chosen == "torch":
        keypoints, scores = decode_heatmaps_reference(
            maps, method=method, blur_kernel=blur_kernel, flipped=flipped_t, flip_indices=indices,
            flip_shift=bool(flip_shift), center=center_t, scale=scale_t)
    elif chosen in ("triton", "cuda"):
        if not (maps.dtype in (torch.float32, torch.float16, torch.bfloat16)):
            maps = maps.float()  # what the reference does with other dtypes
        if flipped_t is not None and flipped_t.dtype not in (torch.float32, torch.float16, torch.bfloat16):
            flipped_t = flipped_t.float()
        if chosen == "cuda" and flipped_t is not None and flipped_t.dtype != maps.dtype:
            maps, flipped_t = maps.float(), flipped_t.float()  # the CUDA kernel reads both in one dtype
        index_t = None if indices is None else flip_index_tensor(indices, device)
        keypoints, scores = fused_op("decode_heatmaps", chosen)(
            maps, flipped_t, index_t, bool(flip_shift), method, blur_kernel, center_t, scale_t)
    elif chosen == "cpp":
        keypoints, scores = _decode_cpp(maps, flipped_t, indices, bool(flip_shift), method, blur_kernel,
                                        center_t, scale_t)
    else:
        raise AssertionError(f"unreachable backend {chosen}")
    if as_numpy:
        return keypoints.numpy(), scores.numpy()
    return keypoints, scores


def _decode_cpp(maps, flipped, indices, flip_shift, method, blur_kernel, center, scale):
    """The deployment decoder (srpose_fast.deploy) on CPU tensors; numpy views in and out."""
    from ..deploy import HeatmapDecoder

    def array(t):
        if t is None:
            return None
        return (t if t.dtype in (torch.float32, torch.float16) else t.float()).numpy()

    decoder = HeatmapDecoder(method, blur_kernel=blur_kernel, flip_indices=indices, flip_shift=flip_shift)
    keypoints, scores = decoder.decode(array(maps), flipped=array(flipped), center=array(center), scale=array(scale))
    return torch.from_numpy(keypoints), torch.from_numpy(scores)


def _fake_decode_heatmaps(heatmaps, flipped, flip_indices, flip_shift, method, blur_kernel, center, scale):
    n, k = heatmaps.shape[:2]
    return heatmaps.new_empty((n, k, 2), dtype=torch.float32), heatmaps.new_empty((n, k), dtype=torch.float32)


DECODE_HEATMAPS = FusedOp("decode_heatmaps", _fake_decode_heatmaps, triton="decode:decode_heatmaps_forward")
SUPPORTED_BACKENDS = ("auto", "torch", *DECODE_HEATMAPS.backends, "cpp")
register(DECODE_HEATMAPS)
