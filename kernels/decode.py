"""Triton kernels of test-time decoding: heatmaps (N, K, H, W) -> keypoints (N, K, 2), scores (N, K).

Two launches (semantics: `srpose_fast.codecs.decoders`):

1. Argmax, `_decode_argmax_kernel`, grid (N*K, S): program (nk, s) reads the row blocks s, s + S, ...
   of map nk, ROWS rows x BLOCK_W columns at a time, walking the rows (no division per element). Each
   lane keeps its running maximum and that maximum's flat index (a strictly greater value replaces it; a
   lane visits its indices in increasing order, so it keeps its lowest); NaN is tracked apart. The lanes
   reduce to (max, lowest flat index holding it, any NaN), written to a partial buffer. With flip the
   merged value (h[k] + f[flip_indices[k]] mirrored, shifted) / 2 is formed on the fly, in the reference's
   fp32 arithmetic, and never stored: the argmax, the score and "shift" are bitwise those of the
   reference. The pass streams the maps, so it is kept apart from the refinement: with the DARK
   refinement in the same kernel, its registers (about 200 a thread) left one or two programs on an SM
   to stream, where the argmax alone takes about 50 (tests/kernels/hopper_compile.py). S splits each map
   so that small batches still fill the GPU.
2. The rest runs in `_decode_refine_kernel`, grid (N*K,): `kernels.refine.refine_and_store` reduces the S
   partials, refines around the argmax from windows of the merged map (`_merged_window`), transforms and
   stores.

Where the kernel may differ from the reference: only in the last bits of the blurred map and of
the log (other summation order, Triton's log), amplified by DARK's Newton step where its Hessian is
ill-conditioned. Argmax, scores and "shift" are exact. (A map holding +-inf: the reference's rescale
is inf / inf = NaN, so DARK gives NaN; the kernel's blur by dots multiplies inf by zero taps, also
NaN, and its clamp propagates NaN as torch's does; beyond that, inf maps are not a supported input.)
"""
from __future__ import annotations

import torch
import triton
import triton.language as tl
from torch.library import wrap_triton

from . import launch
from .refine import (
    NO_INDEX, argmax_update, decode_outputs, flip_inputs, flip_partner, flipped_columns, refine_and_store,
    refine_config, store_partial,
)

BLOCK = 1024  # values an argmax step reads (ROWS x BLOCK_W)


@triton.jit
def _merged_at(h_base, f_base, rows, cols, inside, W, shh, shw, sfh, sfw,
               FLIP: tl.constexpr, SHIFT: tl.constexpr):
    """The (flip-merged) map at (rows, cols), float32, 0 where not inside. Same arithmetic as
    `codecs.flip.flip_merge`: (h + f) * 0.5 with f read at the mirrored, shifted column."""
    v = tl.load(h_base + rows * shh + cols * shw, mask=inside, other=0.0).to(tl.float32)
    if FLIP:
        f = tl.load(f_base + rows * sfh + flipped_columns(cols, W, SHIFT) * sfw, mask=inside, other=0.0)
        v = (v + f.to(tl.float32)) * 0.5
    return v


@triton.jit
def _merged_window(src, SPEC: tl.constexpr, oy, ox, BW: tl.constexpr):
    """The window reader of `refine_and_store`: the merged map on (BW, BW) pixels at (oy, ox)."""
    h_base, f_base, H, W, shh, shw, sfh, sfw = src
    FLIP: tl.constexpr = SPEC[0]
    SHIFT: tl.constexpr = SPEC[1]
    rows = oy + tl.arange(0, BW)[:, None]
    cols = ox + tl.arange(0, BW)[None, :]
    inside = (rows >= 0) & (rows < H) & (cols >= 0) & (cols < W)
    return _merged_at(h_base, f_base, rows, cols, inside, W, shh, shw, sfh, sfw, FLIP, SHIFT)


@triton.jit
def _map_bases(h_ptr, f_ptr, fidx_ptr, nk, shn, shk, sfn, sfk, K: tl.constexpr, FLIP: tl.constexpr):
    """(n, pointer to map nk = (n, k), pointer to its flip partner's map)."""
    n, k, fk = flip_partner(fidx_ptr, nk, K, FLIP)
    return n, h_ptr + n * shn + k.to(tl.int64) * shk, f_ptr + n * sfn + fk.to(tl.int64) * sfk


