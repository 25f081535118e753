"""Triton kernels of the heatmap-free inference path: SR head embeddings -> keypoints and scores.

The final SR head maps emb (N, K*E, h, w) to heatmaps (N, K, R*h, R*W) by a grouped conv (weight
(K*RR, E, KS, KS), RR = R*R, padding KS // 2, bias) and pixel shuffle: heatmap[n, j, y*R + dy, x*R + dx]
= conv channel j*RR + dy*R + dx at (y, x). Here those heatmaps are never written to memory: they are
computed in registers where they are needed, in two launches.

1. `_sr_argmax_kernel`, grid (N*K, S): program (nk, s) takes the tiles s, s + S, ... of BLOCK_P
   low-resolution pixels; each tile is one GEMM per source as in the SR head kernel (implicit
   im2col: [pixels x E*KS*KS] @ [E*KS*KS x RR], fp32 accumulation) giving the heatmap values of all
   RR sub-pixels of those pixels. With flip, the flipped image's heatmap of joint flip_indices[j] at
   the mirrored (and shifted) column is computed by GEMMs over the mirrored pixels with the weight
   columns permuted, so that it lands on the plain tile element by element:
   - no shift: column X <- W - 1 - X is pixel w - 1 - x, sub-pixel (dy, R - 1 - dx);
   - shift (X <- W - max(X, 1)): dx >= 1 -> pixel w - 1 - x, sub-pixel (dy, R - dx); dx == 0 ->
     pixel w - x, sub-pixel (dy, 0), except x == 0 -> pixel w - 1, sub-pixel (dy, R - 1). The two
     pixel sets need two GEMMs (A: sub-pixel (dy, R - dx), and (dy, R - 1) for dx == 0; B: (dy, 0)
     at pixel w - x), whose results are chosen per element.
   The merged values (plain + flipped) * 0.5 feed a per-lane running argmax (as in `kernels.decode`);
   each program writes its (max, lowest flat index, NaN) to a small partial buffer.
2. `_sr_refine_kernel`, grid (N*K,): `kernels.refine.refine_and_store`, as `kernels.decode` does, with a
   window reader (`_sr_window`) that recomputes only the heatmap values it reads (an 8x8 window for
   "shift"; a (BWL x BWL) window for the blurred 5x5 of "dark"/"dark_udp"; and, only when DARK's clamp
   could act, the whole map once more, tile by tile, for the blurred maximum), each value a direct dot
   product of E*KS*KS taps. Then the transform and the stores.

Heatmap values are computed in float32 from the inputs (fp32/bf16/fp16; 16-bit products are exact
in fp32), never rounded to the input dtype. Where results may differ from the torch backend: the
heatmap values are fp32 sums in another order than the reference conv's (GEMM tiles in the argmax
pass, direct dot products in the refinement), so scores differ in the last bits (~1e-6 of the map's
magnitude); an argmax or a "shift" sign could only move at a near-tie within that rounding; DARK
keypoints differ as in `kernels.decode` (blur order, log) and, in addition, by this rounding of the
heatmap, both amplified by an ill-conditioned Hessian. The rescale is exact as in `kernels.decode`.
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
from .sr_head import _taps, mma

# Products (window pixels x taps) per step of the refinement's direct dot products: 2048 on a GPU
# (registers); more under TRITON_INTERPRET=1, where each step costs per operation, not per element.
GPU_TAPS = 2048
INTERPRETER_TAPS = 65536


@triton.jit(do_not_specialize=["n_splits"])  # set by the batch size: one binary for any batch
def _sr_argmax_kernel(
    x_ptr, fx_ptr, w_ptr, b_ptr, fidx_ptr, part_val_ptr, part_idx_ptr,
    h, w, E, n_ptiles, n_splits,
    sxn, sxc, sxh, sxw,
    sfn, sfc, sfh, sfw,
    swo, swc, swh, sww,
    K: tl.constexpr, KS: tl.constexpr, R: tl.constexpr, HAS_BIAS: tl.constexpr, FLIP: tl.constexpr,
    SHIFT: tl.constexpr, PRECISION: tl.constexpr, DOT_FP32: tl.constexpr,
    BLOCK_P: tl.constexpr, BLOCK_T: tl.constexpr, BLOCK_O: tl.constexpr,
):
    nk = tl.program_id(0)
    split = tl.program_id(1)
    RR: tl.constexpr = R * R
    PAD: tl.constexpr = KS // 2
    n_red = E * KS * KS
    width = w * R

    offs_o = tl.arange(0, BLOCK_O)
    o_mask = offs_o < RR
    dy = offs_o // R
    dx = offs_o % R
    _, j, fj, x_base, fx_base, w_base, fw_base, _, _ = _joint_bases(
        x_ptr, fx_ptr, w_ptr, b_ptr, fidx_ptr, nk, E, sxn, sxc, sfn, sfc, swo, K, R, FLIP)
    # flipped sub-pixel of each plain column (A: pixel w - 1 - x; B: pixel w - x, columns dx == 0)
    if SHIFT:
        o_a = dy * R + tl.where(dx == 0, R - 1, R - dx)
    else:
        o_a = dy * R + (R - 1 - dx)
    o_b = dy * R
    b_cols = o_mask & (dx == 0)

    best = tl.full([BLOCK_P, BLOCK_O], float("-inf"), tl.float32)
    best_i = tl.full([BLOCK_P, BLOCK_O], NO_INDEX, tl.int32)
    nan_seen = tl.zeros([BLOCK_P, BLOCK_O], tl.int32)
    for tile in range(split, n_ptiles, n_splits):
        offs_p = tile * BLOCK_P + tl.arange(0, BLOCK_P)
        p_mask = offs_p < h * w
        py = offs_p // w
        px = offs_p % w
        acc = tl.zeros([BLOCK_P, BLOCK_O], dtype=tl.float32)
        acc_a = tl.zeros([BLOCK_P, BLOCK_O], dtype=tl.float32)
        acc_b = tl.zeros([BLOCK_P, BLOCK_O], dtype=tl.float32)
        # per-pixel and per-tap address parts, so the 2-D work per step is a few adds and compares
        pix = (py * sxh + px * sxw)[:, None]
        fpix_a = (py * sfh + (w - 1 - px) * sfw)[:, None]
        fpix_b = (py * sfh + (w - px) * sfw)[:, None]
        for t0 in range(0, n_red, BLOCK_T):
            # offs_t is unused, but not `_`: that holds a pointer above, and a loop may not retype it
            offs_t, t_mask, c, ky, kx = _taps(t0, n_red, KS, BLOCK_T)
            ky, kx = ky - PAD, kx - PAD  # offsets from the centre tap
            iy = py[:, None] + ky[None, :]
            row_ok = p_mask[:, None] & t_mask[None, :] & (iy >= 0) & (iy < h)
            ix = px[:, None] + kx[None, :]
            a = tl.load(x_base + pix + (c * sxc + ky * sxh + kx * sxw)[None, :],
                        mask=row_ok & (ix >= 0) & (ix < w), other=0.0)
            w_offs = (c * swc + (ky + PAD) * swh + (kx + PAD) * sww)[:, None]
            bw = tl.load(w_base + offs_o[None, :] * swo + w_offs, mask=t_mask[:, None] & o_mask[None, :], other=0.0)
            acc = mma(acc, a, bw, PRECISION, DOT_FP32)
            if FLIP:
                f_tap = (c * sfc + ky * sfh + kx * sfw)[None, :]
                ix = (w - 1 - px)[:, None] + kx[None, :]
                a = tl.load(fx_base + fpix_a + f_tap, mask=row_ok & (ix >= 0) & (ix < w), other=0.0)
                bw = tl.load(fw_base + o_a[None, :] * swo + w_offs, mask=t_mask[:, None] & o_mask[None, :], other=0.0)
                acc_a = mma(acc_a, a, bw, PRECISION, DOT_FP32)
                if SHIFT:
                    ix = (w - px)[:, None] + kx[None, :]
                    a = tl.load(fx_base + fpix_b + f_tap, mask=row_ok & (ix >= 0) & (ix < w), other=0.0)
                    bw = tl.load(fw_base + o_b[None, :] * swo + w_offs, mask=t_mask[:, None] & b_cols[None, :],
                                 other=0.0)
                    acc_b = mma(acc_b, a, bw, PRECISION, DOT_FP32)
        if HAS_BIAS:
            acc += tl.load(b_ptr + j * RR + offs_o, mask=o_mask, other=0.0).to(tl.float32)[None, :]
        v = acc
        if FLIP:
            if HAS_BIAS:
                acc_a += tl.load(b_ptr + fj * RR + o_a, mask=o_mask, other=0.0).to(tl.float32)[None, :]
                acc_b += tl.load(b_ptr + fj * RR + o_b, mask=o_mask, other=0.0).to(tl.float32)[None, :]
            f = acc_a
            if SHIFT:
                f = tl.where((dx == 0)[None, :] & (px >= 1)[:, None], acc_b, acc_a)
            v = (v + f) * 0.5
        flat = (py[:, None] * R + dy[None, :]) * width + px[:, None] * R + dx[None, :]
        best, best_i, nan_seen = argmax_update(best, best_i, nan_seen, v, flat, p_mask[:, None] & o_mask[None, :])
    store_partial(part_val_ptr, part_idx_ptr, nk, split, n_splits, best, best_i, nan_seen)


@triton.jit
def _joint_bases(x_ptr, fx_ptr, w_ptr, b_ptr, fidx_ptr, nk, E, sxn, sxc, sfn, sfc, swo,
                 K: tl.constexpr, R: tl.constexpr, FLIP: tl.constexpr):
    """(n, j, fj, and the pointers to the embeddings, weights and bias of joint j of sample n and of its flip
    partner fj in the flipped image) of map nk = (n, j)."""
    n, j, fj = flip_partner(fidx_ptr, nk, K, FLIP)
    RR: tl.constexpr = R * R
    x_base = x_ptr + n * sxn + (j * E).to(tl.int64) * sxc
    fx_base = fx_ptr + n * sfn + (fj * E).to(tl.int64) * sfc
    return (n, j, fj, x_base, fx_base, w_ptr + (j * RR).to(tl.int64) * swo, w_ptr + (fj * RR).to(tl.int64) * swo,
            b_ptr + j * RR, b_ptr + fj * RR)


@triton.jit
def _heatmap_at(x_base, w_base, b_base, rows, cols, inside, h, w, E,
                sxc, sxh, sxw, swo, swc, swh, sww,
                KS: tl.constexpr, R: tl.constexpr, HAS_BIAS: tl.constexpr, BW: tl.constexpr, TAPS: tl.constexpr):
    """One joint's heatmap at (rows, cols) (BW, BW) heatmap pixels, float32, each value a dot product of
    its E*KS*KS taps, TAPS / (BW*BW) taps at a time and at least one (0 where not inside)."""
    BLOCK_T: tl.constexpr = (TAPS + BW * BW - 1) // (BW * BW)
    PAD: tl.constexpr = KS // 2
    py = (rows // R)[:, :, None]
    px = (cols // R)[:, :, None]
    x_pix = py * sxh + px * sxw
    w_sub = ((rows % R) * R + cols % R)[:, :, None] * swo
    n_red = E * KS * KS
    acc = tl.zeros([BW, BW, BLOCK_T], dtype=tl.float32)
    for t0 in range(0, n_red, BLOCK_T):
        offs_t, t_mask, c, ky, kx = _taps(t0, n_red, KS, BLOCK_T)
        ky, kx = ky - PAD, kx - PAD  # offsets from the centre tap
        tap = inside[:, :, None] & t_mask[None, None, :]
        iy = py + ky[None, None, :]
        ix = px + kx[None, None, :]
        a = tl.load(x_base + x_pix + (c * sxc + ky * sxh + kx * sxw)[None, None, :],
                    mask=tap & (iy >= 0) & (iy < h) & (ix >= 0) & (ix < w), other=0.0)
        wt = tl.load(w_base + w_sub + (c * swc + (ky + PAD) * swh + (kx + PAD) * sww)[None, None, :],
                     mask=tap, other=0.0)
        acc += a.to(tl.float32) * wt.to(tl.float32)
    v = tl.sum(acc, 2)
    if HAS_BIAS:
        v += tl.load(b_base + (rows % R) * R + cols % R, mask=inside, other=0.0).to(tl.float32)
    return v


@triton.jit
def _sr_window(src, SPEC: tl.constexpr, oy, ox, BW: tl.constexpr):
    """The window reader of `refine_and_store`: the (flip-merged) heatmap on the (BW, BW) window at (oy, ox),
    float32, zero outside the map."""
    x_base, fx_base, w_base, fw_base, b_base, fb_base, h, w, E, sxc, sxh, sxw, sfc, sfh, sfw, swo, swc, swh, sww = src
    KS: tl.constexpr = SPEC[0]
    R: tl.constexpr = SPEC[1]
    HAS_BIAS: tl.constexpr = SPEC[2]
    FLIP: tl.constexpr = SPEC[3]
    SHIFT: tl.constexpr = SPEC[4]
    TAPS: tl.constexpr = SPEC[5]
    rows = oy + tl.arange(0, BW)[:, None]
    cols = ox + tl.arange(0, BW)[None, :]
    inside = (rows >= 0) & (rows < h * R) & (cols >= 0) & (cols < w * R)
    rows = tl.where(inside, rows, 0)
    cols = tl.where(inside, cols, 0)
    v = _heatmap_at(x_base, w_base, b_base, rows, cols, inside, h, w, E, sxc, sxh, sxw, swo, swc, swh, sww,
                    KS, R, HAS_BIAS, BW, TAPS)
    if FLIP:
        f = _heatmap_at(fx_base, fw_base, fb_base, rows, flipped_columns(cols, w * R, SHIFT), inside, h, w, E,
                        sfc, sfh, sfw, swo, swc, swh, sww, KS, R, HAS_BIAS, BW, TAPS)
        v = (v + f) * 0.5
    return tl.where(inside, v, 0.0)


@triton.jit(do_not_specialize=["n_splits"])  # set by the batch size: one binary for any batch
def _sr_refine_kernel(
    x_ptr, fx_ptr, w_ptr, b_ptr, fidx_ptr, part_val_ptr, part_idx_ptr, g_ptr, center_ptr, scale_ptr,
    kp_ptr, score_ptr,
    h, w, E, n_splits,
    sxn, sxc, sxh, sxw,
    sfn, sfc, sfh, sfw,
    swo, swc, swh, sww,
    K: tl.constexpr, KS: tl.constexpr, R: tl.constexpr, HAS_BIAS: tl.constexpr, FLIP: tl.constexpr,
    SHIFT: tl.constexpr, METHOD: tl.constexpr, KB: tl.constexpr, HAS_TRANSFORM: tl.constexpr,
    BWL: tl.constexpr, BWG: tl.constexpr, TO: tl.constexpr, TAPS: tl.constexpr,
):
    nk = tl.program_id(0)
    n, _, _, x_base, fx_base, w_base, fw_base, b_base, fb_base = _joint_bases(
        x_ptr, fx_ptr, w_ptr, b_ptr, fidx_ptr, nk, E, sxn, sxc, sfn, sfc, swo, K, R, FLIP)
    src = (x_base, fx_base, w_base, fw_base, b_base, fb_base, h, w, E, sxc, sxh, sxw, sfc, sfh, sfw, swo, swc, swh,
           sww)
    refine_and_store(_sr_window, src, (KS, R, HAS_BIAS, FLIP, SHIFT, TAPS),
                     part_val_ptr, part_idx_ptr, g_ptr, center_ptr, scale_ptr, kp_ptr, score_ptr,
                     n, nk, n_splits, h * R, w * R, METHOD, KB, HAS_TRANSFORM, BWL, BWG, TO)


def sr_head_decode_forward(emb: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, upscale: int,
                           flipped_emb: torch.Tensor | None, flip_indices: torch.Tensor | None, flip_shift: bool,
                           method: str, blur_kernel: int, center: torch.Tensor | None,
                           scale: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
    """(keypoints (N, K, 2), scores (N, K)) float32; shapes validated by `ops.sr_head_decode`."""
    dtype = emb.dtype
    if dtype not in (torch.float32, torch.float16, torch.bfloat16):
        raise ValueError(f"sr_head_decode (triton): dtype must be float32, float16 or bfloat16, got {dtype}")
    for name, t in (("weight", weight), ("bias", bias), ("flipped_emb", flipped_emb)):
        if t is not None and t.dtype != dtype:
            raise ValueError(f"sr_head_decode (triton): {name} must have emb's dtype {dtype}, got {t.dtype}")
    launch.check_kernel_device("sr_head_decode", emb, _sr_argmax_kernel)
    N, _, h, w = emb.shape
    R, E, KS = upscale, weight.shape[1], weight.shape[2]
    K = weight.shape[0] // (R * R)
    device = emb.device
    keypoints, scores = decode_outputs(N, K, device)
    if N * K == 0:
        return keypoints, scores
    femb, fidx = flip_inputs(emb, flipped_emb, flip_indices, scores)
    bias_t = bias if bias is not None else weight  # not read without bias

    block_p = min(64, launch.pow2_at_least_16(h * w))
    n_ptiles = triton.cdiv(h * w, block_p)
    n_splits, part_val, part_idx = launch.argmax_partials(N * K, n_ptiles, device)
    precision, dot_fp32 = launch.dot_config(dtype, _sr_argmax_kernel)
    wrap_triton(_sr_argmax_kernel)[(N * K, n_splits)](
        emb, femb, weight, bias_t, fidx, part_val, part_idx,
        h, w, E, n_ptiles, n_splits,
        *emb.stride(), *femb.stride(), *weight.stride(),
        K=K, KS=KS, R=R, HAS_BIAS=bias is not None, FLIP=flipped_emb is not None, SHIFT=bool(flip_shift),
        PRECISION=precision, DOT_FP32=dot_fp32,
        # fp32 operands: 32 taps a step keeps the three GEMMs' pipelined tiles near 100 KB of shared memory
        BLOCK_P=block_p,
        BLOCK_T=min(32 if dtype == torch.float32 else 64, launch.pow2_at_least_16(E * KS * KS)),
        BLOCK_O=launch.pow2_at_least_16(R * R),
        num_warps=8,  # with 4, the three flip GEMMs spill ~0.5 KB a thread (tests/kernels/hopper_compile.py)
    )

    taps, center_t, scale_t, constexprs = refine_config(method, blur_kernel, center, scale, device, scores)
    wrap_triton(_sr_refine_kernel)[(N * K,)](
        emb, femb, weight, bias_t, fidx, part_val, part_idx, taps, center_t, scale_t, keypoints, scores,
        h, w, E, n_splits,
        *emb.stride(), *femb.stride(), *weight.stride(),
        K=K, KS=KS, R=R, HAS_BIAS=bias is not None, FLIP=flipped_emb is not None, SHIFT=bool(flip_shift), **constexprs,
        # 2048 products a step over 8 warps: no spills (4096 over 4 warps spilled up to 1.5 KB a thread)
        TAPS=INTERPRETER_TAPS if launch.interpreted(_sr_refine_kernel) else GPU_TAPS, num_warps=8,
    )
    return keypoints, scores
