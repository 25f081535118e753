"""The heatmap-free inference path: the final SR head's embeddings straight to keypoints and scores.

`sr_head_decode(emb, weight, bias, upscale, ...)` is `decode_heatmaps(sr_head(emb, weight, bias,
upscale), ...)` (with the flipped image's embeddings run through the same head for the flip test):
grouped conv (groups = K joints, padding k // 2, bias) + pixel shuffle(upscale), flip merge, argmax,
refinement and transform. In SRPose that is `converge[-1]` applied to `kp_encoder[-1](feat)`, whose
(N, K, 4h, 4w) heatmaps are by far the largest tensor of inference.

Backends:
- "torch": `sr_head_reference` on both inputs, then `decode_heatmaps_reference` (the oracle). 16-bit
  inputs are upcast to float32 first, so the heatmaps are float32 as in the triton kernels (a head run
  in bf16 would round the heatmaps to bf16 and make ties of nearby values).
- "triton" and "cuda": the registered ops `torch.ops.srpose_fast.sr_head_decode_<backend>` (`ops.registry`).
  Triton (`srpose_fast.kernels.sr_head_decode`) never writes the heatmaps: the argmax pass computes them
  tile by tile in registers, the refinement recomputes the few values it reads. CUDA
  (csrc/cuda/sr_head_decode.cu) runs the same two passes (tiled argmax with partials, then a refinement
  recomputing only the values it reads).

Inference only: the op has no autograd formula and the inputs are detached.
"""
from __future__ import annotations

from typing import Sequence

import torch

from .backend import resolve_backend
from .decode import _as_tensor, check_decode_options, decode_heatmaps_reference, flip_index_tensor
from .registry import FusedOp, fused_op, register
from .sr_head import check_sr_head_inputs, sr_head_reference


def check_sr_head_decode_inputs(emb: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, upscale: int,
                                flipped_emb: torch.Tensor | None, flip_indices, method: str, blur_kernel: int,
                                center: torch.Tensor | None, scale: torch.Tensor | None) -> list[int] | None:
    """Validate everything `sr_head_decode` takes; return the flip indices to use (None without flip)."""
    op = "sr_head_decode"
    for name, t in (("emb", emb), ("weight", weight), ("bias", bias), ("flipped_emb", flipped_emb)):
        if t is not None and not isinstance(t, torch.Tensor):
            raise ValueError(f"{op}: {name} must be a torch tensor, got {type(t).__name__}")
        if t is not None and not t.is_floating_point():
            raise ValueError(f"{op}: {name} must be a floating-point tensor, got {t.dtype}")
    joints = check_sr_head_inputs(emb, weight, bias, upscale, op=op)
    if flipped_emb is not None:
        if tuple(flipped_emb.shape) != tuple(emb.shape):
            raise ValueError(f"{op}: flipped_emb has shape {tuple(flipped_emb.shape)}, emb {tuple(emb.shape)}")
        if flipped_emb.device != emb.device:
            raise ValueError(f"{op}: flipped_emb must be on emb's device")
    n, _, h, w = emb.shape
    return check_decode_options((n, joints, upscale * h, upscale * w), method, blur_kernel, flipped_emb is not None,
                                flip_indices, center, scale, op=op)


def _float32_at_least(t: torch.Tensor | None) -> torch.Tensor | None:
    return t.float() if t is not None and t.dtype in (torch.float16, torch.bfloat16) else t


def sr_head_decode_reference(emb: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, upscale: int, *,
                             flipped_emb: torch.Tensor | None = None, flip_indices: Sequence[int] | None = None,
                             flip_shift: bool = True, method: str = "shift", blur_kernel: int = 11,
                             center: torch.Tensor | None = None, scale: torch.Tensor | None = None
                             ) -> tuple[torch.Tensor, torch.Tensor]:
    """The torch reference on validated inputs (flip_indices resolved): SR head, then decode."""
    emb, weight, bias, flipped_emb = (_float32_at_least(t) for t in (emb, weight, bias, flipped_emb))
    maps = sr_head_reference(emb, weight, bias, upscale)
    flipped = None if flipped_emb is None else sr_head_reference(flipped_emb, weight, bias, upscale)
    return decode_heatmaps_reference(maps, method=method, blur_kernel=blur_kernel, flipped=flipped,
                                     flip_indices=flip_indices, flip_shift=flip_shift, center=center, scale=scale)


