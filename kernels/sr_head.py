"""Triton kernels of the SR head: grouped KxK conv (one group per joint) fused with pixel shuffle.

Shapes (names used throughout): x (N, K*E, H, W), weight (K*RR, E, KS, KS) with RR = R*R,
bias (K*RR,), out (N, K, R*H, R*W). Conv channel o = dy*R + dx of joint j lands at
out[n, j, y*R + dy, x*R + dx]: the kernels read and write that shuffled layout directly, so the
(N, K*RR, H, W) conv output is never materialised, in the forward pass or the backward pass.

Every kernel is one GEMM per joint whose operands are gathered on the fly (implicit im2col);
the reduction index t = c*KS*KS + ky*KS + kx is weight's own (E, KS, KS) order:
- forward:     out tile [pixels x RR]    = x patches [pixels x E*KS*KS]      @ w_j^T [E*KS*KS x RR]
- grad_x:      grad_x tile [pixels x E]  = grad_out patches [pixels x RR*KS*KS] @ w_j [RR*KS*KS x E]
- grad_weight: partial [RR x E*KS*KS]    = grad_out^T [RR x pixels]          @ x patches [pixels x E*KS*KS]
All tile sides are >= 16 (tl.dot's minimum) and masked; accumulation is fp32.
"""
from __future__ import annotations

import torch
import triton
import triton.language as tl
from torch.library import wrap_triton

from . import launch


@triton.jit
def mma(acc, a, b, PRECISION: tl.constexpr, DOT_FP32: tl.constexpr):
    """acc + a @ b on the matrix units, as `launch.dot_config` chose (DOT_FP32: upcast the operands first)."""
    if DOT_FP32:
        a = a.to(tl.float32)
        b = b.to(tl.float32)
    return acc + tl.dot(a, b, input_precision=PRECISION)


@triton.jit
def _taps(t0, n_red, KS: tl.constexpr, BLOCK_T: tl.constexpr):
    """Reduction indices t0 .. t0 + BLOCK_T - 1 of t = outer*KS*KS + ky*KS + kx: (t, t < n_red, outer, ky, kx)."""
    offs_t = t0 + tl.arange(0, BLOCK_T)
    return offs_t, offs_t < n_red, offs_t // (KS * KS), (offs_t // KS) % KS, offs_t % KS