@triton.jit(do_not_specialize=["n_splits"])  # set by the batch size: one binary for any batch
def _decode_argmax_kernel(
    h_ptr, f_ptr, fidx_ptr, part_val_ptr, part_idx_ptr,
    H, W, n_splits,
    shn, shk, shh, shw,
    sfn, sfk, sfh, sfw,
    K: tl.constexpr, FLIP: tl.constexpr, SHIFT: tl.constexpr, ROWS: tl.constexpr, BLOCK_W: tl.constexpr,
):
    nk = tl.program_id(0)
    split = tl.program_id(1)
    _, h_base, f_base = _map_bases(h_ptr, f_ptr, fidx_ptr, nk, shn, shk, sfn, sfk, K, FLIP)
    best = tl.full([ROWS, BLOCK_W], float("-inf"), tl.float32)
    best_i = tl.full([ROWS, BLOCK_W], NO_INDEX, tl.int32)
    nan_seen = tl.zeros([ROWS, BLOCK_W], tl.int32)
    lane_rows = tl.arange(0, ROWS)[:, None]
    lane_cols = tl.arange(0, BLOCK_W)[None, :]
    for row0 in range(split * ROWS, H, n_splits * ROWS):
        rows = row0 + lane_rows
        for col0 in range(0, W, BLOCK_W):
            cols = col0 + lane_cols
            inside = (rows < H) & (cols < W)
            v = _merged_at(h_base, f_base, rows, cols, inside, W, shh, shw, sfh, sfw, FLIP, SHIFT)
            best, best_i, nan_seen = argmax_update(best, best_i, nan_seen, v, rows * W + cols, inside)
    store_partial(part_val_ptr, part_idx_ptr, nk, split, n_splits, best, best_i, nan_seen)


@triton.jit(do_not_specialize=["n_splits"])  # set by the batch size: one binary for any batch
def _decode_refine_kernel(
    h_ptr, f_ptr, fidx_ptr, part_val_ptr, part_idx_ptr, g_ptr, center_ptr, scale_ptr, kp_ptr, score_ptr,
    H, W, n_splits,
    shn, shk, shh, shw,
    sfn, sfk, sfh, sfw,
    K: tl.constexpr, FLIP: tl.constexpr, SHIFT: tl.constexpr, METHOD: tl.constexpr, KB: tl.constexpr,
    HAS_TRANSFORM: tl.constexpr, BWL: tl.constexpr, BWG: tl.constexpr, TO: tl.constexpr,
):
    nk = tl.program_id(0)
    n, h_base, f_base = _map_bases(h_ptr, f_ptr, fidx_ptr, nk, shn, shk, sfn, sfk, K, FLIP)
    refine_and_store(_merged_window, (h_base, f_base, H, W, shh, shw, sfh, sfw), (FLIP, SHIFT),
                     part_val_ptr, part_idx_ptr, g_ptr, center_ptr, scale_ptr, kp_ptr, score_ptr, n, nk, n_splits,
                     H, W, METHOD, KB, HAS_TRANSFORM, BWL, BWG, TO)


# --- launcher -------------------------------------------------------------------------------------

def decode_heatmaps_forward(heatmaps: torch.Tensor, flipped: torch.Tensor | None, flip_indices: torch.Tensor | None,
                            flip_shift: bool, method: str, blur_kernel: int, center: torch.Tensor | None,
                            scale: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
    """(keypoints (N, K, 2), scores (N, K)) float32; inputs validated by `ops.decode.check_decode_inputs`."""
    if heatmaps.dtype not in (torch.float32, torch.float16, torch.bfloat16):
        raise ValueError(f"decode_heatmaps (triton): heatmaps must be float32, float16 or bfloat16, "
                         f"got {heatmaps.dtype}")
    if flipped is not None and flipped.dtype not in (torch.float32, torch.float16, torch.bfloat16):
        raise ValueError(f"decode_heatmaps (triton): flipped must be float32, float16 or bfloat16, got {flipped.dtype}")
    launch.check_kernel_device("decode_heatmaps", heatmaps, _decode_argmax_kernel)
    N, K, H, W = heatmaps.shape
    device = heatmaps.device
    keypoints, scores = decode_outputs(N, K, device)
    if N * K == 0:
        return keypoints, scores
    fmaps, fidx = flip_inputs(heatmaps, flipped, flip_indices, scores)
    block_w = min(BLOCK, triton.next_power_of_2(W))
    rows = max(1, min(BLOCK // block_w, triton.next_power_of_2(H)))
    n_splits, part_val, part_idx = launch.argmax_partials(N * K, triton.cdiv(H, rows), device)
    wrap_triton(_decode_argmax_kernel)[(N * K, n_splits)](
        heatmaps, fmaps, fidx, part_val, part_idx,
        H, W, n_splits,
        *heatmaps.stride(), *fmaps.stride(),
        K=K, FLIP=flipped is not None, SHIFT=bool(flip_shift), ROWS=rows, BLOCK_W=block_w,
    )
    taps, center_t, scale_t, constexprs = refine_config(method, blur_kernel, center, scale, device, scores)
    wrap_triton(_decode_refine_kernel)[(N * K,)](
        heatmaps, fmaps, fidx, part_val, part_idx, taps, center_t, scale_t, keypoints, scores,
        H, W, n_splits,
        *heatmaps.stride(), *fmaps.stride(),
        K=K, FLIP=flipped is not None, SHIFT=bool(flip_shift), **constexprs,
    )
    return keypoints, scores
