"""Triton kernels of one stage of the multi-stage heatmap loss, with the targets made on the fly.

Shapes (names used throughout): pred (N, K, h, w) float32, float16 or bfloat16 (fp32 math throughout);
keypoints (N, K, 2) (x, y) in pixels of the full-resolution map (full_h, full_w), with full_h = BH * h
and full_w = BW * w; weight (N, K) visibility. No target tensor exists, at any resolution.

The full-resolution target of joint (n, k) is separable, T(y, x) = gy(y) * gx(x), each factor a
1-D Gaussian times a 1-D window mask (`srpose_fast.codecs.targets.encode_heatmaps`). Its
adaptive average pool to (h, w) is therefore the outer product of the per-axis block means:
    t(i, j) = (mean_{y in block i} gy(y)) * (mean_{x in block j} gx(x)).
A program owns one (n, k) and one [BLOCK_H x BLOCK_W] tile of pred: it derives the joint's window,
centre and effective weight from the keypoint (fp64 scalar math that mirrors encode_heatmaps'
float64 bounds), builds the two short block-mean profiles in registers, and uses their outer product.

- forward:  partial[program] = w_eff^2 * sum_tile (pred - t)^2 (fp32); the launcher sums the partials
            and divides by N*K*h*w. Deterministic: fixed-order partials, no atomics.
- backward: grad_pred = grad_loss * 2 * w_eff^2 * (pred - t) / (N*K*h*w), fp32 math, stored in
            pred's dtype.
`METHOD` (constexpr string) selects the target semantics: "msra", "unbiased" or "udp".
"""
from __future__ import annotations

import struct

import torch
import triton
import triton.language as tl
from torch.library import wrap_triton

from srpose_fast.codecs.targets import TARGET_METHODS

from . import launch


@triton.jit
def _axis_window(p, length, tmp, half, METHOD: tl.constexpr):
    """One axis of one joint, as encode_heatmaps' _axis_profile: (lo, hi, centre, outside).

    p, tmp: fp64 scalars (coordinate, 3 sigma); `half` = (2 tmp + 1) // 2. The window is the
    integer pixel range [lo, hi) (unused by "unbiased"); centre is fp32 as in the reference.
    Truncation toward zero is the float -> int cast, Python's `int`.
    """
    if METHOD == "unbiased":
        ul = p - tmp
        br = p + tmp + 1.0
        outside = (ul >= length) | (br < 0)
        lo = ul.to(tl.int64)
        hi = br.to(tl.int64)
        centre = p
    else:
        mu = (p + 0.5).to(tl.int64).to(tl.float64)
        lo = (mu - tmp).to(tl.int64)
        hi = (mu + tmp + 1.0).to(tl.int64)
        outside = (lo >= length) | (hi < 0)
        centre = lo.to(tl.float64) + half
        if METHOD == "udp":
            centre = centre + (p - mu)
    return lo, hi, centre.to(tl.float32), outside


@triton.jit
def _block_means(start, lo, hi, centre, two_sigma2,
                 METHOD: tl.constexpr, BLOCK: tl.constexpr, SIZE: tl.constexpr, SUB: tl.constexpr):
    """Means over blocks of BLOCK full-resolution pixels of one axis profile, for the SIZE prediction
    indices start .. start + SIZE - 1 (fp32; indices past the map are masked by the caller). The block
    is summed SUB pixels at a time as a [SIZE, SUB] tile (SUB a power of two, masked past BLOCK)."""
    offs = start + tl.arange(0, SIZE)
    acc = tl.zeros([SIZE], dtype=tl.float32)
    for s0 in range(0, BLOCK, SUB):
        sub = s0 + tl.arange(0, SUB)
        pix = offs[:, None] * BLOCK + sub[None, :]
        d = pix.to(tl.float32) - centre
        g = tl.exp(-(d * d) / two_sigma2)
        keep = sub[None, :] < BLOCK
        if METHOD != "unbiased":
            keep = keep & (pix >= lo) & (pix < hi)
        acc += tl.sum(tl.where(keep, g, 0.0), axis=1)
    return acc / BLOCK