@triton.jit
def _pixel_tile(H, W, n_ptiles, K: tl.constexpr, BLOCK_P: tl.constexpr):
    """Program id -> (n as int64, joint j, pixel mask, py, px) of its BLOCK_P input pixels of map (n, j)."""
    pid = tl.program_id(0)
    nj = pid // n_ptiles
    offs_p = (pid % n_ptiles) * BLOCK_P + tl.arange(0, BLOCK_P)
    return (nj // K).to(tl.int64), nj % K, offs_p < H * W, offs_p // W, offs_p % W


@triton.jit
def _sr_head_fwd_kernel(
    x_ptr, w_ptr, b_ptr, out_ptr,
    H, W, E, n_ptiles,
    sxn, sxc, sxh, sxw,
    swo, swc, swh, sww,
    son, soc, soh, sow,
    K: tl.constexpr, KS: tl.constexpr, R: tl.constexpr, HAS_BIAS: tl.constexpr,
    PRECISION: tl.constexpr, DOT_FP32: tl.constexpr, BLOCK_P: tl.constexpr, BLOCK_T: tl.constexpr, BLOCK_O: tl.constexpr,
):
    # One program: BLOCK_P input pixels of one (n, joint), all RR sub-pixels of each.
    n, j, p_mask, py, px = _pixel_tile(H, W, n_ptiles, K, BLOCK_P)
    RR: tl.constexpr = R * R
    PAD: tl.constexpr = KS // 2
    offs_o = tl.arange(0, BLOCK_O)
    o_mask = offs_o < RR

    x_base = x_ptr + n * sxn + (j * E).to(tl.int64) * sxc
    w_base = w_ptr + (j * RR).to(tl.int64) * swo
    n_red = E * KS * KS
    acc = tl.zeros([BLOCK_P, BLOCK_O], dtype=tl.float32)
    for t0 in range(0, n_red, BLOCK_T):
        _, t_mask, c, ky, kx = _taps(t0, n_red, KS, BLOCK_T)
        iy = py[:, None] + ky[None, :] - PAD
        ix = px[:, None] + kx[None, :] - PAD
        a_mask = (p_mask[:, None] & t_mask[None, :]
                  & (iy >= 0) & (iy < H) & (ix >= 0) & (ix < W))
        a = tl.load(x_base + c[None, :] * sxc + iy * sxh + ix * sxw, mask=a_mask, other=0.0)
        b = tl.load(w_base + offs_o[None, :] * swo + c[:, None] * swc + ky[:, None] * swh + kx[:, None] * sww,
                    mask=t_mask[:, None] & o_mask[None, :], other=0.0)
        acc = mma(acc, a, b, PRECISION, DOT_FP32)

    if HAS_BIAS:
        bias = tl.load(b_ptr + j * RR + offs_o, mask=o_mask, other=0.0)
        acc += bias.to(tl.float32)[None, :]

    oy = py[:, None] * R + (offs_o // R)[None, :]
    ox = px[:, None] * R + (offs_o % R)[None, :]
    out_offs = n * son + j.to(tl.int64) * soc + oy * soh + ox * sow
    tl.store(out_ptr + out_offs, acc.to(out_ptr.dtype.element_ty), mask=p_mask[:, None] & o_mask[None, :])


@triton.jit
def _sr_head_bwd_input_kernel(
    go_ptr, w_ptr, gx_ptr,
    H, W, E, n_ptiles,
    sgn, sgc, sgh, sgw,
    swo, swc, swh, sww,
    sxn, sxc, sxh, sxw,
    K: tl.constexpr, KS: tl.constexpr, R: tl.constexpr,
    PRECISION: tl.constexpr, DOT_FP32: tl.constexpr, BLOCK_P: tl.constexpr, BLOCK_T: tl.constexpr, BLOCK_E: tl.constexpr,
):
    # One program: BLOCK_P input pixels of one (n, joint), all E channels of that joint.
    # grad_x[n, j*E + c, y, x] = sum_{o, ky, kx} gconv[o, y - ky + PAD, x - kx + PAD] * w[j*RR + o, c, ky, kx]
    # with gconv[o, y, x] = grad_out[n, j, y*R + o // R, x*R + o % R] (the un-shuffle, read in place).
    offs_c = tl.arange(0, BLOCK_E)
    c_mask = offs_c < E
    n, j, p_mask, py, px = _pixel_tile(H, W, n_ptiles, K, BLOCK_P)
    RR: tl.constexpr = R * R
    PAD: tl.constexpr = KS // 2

    go_base = go_ptr + n * sgn + j.to(tl.int64) * sgc
    w_base = w_ptr + (j * RR).to(tl.int64) * swo
    n_red = RR * KS * KS
    acc = tl.zeros([BLOCK_P, BLOCK_E], dtype=tl.float32)
    for t0 in range(0, n_red, BLOCK_T):
        _, t_mask, o, ky, kx = _taps(t0, n_red, KS, BLOCK_T)
        cy = py[:, None] - ky[None, :] + PAD
        cx = px[:, None] - kx[None, :] + PAD
        a_mask = (p_mask[:, None] & t_mask[None, :]
                  & (cy >= 0) & (cy < H) & (cx >= 0) & (cx < W))
        gy = cy * R + (o // R)[None, :]
        gx = cx * R + (o % R)[None, :]
        a = tl.load(go_base + gy * sgh + gx * sgw, mask=a_mask, other=0.0)
        b = tl.load(w_base + o[:, None] * swo + offs_c[None, :] * swc + ky[:, None] * swh + kx[:, None] * sww,
                    mask=t_mask[:, None] & c_mask[None, :], other=0.0)
        acc = mma(acc, a, b, PRECISION, DOT_FP32)

    gx_offs = n * sxn + (j * E + offs_c[None, :]).to(tl.int64) * sxc + py[:, None] * sxh + px[:, None] * sxw
    tl.store(gx_ptr + gx_offs, acc.to(gx_ptr.dtype.element_ty), mask=p_mask[:, None] & c_mask[None, :])


@triton.jit(do_not_specialize=["N", "n_splits"])  # set by the batch size: one binary for any batch
def _sr_head_bwd_weight_kernel(
    go_ptr, x_ptr, pw_ptr, pb_ptr,
    N, H, W, E, n_splits,
    sgn, sgc, sgh, sgw,
    sxn, sxc, sxh, sxw,
    K: tl.constexpr, KS: tl.constexpr, R: tl.constexpr,
    PRECISION: tl.constexpr, DOT_FP32: tl.constexpr, BLOCK_P: tl.constexpr, BLOCK_T: tl.constexpr, BLOCK_O: tl.constexpr,
):
    # Program (j, split, t-tile): sums grad_out^T @ x-patches over the pixel tiles
    # split, split + n_splits, ... of all N*H*W pixels; writes one fp32 partial (summed by the launcher).
    j = tl.program_id(0)
    split = tl.program_id(1)
    pid_t = tl.program_id(2)
    RR: tl.constexpr = R * R
    PAD: tl.constexpr = KS // 2

    offs_o = tl.arange(0, BLOCK_O)
    o_mask = offs_o < RR
    n_red = E * KS * KS
    offs_t, t_mask, c, ky, kx = _taps(pid_t * BLOCK_T, n_red, KS, BLOCK_T)

    go_base = go_ptr + j.to(tl.int64) * sgc
    x_base = x_ptr + (j * E).to(tl.int64) * sxc
    HW = H * W
    acc = tl.zeros([BLOCK_O, BLOCK_T], dtype=tl.float32)
    bias_acc = tl.zeros([BLOCK_O], dtype=tl.float32)
    for p0 in range(split * BLOCK_P, N * HW, n_splits * BLOCK_P):
        offs_p = p0 + tl.arange(0, BLOCK_P)
        p_mask = offs_p < N * HW
        n = (offs_p // HW).to(tl.int64)
        rem = offs_p % HW
        py = rem // W
        px = rem % W
        gy = py[None, :] * R + (offs_o // R)[:, None]
        gx = px[None, :] * R + (offs_o % R)[:, None]
        g = tl.load(go_base + n[None, :] * sgn + gy * sgh + gx * sgw,
                    mask=o_mask[:, None] & p_mask[None, :], other=0.0)
        iy = py[:, None] + ky[None, :] - PAD
        ix = px[:, None] + kx[None, :] - PAD
        x_mask = (p_mask[:, None] & t_mask[None, :]
                  & (iy >= 0) & (iy < H) & (ix >= 0) & (ix < W))
        xv = tl.load(x_base + n[:, None] * sxn + c[None, :] * sxc + iy * sxh + ix * sxw, mask=x_mask, other=0.0)
        acc = mma(acc, g, xv, PRECISION, DOT_FP32)
        bias_acc += tl.sum(g.to(tl.float32), axis=1)

    rows = split.to(tl.int64) * (K * RR) + j * RR + offs_o
    tl.store(pw_ptr + rows[:, None] * n_red + offs_t[None, :], acc, mask=o_mask[:, None] & t_mask[None, :])
    if pid_t == 0:
        tl.store(pb_ptr + rows, bias_acc, mask=o_mask)


def _check_kernel_inputs(x: torch.Tensor, weight: torch.Tensor, upscale: int, *tensors: torch.Tensor | None):
    """What the kernels rely on; shapes are validated for the user by `check_sr_head_inputs`."""
    if x.dtype not in (torch.float32, torch.float16, torch.bfloat16):
        raise ValueError(f"sr_head (triton): dtype must be float32, float16 or bfloat16, got {x.dtype}")
    for t in (weight, *tensors):
        if t is not None and t.dtype != x.dtype:
            raise ValueError(f"sr_head (triton): all tensors must share x's dtype {x.dtype}, got {t.dtype}")
        if t is not None and t.device != x.device:
            raise ValueError("sr_head (triton): all tensors must be on the same device")
    launch.check_kernel_device("sr_head", x, _sr_head_fwd_kernel)
    if x.dim() != 4 or weight.dim() != 4 or weight.shape[0] % (upscale * upscale) \
            or x.shape[1] != weight.shape[0] // (upscale * upscale) * weight.shape[1]:
        raise ValueError(f"sr_head (triton): x {tuple(x.shape)} and weight {tuple(weight.shape)} "
                         f"do not fit upscale {upscale}")


def sr_head_forward(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, upscale: int) -> torch.Tensor:
    """out (N, K, r*H, r*W) = pixel_shuffle(grouped_conv(x, weight, bias), r), in one kernel."""
    _check_kernel_inputs(x, weight, upscale, bias)
    N, _, H, W = x.shape
    R, E, KS = upscale, weight.shape[1], weight.shape[2]
    K = weight.shape[0] // (R * R)
    out = launch.new_buffer((N, K, R * H, R * W), x.device, x.dtype)
    if out.numel() == 0:
        return out
    precision, dot_fp32 = launch.dot_config(x.dtype, _sr_head_fwd_kernel)
    block_p = min(64, launch.pow2_at_least_16(H * W))
    n_ptiles = triton.cdiv(H * W, block_p)
    wrap_triton(_sr_head_fwd_kernel)[(N * K * n_ptiles,)](
        x, weight, bias if bias is not None else weight, out,
        H, W, E, n_ptiles,
        *x.stride(), *weight.stride(), *out.stride(),
        K=K, KS=KS, R=R, HAS_BIAS=bias is not None, PRECISION=precision, DOT_FP32=dot_fp32,
        BLOCK_P=block_p, BLOCK_T=min(64, launch.pow2_at_least_16(E * KS * KS)),
        BLOCK_O=launch.pow2_at_least_16(R * R),
    )
    return out


def sr_head_backward(grad_out: torch.Tensor, x: torch.Tensor, weight: torch.Tensor,
                     upscale: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(grad_x, grad_weight, grad_bias) of `sr_head_forward`, reading grad_out in its shuffled layout."""
    _check_kernel_inputs(x, weight, upscale, grad_out)
    N, _, H, W = x.shape
    R, E, KS = upscale, weight.shape[1], weight.shape[2]
    K = weight.shape[0] // (R * R)
    if tuple(grad_out.shape) != (N, K, R * H, R * W):
        raise ValueError(f"sr_head (triton): grad_out must be {(N, K, R * H, R * W)}, got {tuple(grad_out.shape)}")
    precision, dot_fp32 = launch.dot_config(x.dtype, _sr_head_fwd_kernel)
    grad_x = launch.new_buffer(x.shape, x.device, x.dtype)
    if x.numel() > 0:
        block_p = min(64, launch.pow2_at_least_16(H * W))
        n_ptiles = triton.cdiv(H * W, block_p)
        wrap_triton(_sr_head_bwd_input_kernel)[(N * K * n_ptiles,)](
            grad_out, weight, grad_x,
            H, W, E, n_ptiles,
            *grad_out.stride(), *weight.stride(), *grad_x.stride(),
            K=K, KS=KS, R=R, PRECISION=precision, DOT_FP32=dot_fp32,
            BLOCK_P=block_p, BLOCK_T=min(64, launch.pow2_at_least_16(R * R * KS * KS)),
            BLOCK_E=launch.pow2_at_least_16(E),
        )

    # grad_weight and grad_bias: fp32 partial sums over n_splits slices of the N*H*W pixels, then a sum
    # (deterministic, unlike atomics). The slices give the grid TARGET_PROGRAMS programs where the pixels
    # allow: at ~214 registers and 8 warps an SM holds one program at a time, so the grid needs many
    # waves of them to keep every SM busy (512 programs before: 510 at stage 3, under 4 waves on 132 SMs).
    n_red = E * KS * KS
    block_p = min(64, launch.pow2_at_least_16(N * H * W))
    block_t = min(64, launch.pow2_at_least_16(n_red))
    n_ttiles = triton.cdiv(n_red, block_t)
    n_splits = max(1, min(triton.cdiv(N * H * W, block_p), triton.cdiv(launch.TARGET_PROGRAMS, K * n_ttiles)))
    partial_w = launch.new_buffer((n_splits, K * R * R, n_red), x.device)
    partial_b = launch.new_buffer((n_splits, K * R * R), x.device)
    if weight.numel() > 0:
        wrap_triton(_sr_head_bwd_weight_kernel)[(K, n_splits, n_ttiles)](
            grad_out, x, partial_w, partial_b,
            N, H, W, E, n_splits,
            *grad_out.stride(), *x.stride(),
            K=K, KS=KS, R=R, PRECISION=precision, DOT_FP32=dot_fp32,
            BLOCK_P=block_p, BLOCK_T=block_t, BLOCK_O=launch.pow2_at_least_16(R * R),
            # 8 warps: with 4, ptxas spills (up to 52 B a thread at k9 fp32; tests/kernels/hopper_compile.py)
            num_warps=8,
        )
    grad_weight = partial_w.sum(0).view(weight.shape).to(weight.dtype)
    grad_bias = partial_b.sum(0).to(weight.dtype)
    return grad_x, grad_weight, grad_bias