def sr_head_decode(emb: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, upscale: int, *,
                   flipped_emb: torch.Tensor | None = None, flip_indices: Sequence[int] | None = None,
                   flip_shift: bool | None = None, method: str = "shift", blur_kernel: int = 11,
                   center=None, scale=None, backend: str = "auto") -> tuple[torch.Tensor, torch.Tensor]:
    """Keypoints (N, K, 2) float32 (x, y) and scores (N, K) float32 from SR-head embeddings.

    Args:
        emb: (N, e*K, h, w), the input of the head's grouped conv (kp_encoder's output).
        weight: (r*r*K, e, k, k) with odd k; bias: (r*r*K,) or None; upscale: r.
            The heatmaps are (N, K, r*h, r*w).
        flipped_emb: the same for the horizontally flipped image (flip test), or None.
        flip_indices, flip_shift, method, blur_kernel, center, scale: as `decode_heatmaps`
            (COCO's flip indices by default when K == 17; flip_shift None means True except for
            "dark_udp"; center/scale (N, 2) tensors or arrays, both or neither).
        backend: "auto" | "torch" | "triton" | "cuda" (the last two need CUDA tensors; "auto" picks triton
            on CUDA when installed, else cuda when built). emb, weight, bias (and flipped_emb) share one
            dtype for "triton" (float32, float16 or bfloat16, computed in float32) and "cuda" (also
            float64, computed in float64).

    Special cases as `decode_heatmaps`: ties -> lowest flat index; NaN in a map -> NaN score and
    keypoint; maximum <= 0 -> score 0, unrefined argmax. N == 0 gives empty outputs.
    """
    device = emb.device if isinstance(emb, torch.Tensor) else None
    center_t = None if center is None else _as_tensor("center", center, device, op="sr_head_decode")
    scale_t = None if scale is None else _as_tensor("scale", scale, device, op="sr_head_decode")
    indices = check_sr_head_decode_inputs(emb, weight, bias, upscale, flipped_emb, flip_indices, method, blur_kernel,
                                          center_t, scale_t)
    emb, weight = emb.detach(), weight.detach()
    bias = None if bias is None else bias.detach()
    flipped_emb = None if flipped_emb is None else flipped_emb.detach()
    if flip_shift is None:
        flip_shift = method != "dark_udp"
    chosen = resolve_backend(backend, emb.device, op="sr_head_decode", supported=SUPPORTED_BACKENDS)
    if chosen == "torch":
        return sr_head_decode_reference(emb, weight, bias, upscale, flipped_emb=flipped_emb, flip_indices=indices,
                                        flip_shift=bool(flip_shift), method=method, blur_kernel=blur_kernel,
                                        center=center_t, scale=scale_t)
    index_t = None if indices is None else flip_index_tensor(indices, emb.device)
    return fused_op("sr_head_decode", chosen)(emb, weight, bias, upscale, flipped_emb, index_t, bool(flip_shift),
                                              method, blur_kernel, center_t, scale_t)


def _fake_sr_head_decode(emb, weight, bias, upscale, flipped_emb, flip_indices, flip_shift, method, blur_kernel,
                         center, scale):
    n = emb.shape[0]
    k = weight.shape[0] // (upscale * upscale)
    return emb.new_empty((n, k, 2), dtype=torch.float32), emb.new_empty((n, k), dtype=torch.float32)


SR_HEAD_DECODE = FusedOp("sr_head_decode", _fake_sr_head_decode, triton="sr_head_decode:sr_head_decode_forward")
SUPPORTED_BACKENDS = ("auto", "torch", *SR_HEAD_DECODE.backends)
register(SR_HEAD_DECODE)