@triton.jit
def _tile_target(kp_ptr, w_ptr, n, k, row0, col0, full_h, full_w,
                 skn, skk, skc, swn, swk,
                 tmp_hi, tmp_lo, half, two_sigma2,
                 METHOD: tl.constexpr, BH: tl.constexpr, BW: tl.constexpr,
                 BLOCK_H: tl.constexpr, BLOCK_W: tl.constexpr, SUB_H: tl.constexpr, SUB_W: tl.constexpr):
    """The [BLOCK_H, BLOCK_W] pooled target tile of joint (n, k) at (row0, col0), and its effective weight."""
    kp_base = kp_ptr + n.to(tl.int64) * skn + k.to(tl.int64) * skk
    px = tl.load(kp_base).to(tl.float64)
    py = tl.load(kp_base + skc).to(tl.float64)
    visibility = tl.load(w_ptr + n.to(tl.int64) * swn + k.to(tl.int64) * swk).to(tl.float32)
    # 3 sigma arrives as an fp32 pair (kernel float arguments are fp32); their fp64 sum is the host's tmp
    # to ~2^-48 relative, so the window bounds agree with the float64 reference.
    tmp = tl.cast(tmp_hi, tl.float64) + tl.cast(tmp_lo, tl.float64)
    lo_x, hi_x, cx, out_x = _axis_window(px, full_w, tmp, half, METHOD)
    lo_y, hi_y, cy, out_y = _axis_window(py, full_h, tmp, half, METHOD)
    weight = tl.where(out_x | out_y, 0.0, visibility)
    draw = tl.where(weight > 0.5, 1.0, 0.0)
    gy = _block_means(row0, lo_y, hi_y, cy, two_sigma2, METHOD, BH, BLOCK_H, SUB_H) * draw
    gx = _block_means(col0, lo_x, hi_x, cx, two_sigma2, METHOD, BW, BLOCK_W, SUB_W)
    return gy[:, None] * gx[None, :], weight


@triton.jit
def _program_tile(pred_ptr, kp_ptr, w_ptr, h, w, full_h, full_w, K,
                  spn, spk, sph, spw, skn, skk, skc, swn, swk,
                  tmp_hi, tmp_lo, half, two_sigma2,
                  METHOD: tl.constexpr, BH: tl.constexpr, BW: tl.constexpr,
                  BLOCK_H: tl.constexpr, BLOCK_W: tl.constexpr, SUB_H: tl.constexpr, SUB_W: tl.constexpr):
    """Program (n*K + k, row tile, column tile) of either kernel: (n, k, rows, cols, mask, the pred tile in
    fp32 (0 outside the map), the pooled target tile, the joint's effective weight)."""
    nk = tl.program_id(0)
    n = nk // K
    k = nk % K
    row0 = tl.program_id(1) * BLOCK_H
    col0 = tl.program_id(2) * BLOCK_W
    target, weight = _tile_target(kp_ptr, w_ptr, n, k, row0, col0, full_h, full_w,
                                  skn, skk, skc, swn, swk, tmp_hi, tmp_lo, half, two_sigma2,
                                  METHOD, BH, BW, BLOCK_H, BLOCK_W, SUB_H, SUB_W)
    rows = row0 + tl.arange(0, BLOCK_H)
    cols = col0 + tl.arange(0, BLOCK_W)
    mask = (rows < h)[:, None] & (cols < w)[None, :]
    offs = n.to(tl.int64) * spn + k.to(tl.int64) * spk + rows[:, None] * sph + cols[None, :] * spw
    pred = tl.load(pred_ptr + offs, mask=mask, other=0.0).to(tl.float32)
    return n, k, rows, cols, mask, pred, target, weight


@triton.jit
def _heatmap_mse_fwd_kernel(
    pred_ptr, kp_ptr, w_ptr, partial_ptr,
    h, w, full_h, full_w, K, n_tiles_h, n_tiles_w,
    spn, spk, sph, spw,
    skn, skk, skc,
    swn, swk,
    tmp_hi, tmp_lo, half, two_sigma2,
    METHOD: tl.constexpr, BH: tl.constexpr, BW: tl.constexpr, BLOCK_H: tl.constexpr, BLOCK_W: tl.constexpr,
    SUB_H: tl.constexpr, SUB_W: tl.constexpr,
):
    # Program (n*K + k, row tile, column tile): one fp32 partial sum of (w (pred - t))^2.
    _, _, _, _, mask, pred, target, weight = _program_tile(
        pred_ptr, kp_ptr, w_ptr, h, w, full_h, full_w, K, spn, spk, sph, spw, skn, skk, skc, swn, swk,
        tmp_hi, tmp_lo, half, two_sigma2, METHOD, BH, BW, BLOCK_H, BLOCK_W, SUB_H, SUB_W)
    diff = tl.where(mask, pred - target, 0.0)
    partial = tl.sum(tl.sum(diff * diff, axis=1), axis=0) * (weight * weight)
    tile = (tl.program_id(0).to(tl.int64) * n_tiles_h + tl.program_id(1)) * n_tiles_w + tl.program_id(2)
    tl.store(partial_ptr + tile, partial)


