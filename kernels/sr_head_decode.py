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
2. `_sr_refine_kernel`, grid (N*K,): reduces the S partials (max; lowest index among equal maxima;
   NaN if any), then refines exactly as `kernels.decode` does, recomputing only the heatmap values it
   reads (an 8x8 window for "shift"; a (BWL x BWL) window for the blurred 5x5 of "dark"/"dark_udp";
   and, only when DARK's clamp could act, the whole map once more, tile by tile, for the blurred
   maximum), each value a direct dot product of E*KS*KS taps. Then the transform and the stores.

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
from .decode import (
    METHOD_IDS, TILE, _argmax_update, _blur_tile, _dark_offset, _dark_ok, _finish, _needs_blurred_max,
    _shift_offset, gaussian_taps, prepare_transform, reduce_partials, window_sizes,
)

MAX_BLUR_KERNEL = 49  # keeps the whole-map tiles' window at 64x64
# Products (window pixels x taps) per step of the refinement's direct dot products: 2048 on a GPU
# (registers); more under TRITON_INTERPRET=1, where each step costs per operation, not per element.
INTERPRETER_TAPS = 65536


@triton.jit
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
    n = nk // K
    j = nk % K
    RR: tl.constexpr = R * R
    PAD: tl.constexpr = KS // 2
    n_red = E * KS * KS
    width = w * R

    offs_o = tl.arange(0, BLOCK_O)
    o_mask = offs_o < RR
    dy = offs_o // R
    dx = offs_o % R
    x_base = x_ptr + n.to(tl.int64) * sxn + (j * E).to(tl.int64) * sxc
    w_base = w_ptr + (j * RR).to(tl.int64) * swo
    fx_base = x_base
    fw_base = w_base
    fj = j
    if FLIP:
        fj = tl.load(fidx_ptr + j)
        fx_base = fx_ptr + n.to(tl.int64) * sfn + (fj * E).to(tl.int64) * sfc
        fw_base = w_ptr + (fj * RR).to(tl.int64) * swo
    # flipped sub-pixel of each plain column (A: pixel w - 1 - x; B: pixel w - x, columns dx == 0)
    if SHIFT:
        o_a = dy * R + tl.where(dx == 0, R - 1, R - dx)
    else:
        o_a = dy * R + (R - 1 - dx)
    o_b = dy * R
    b_cols = o_mask & (dx == 0)

    best = tl.full([BLOCK_P, BLOCK_O], float("-inf"), tl.float32)
    best_i = tl.full([BLOCK_P, BLOCK_O], 2147483647, tl.int32)
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
            offs_t = t0 + tl.arange(0, BLOCK_T)
            t_mask = offs_t < n_red
            c = offs_t // (KS * KS)
            ky = (offs_t // KS) % KS - PAD
            kx = offs_t % KS - PAD
            iy = py[:, None] + ky[None, :]
            row_ok = p_mask[:, None] & t_mask[None, :] & (iy >= 0) & (iy < h)
            ix = px[:, None] + kx[None, :]
            a = tl.load(x_base + pix + (c * sxc + ky * sxh + kx * sxw)[None, :],
                        mask=row_ok & (ix >= 0) & (ix < w), other=0.0)
            w_offs = (c * swc + (ky + PAD) * swh + (kx + PAD) * sww)[:, None]
            bw = tl.load(w_base + offs_o[None, :] * swo + w_offs, mask=t_mask[:, None] & o_mask[None, :], other=0.0)
            if DOT_FP32:  # only under TRITON_INTERPRET=1, whose bf16 dot is wrong; bf16 -> fp32 is exact
                a = a.to(tl.float32)
                bw = bw.to(tl.float32)
            acc = tl.dot(a, bw, acc, input_precision=PRECISION)
            if FLIP:
                f_tap = (c * sfc + ky * sfh + kx * sfw)[None, :]
                ix = (w - 1 - px)[:, None] + kx[None, :]
                a = tl.load(fx_base + fpix_a + f_tap, mask=row_ok & (ix >= 0) & (ix < w), other=0.0)
                bw = tl.load(fw_base + o_a[None, :] * swo + w_offs, mask=t_mask[:, None] & o_mask[None, :], other=0.0)
                if DOT_FP32:
                    a = a.to(tl.float32)
                    bw = bw.to(tl.float32)
                acc_a = tl.dot(a, bw, acc_a, input_precision=PRECISION)
                if SHIFT:
                    ix = (w - px)[:, None] + kx[None, :]
                    a = tl.load(fx_base + fpix_b + f_tap, mask=row_ok & (ix >= 0) & (ix < w), other=0.0)
                    bw = tl.load(fw_base + o_b[None, :] * swo + w_offs, mask=t_mask[:, None] & b_cols[None, :],
                                 other=0.0)
                    if DOT_FP32:
                        a = a.to(tl.float32)
                        bw = bw.to(tl.float32)
                    acc_b = tl.dot(a, bw, acc_b, input_precision=PRECISION)
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
        best, best_i, nan_seen = _argmax_update(best, best_i, nan_seen, v, flat, p_mask[:, None] & o_mask[None, :])

    m = tl.max(best)
    idx = tl.min(tl.where(best == m, best_i, 2147483647))
    m = tl.where(tl.max(nan_seen) > 0, float("nan"), m)
    tl.store(part_val_ptr + nk * n_splits + split, m)
    tl.store(part_idx_ptr + nk * n_splits + split, idx)


@triton.jit
def _heatmap_at(x_base, w_base, b_base, rows, cols, inside, h, w, E,
                sxc, sxh, sxw, swo, swc, swh, sww,
                KS: tl.constexpr, R: tl.constexpr, HAS_BIAS: tl.constexpr, BW: tl.constexpr, TAPS: tl.constexpr):
    """One joint's heatmap at (rows, cols) (BW, BW) heatmap pixels, float32, each value a dot product of
    its E*KS*KS taps, TAPS // (BW*BW) taps at a time (0 where not inside)."""
    BLOCK_T: tl.constexpr = TAPS // (BW * BW)
    PAD: tl.constexpr = KS // 2
    py = (rows // R)[:, :, None]
    px = (cols // R)[:, :, None]
    x_pix = py * sxh + px * sxw
    w_sub = ((rows % R) * R + cols % R)[:, :, None] * swo
    n_red = E * KS * KS
    acc = tl.zeros([BW, BW, BLOCK_T], dtype=tl.float32)
    for t0 in range(0, n_red, BLOCK_T):
        offs_t = t0 + tl.arange(0, BLOCK_T)
        c = offs_t // (KS * KS)
        ky = (offs_t // KS) % KS - PAD
        kx = offs_t % KS - PAD
        tap = inside[:, :, None] & (offs_t < n_red)[None, None, :]
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
def _sr_window(x_base, fx_base, w_base, fw_base, b_base, fb_base, oy, ox, h, w, E,
               sxc, sxh, sxw, sfc, sfh, sfw, swo, swc, swh, sww,
               KS: tl.constexpr, R: tl.constexpr, HAS_BIAS: tl.constexpr, FLIP: tl.constexpr, SHIFT: tl.constexpr,
               BW: tl.constexpr, TAPS: tl.constexpr):
    """The (flip-merged) heatmap on the (BW, BW) window at (oy, ox), float32, zero outside the map."""
    height = h * R
    width = w * R
    rows = oy + tl.arange(0, BW)[:, None]
    cols = ox + tl.arange(0, BW)[None, :]
    inside = (rows >= 0) & (rows < height) & (cols >= 0) & (cols < width)
    rows = tl.where(inside, rows, 0)
    cols = tl.where(inside, cols, 0)
    v = _heatmap_at(x_base, w_base, b_base, rows, cols, inside, h, w, E, sxc, sxh, sxw, swo, swc, swh, sww,
                    KS, R, HAS_BIAS, BW, TAPS)
    if FLIP:
        if SHIFT:
            fcols = width - tl.maximum(cols, 1)
        else:
            fcols = width - 1 - cols
        f = _heatmap_at(fx_base, fw_base, fb_base, rows, fcols, inside, h, w, E, sfc, sfh, sfw, swo, swc, swh, sww,
                        KS, R, HAS_BIAS, BW, TAPS)
        v = (v + f) * 0.5
    return tl.where(inside, v, 0.0)


@triton.jit
def _sr_refine_kernel(
    x_ptr, fx_ptr, w_ptr, b_ptr, fidx_ptr, part_val_ptr, part_idx_ptr, g_ptr, center_ptr, scale_ptr,
    kp_ptr, score_ptr,
    h, w, E, n_splits,
    sxn, sxc, sxh, sxw,
    sfn, sfc, sfh, sfw,
    swo, swc, swh, sww,
    K: tl.constexpr, KS: tl.constexpr, R: tl.constexpr, HAS_BIAS: tl.constexpr, FLIP: tl.constexpr,
    SHIFT: tl.constexpr, METHOD: tl.constexpr, KB: tl.constexpr, HAS_TRANSFORM: tl.constexpr,
    BLOCK_S: tl.constexpr, BWL: tl.constexpr, BWG: tl.constexpr, TO: tl.constexpr, TAPS: tl.constexpr,
):
    UDP: tl.constexpr = METHOD == 3
    RB: tl.constexpr = KB // 2
    RR: tl.constexpr = R * R
    nk = tl.program_id(0)
    n = nk // K
    j = nk % K
    H = h * R
    W = w * R

    # the argmax from the partials: max; lowest flat index among equal maxima; NaN if any
    m, idx, is_nan = reduce_partials(part_val_ptr, part_idx_ptr, nk, n_splits, BLOCK_S)
    x0 = idx % W
    y0 = idx // W
    valid = (m > 0) & ~is_nan

    x_base = x_ptr + n.to(tl.int64) * sxn + (j * E).to(tl.int64) * sxc
    w_base = w_ptr + (j * RR).to(tl.int64) * swo
    b_base = b_ptr + j * RR
    fx_base = x_base
    fw_base = w_base
    fb_base = b_base
    if FLIP:
        fj = tl.load(fidx_ptr + j)
        fx_base = fx_ptr + n.to(tl.int64) * sfn + (fj * E).to(tl.int64) * sfc
        fw_base = w_ptr + (fj * RR).to(tl.int64) * swo
        fb_base = b_ptr + fj * RR

    ox = 0.0
    oy = 0.0
    if METHOD == 1:
        win = _sr_window(x_base, fx_base, w_base, fw_base, b_base, fb_base, y0 - 2, x0 - 2, h, w, E,
                         sxc, sxh, sxw, sfc, sfh, sfw, swo, swc, swh, sww, KS, R, HAS_BIAS, FLIP, SHIFT, 8, TAPS)
        ox, oy = _shift_offset(win, x0, y0, H, W, valid)
    if METHOD >= 2:
        win = _sr_window(x_base, fx_base, w_base, fw_base, b_base, fb_base, y0 - 2 - RB, x0 - 2 - RB, h, w, E,
                         sxc, sxh, sxw, sfc, sfh, sfw, swo, swc, swh, sww, KS, R, HAS_BIAS, FLIP, SHIFT, BWL, TAPS)
        blur = _blur_tile(win, g_ptr, KB, TO, BWL)
        ok = _dark_ok(x0, y0, H, W, valid, UDP)
        factor = tl.full([], 1.0, tl.float32)
        if ok & _needs_blurred_max(blur, m, x0, y0, H, W, TO, UDP):
            a = tl.arange(0, TO)[:, None]
            b = tl.arange(0, TO)[None, :]
            blur_max = tl.full([], float("-inf"), tl.float32)
            for ty in range(0, H, TO):
                for tx in range(0, W, TO):
                    gwin = _sr_window(x_base, fx_base, w_base, fw_base, b_base, fb_base, ty - RB, tx - RB, h, w, E,
                                      sxc, sxh, sxw, sfc, sfh, sfw, swo, swc, swh, sww, KS, R, HAS_BIAS, FLIP, SHIFT,
                                      BWG, TAPS)
                    tile = _blur_tile(gwin, g_ptr, KB, TO, BWG)
                    tile = tl.where((ty + a < H) & (tx + b < W), tile, float("-inf"))
                    blur_max = tl.maximum(blur_max, tl.max(tile))
            factor = tl.where(blur_max != 0, m / tl.where(blur_max != 0, blur_max, 1.0), 1.0)
        ox, oy = _dark_offset(blur, factor, x0, y0, H, W, ok, TO, UDP)

    _finish(kp_ptr, score_ptr, center_ptr, scale_ptr, n, nk, m, is_nan, x0, y0, ox, oy, H, W, HAS_TRANSFORM, UDP)


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
    if blur_kernel > MAX_BLUR_KERNEL:
        raise ValueError(f"sr_head_decode (triton): blur_kernel up to {MAX_BLUR_KERNEL} is supported, "
                         f"got {blur_kernel}")
    launch.check_kernel_device("sr_head_decode", emb, _sr_argmax_kernel)
    N, _, h, w = emb.shape
    R, E, KS = upscale, weight.shape[1], weight.shape[2]
    K = weight.shape[0] // (R * R)
    device = emb.device
    keypoints = launch.new_buffer((N, K, 2), device)
    scores = launch.new_buffer((N, K), device)
    if N * K == 0:
        return keypoints, scores
    flip = flipped_emb is not None
    femb = flipped_emb if flip else emb
    fidx = (flip_indices.to(device=device, dtype=torch.int32).contiguous() if flip
            else torch.zeros(1, dtype=torch.int32, device=device))
    bias_t = bias if bias is not None else weight  # not read without bias

    block_p = min(64, launch.pow2_at_least_16(h * w))
    n_ptiles = triton.cdiv(h * w, block_p)
    n_splits, part_val, part_idx = launch.argmax_partials(N * K, n_ptiles, device)
    interpreted = launch.interpreted(_sr_argmax_kernel)
    dot_fp32 = dtype == torch.bfloat16 and interpreted
    precision = "ieee" if dtype == torch.float32 or dot_fp32 else "tf32"  # no effect on 16-bit operands
    wrap_triton(_sr_argmax_kernel)[(N * K, n_splits)](
        emb, femb, weight, bias_t, fidx, part_val, part_idx,
        h, w, E, n_ptiles, n_splits,
        *emb.stride(), *femb.stride(), *weight.stride(),
        K=K, KS=KS, R=R, HAS_BIAS=bias is not None, FLIP=flip, SHIFT=bool(flip_shift),
        PRECISION=precision, DOT_FP32=dot_fp32,
        # fp32 operands: 32 taps a step keeps the three GEMMs' pipelined tiles near 100 KB of shared memory
        BLOCK_P=block_p,
        BLOCK_T=min(32 if dtype == torch.float32 else 64, launch.pow2_at_least_16(E * KS * KS)),
        BLOCK_O=launch.pow2_at_least_16(R * R),
        num_warps=8,  # with 4, the three flip GEMMs spill ~0.5 KB a thread (tests/kernels/hopper_compile.py)
    )

    center_t, scale_t = prepare_transform(center, scale, N, device)
    bwl, bwg = window_sizes(blur_kernel)
    wrap_triton(_sr_refine_kernel)[(N * K,)](
        emb, femb, weight, bias_t, fidx, part_val, part_idx, gaussian_taps(blur_kernel, device), center_t, scale_t,
        keypoints, scores,
        h, w, E, n_splits,
        *emb.stride(), *femb.stride(), *weight.stride(),
        K=K, KS=KS, R=R, HAS_BIAS=bias is not None, FLIP=flip, SHIFT=bool(flip_shift),
        METHOD=METHOD_IDS[method], KB=blur_kernel, HAS_TRANSFORM=center is not None,
        BLOCK_S=triton.next_power_of_2(n_splits), BWL=bwl, BWG=bwg, TO=TILE,
        # 2048 products a step over 8 warps: no spills (4096 over 4 warps spilled up to 1.5 KB a thread)
        TAPS=INTERPRETER_TAPS if interpreted else 2048, num_warps=8,
    )
    return keypoints, scores