@triton.jit
def _heatmap_mse_bwd_kernel(
    grad_loss_ptr, pred_ptr, kp_ptr, w_ptr, grad_ptr,
    h, w, full_h, full_w, K, inv_count,
    spn, spk, sph, spw,
    skn, skk, skc,
    swn, swk,
    sgn, sgk, sgh, sgw,
    tmp_hi, tmp_lo, half, two_sigma2,
    METHOD: tl.constexpr, BH: tl.constexpr, BW: tl.constexpr, BLOCK_H: tl.constexpr, BLOCK_W: tl.constexpr,
    SUB_H: tl.constexpr, SUB_W: tl.constexpr,
    BF16_BY_BITS: tl.constexpr,
):
    # Program (n*K + k, row tile, column tile): grad_pred of that tile.
    n, k, rows, cols, mask, pred, target, weight = _program_tile(
        pred_ptr, kp_ptr, w_ptr, h, w, full_h, full_w, K, spn, spk, sph, spw, skn, skk, skc, swn, swk,
        tmp_hi, tmp_lo, half, two_sigma2, METHOD, BH, BW, BLOCK_H, BLOCK_W, SUB_H, SUB_W)
    scale = tl.load(grad_loss_ptr).to(tl.float32) * (2.0 * weight * weight) * inv_count
    grad = scale * (pred - target)
    goffs = n.to(tl.int64) * sgn + k.to(tl.int64) * sgk + rows[:, None] * sgh + cols[None, :] * sgw
    if BF16_BY_BITS:
        # fp32 -> bf16 rounded to nearest even with integer ops (finite values), the GPU's cast.
        bits = grad.to(tl.uint32, bitcast=True)
        bits = bits + 0x7FFF + ((bits >> 16) & 1)
        out = (bits >> 16).to(tl.uint16).to(tl.bfloat16, bitcast=True)
    else:
        out = grad.to(grad_ptr.dtype.element_ty)
    tl.store(grad_ptr + goffs, out, mask=mask)


def _bf16_by_bits(dtype: torch.dtype) -> bool:
    """Only for bf16 under TRITON_INTERPRET=1, whose fp32 -> bf16 cast truncates (its cast_impl passes no
    rounding mode) where the GPU's rounds to nearest even; the bit version gives the GPU's result."""
    return dtype == torch.bfloat16 and launch.interpreted(_heatmap_mse_bwd_kernel)


def _check_kernel_inputs(pred: torch.Tensor, keypoints: torch.Tensor, weight: torch.Tensor, sigma: float,
                         full_h: int, full_w: int, method: str) -> None:
    """What the kernels rely on; `check_loss_inputs` validates the public function's arguments."""
    if pred.dtype not in (torch.float32, torch.float16, torch.bfloat16):
        raise ValueError(f"heatmap_mse_loss (triton): pred must be float32, float16 or bfloat16, got {pred.dtype}")
    if pred.dim() != 4:
        raise ValueError(f"heatmap_mse_loss (triton): pred must be (N, K, h, w), got {tuple(pred.shape)}")
    n, k, h, w = pred.shape
    if tuple(keypoints.shape) != (n, k, 2) or not keypoints.is_floating_point():
        raise ValueError(f"heatmap_mse_loss (triton): keypoints must be float (N={n}, K={k}, 2), "
                         f"got {keypoints.dtype} {tuple(keypoints.shape)}")
    if tuple(weight.shape) != (n, k) or not weight.is_floating_point():
        raise ValueError(f"heatmap_mse_loss (triton): weight must be float (N={n}, K={k}), "
                         f"got {weight.dtype} {tuple(weight.shape)}")
    if keypoints.device != pred.device or weight.device != pred.device:
        raise ValueError("heatmap_mse_loss (triton): pred, keypoints and weight must be on the same device")
    launch.check_kernel_device("heatmap_mse_loss", pred, _heatmap_mse_fwd_kernel)
    if not sigma > 0:
        raise ValueError(f"heatmap_mse_loss (triton): sigma must be positive, got {sigma}")
    if method not in TARGET_METHODS:
        raise ValueError(f"heatmap_mse_loss (triton): method must be one of {TARGET_METHODS}, got {method!r}")
    if h < 1 or w < 1 or full_h < 1 or full_w < 1 or full_h % h or full_w % w:
        raise ValueError(f"heatmap_mse_loss (triton): the full-resolution size {full_h}x{full_w} must be a "
                         f"whole multiple of pred's {h}x{w}")


def _coordinates(keypoints: torch.Tensor) -> torch.Tensor:
    """Keypoints as float32 or float64 (the kernels read them as fp64; half types widen exactly here)."""
    return keypoints if keypoints.dtype in (torch.float32, torch.float64) else keypoints.float()


def _launch_config(pred: torch.Tensor, sigma: float, full_h: int, full_w: int) -> dict:
    """Tile sizes, grid and the sigma-derived scalars shared by both kernels."""
    n, k, h, w = pred.shape
    block_w = min(64, triton.next_power_of_2(w))
    block_h = min(triton.next_power_of_2(h), max(1, 2048 // block_w))
    n_tiles_h, n_tiles_w = triton.cdiv(h, block_h), triton.cdiv(w, block_w)
    bh, bw = full_h // h, full_w // w
    # Block-mean tiles of at most ~4096 elements: [block_h, sub_h] and [block_w, sub_w].
    sub_h = min(triton.next_power_of_2(bh), max(1, 4096 // block_h))
    sub_w = min(triton.next_power_of_2(bw), max(1, 4096 // block_w))
    tmp = 3.0 * float(sigma)
    tmp_hi = struct.unpack("f", struct.pack("f", tmp))[0]  # tmp rounded to fp32; tmp - tmp_hi is the rest
    return dict(
        grid=(n * k, n_tiles_h, n_tiles_w),
        scalars=(tmp_hi, tmp - tmp_hi, int((2.0 * tmp + 1.0) // 2.0), 2.0 * float(sigma) * float(sigma)),
        constexprs=dict(BH=bh, BW=bw, BLOCK_H=block_h, BLOCK_W=block_w, SUB_H=sub_h, SUB_W=sub_w),
    )


def heatmap_mse_loss_forward(pred: torch.Tensor, keypoints: torch.Tensor, weight: torch.Tensor, sigma: float,
                             full_h: int, full_w: int, method: str) -> torch.Tensor:
    """mean over (N, K, h, w) of (w_eff * (pred - t))^2 as an fp32 scalar; t = the pooled on-the-fly target."""
    _check_kernel_inputs(pred, keypoints, weight, sigma, full_h, full_w, method)
    n, k, h, w = pred.shape
    keypoints = _coordinates(keypoints)
    cfg = _launch_config(pred, sigma, full_h, full_w)
    grid = cfg["grid"]
    partials = launch.new_buffer((grid[0] * grid[1] * grid[2],), pred.device)
    if partials.numel() > 0:
        wrap_triton(_heatmap_mse_fwd_kernel)[grid](
            pred, keypoints, weight, partials,
            h, w, full_h, full_w, k, grid[1], grid[2],
            *pred.stride(), *keypoints.stride(), *weight.stride(),
            *cfg["scalars"],
            METHOD=method, **cfg["constexprs"],
        )
    # Empty pred: 0 / 0 = NaN, as torch's mean of an empty tensor.
    return partials.sum() / (n * k * h * w)


def heatmap_mse_loss_backward(grad_loss: torch.Tensor, pred: torch.Tensor, keypoints: torch.Tensor,
                              weight: torch.Tensor, sigma: float, full_h: int, full_w: int,
                              method: str) -> torch.Tensor:
    """grad_pred (pred's shape and dtype) of `heatmap_mse_loss_forward` scaled by the scalar grad_loss."""
    _check_kernel_inputs(pred, keypoints, weight, sigma, full_h, full_w, method)
    if grad_loss.numel() != 1 or grad_loss.device != pred.device:
        raise ValueError(f"heatmap_mse_loss (triton): grad_loss must be a scalar on {pred.device}, "
                         f"got shape {tuple(grad_loss.shape)} on {grad_loss.device}")
    n, k, h, w = pred.shape
    grad_pred = launch.new_buffer(pred.shape, pred.device, pred.dtype)
    if grad_pred.numel() == 0:
        return grad_pred
    keypoints = _coordinates(keypoints)
    cfg = _launch_config(pred, sigma, full_h, full_w)
    wrap_triton(_heatmap_mse_bwd_kernel)[cfg["grid"]](
        grad_loss, pred, keypoints, weight, grad_pred,
        h, w, full_h, full_w, k, 1.0 / (n * k * h * w),
        *pred.stride(), *keypoints.stride(), *weight.stride(), *grad_pred.stride(),
        *cfg["scalars"],
        METHOD=method, **cfg["constexprs"], BF16_BY_BITS=_bf16_by_bits(pred.dtype),
    )
    return grad_pred
