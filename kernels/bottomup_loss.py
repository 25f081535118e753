"""Triton kernels of the bottom-up masked heatmap loss, with the multi-person targets made on the fly.

Shapes (names used throughout): pred (N, K, H, W) float32, float16 or bfloat16 (any strides; fp32 math);
windows (N, M, K, 6) float32 = (x_lo, x_hi, y_lo, y_hi, cx, cy) per person and joint
(`srpose_fast.codecs.bottomup_targets.joint_windows`: the Gaussian's pixel window [lo, hi) on each axis and
its centre; an empty window for a joint that is not a target); mask (N, H, W) float32. No target tensor
exists.

The target of joint (n, k) at pixel (y, x) is the maximum over people m of
    [y_lo <= y < y_hi] exp(-(y - cy)^2 / 2 sigma^2) * [x_lo <= x < x_hi] exp(-(x - cx)^2 / 2 sigma^2),
the separable form of `bottomup_heatmaps`' exp(-(dx^2 + dy^2) / 2 sigma^2) (equal to a float32 rounding).
A program owns one (n, k) and one [BLOCK_H x BLOCK_W] tile; it skips the people whose window misses the
tile (a window is 6 sigma + 3 pixels wide, a tile of a 512 map holds few of them).

- forward:  partial[program] = sum_tile (pred - t)^2 * mask (fp32); the launcher sums an image's partials
            and divides by K*H*W: the per-image loss (N,). Deterministic: fixed-order partials, no atomics.
- backward: grad_pred = grad[n] * 2 (pred - t) * mask / (K*H*W), fp32 math, stored in pred's dtype.
"""
from __future__ import annotations

import torch
import triton
import triton.language as tl
from torch.library import wrap_triton

from . import launch


@triton.jit
def _axis_profile(start, lo, hi, centre, two_sigma2, SIZE: tl.constexpr):
    """exp(-(p - centre)^2 / 2 sigma^2) inside [lo, hi), 0 outside, for the SIZE pixels start .. start + SIZE - 1."""
    pix = start + tl.arange(0, SIZE)
    d = pix.to(tl.float32) - centre
    return tl.where((pix >= lo) & (pix < hi), tl.exp(-(d * d) / two_sigma2), 0.0)


@triton.jit
def _program_tile(pred_ptr, win_ptr, mask_ptr, H, W, K, M,
                  spn, spk, sph, spw, swn, swm, swk, smn, smh, smw, two_sigma2,
                  BLOCK_H: tl.constexpr, BLOCK_W: tl.constexpr):
    """Program (n*K + k, row tile, column tile) of either kernel: (n, k, rows, cols, in-map flags, pred tile in
    fp32 (0 outside the map), target tile, mask tile (0 outside the map))."""
    nk = tl.program_id(0)
    n = nk // K
    k = nk % K
    row0 = tl.program_id(1) * BLOCK_H
    col0 = tl.program_id(2) * BLOCK_W
    rows = row0 + tl.arange(0, BLOCK_H)
    cols = col0 + tl.arange(0, BLOCK_W)
    inside = (rows < H)[:, None] & (cols < W)[None, :]
    target = tl.zeros([BLOCK_H, BLOCK_W], dtype=tl.float32)
    win = win_ptr + n.to(tl.int64) * swn + k.to(tl.int64) * swk
    for m in range(0, M):
        w = win + m * swm
        x_lo = tl.load(w)
        x_hi = tl.load(w + 1)
        y_lo = tl.load(w + 2)
        y_hi = tl.load(w + 3)
        if (x_lo < col0 + BLOCK_W) & (x_hi > col0) & (y_lo < row0 + BLOCK_H) & (y_hi > row0):
            gx = _axis_profile(col0, x_lo, x_hi, tl.load(w + 4), two_sigma2, BLOCK_W)
            gy = _axis_profile(row0, y_lo, y_hi, tl.load(w + 5), two_sigma2, BLOCK_H)
            target = tl.maximum(target, gy[:, None] * gx[None, :])
    offs = n.to(tl.int64) * spn + k.to(tl.int64) * spk + rows[:, None] * sph + cols[None, :] * spw
    pred = tl.load(pred_ptr + offs, mask=inside, other=0.0).to(tl.float32)
    moffs = n.to(tl.int64) * smn + rows[:, None] * smh + cols[None, :] * smw
    mask = tl.load(mask_ptr + moffs, mask=inside, other=0.0).to(tl.float32)
    return n, k, rows, cols, inside, pred, target, mask


@triton.jit
def _bottomup_heatmap_loss_fwd_kernel(
    pred_ptr, win_ptr, mask_ptr, partial_ptr,
    H, W, K, M, n_tiles_h, n_tiles_w,
    spn, spk, sph, spw, swn, swm, swk, smn, smh, smw,
    two_sigma2,
    BLOCK_H: tl.constexpr, BLOCK_W: tl.constexpr,
):
    _, _, _, _, _, pred, target, mask = _program_tile(
        pred_ptr, win_ptr, mask_ptr, H, W, K, M, spn, spk, sph, spw, swn, swm, swk, smn, smh, smw,
        two_sigma2, BLOCK_H, BLOCK_W)
    diff = pred - target
    partial = tl.sum(tl.sum(diff * diff * mask, axis=1), axis=0)
    tile = (tl.program_id(0).to(tl.int64) * n_tiles_h + tl.program_id(1)) * n_tiles_w + tl.program_id(2)
    tl.store(partial_ptr + tile, partial)


@triton.jit
def _bottomup_heatmap_loss_bwd_kernel(
    grad_loss_ptr, pred_ptr, win_ptr, mask_ptr, grad_ptr,
    H, W, K, M, inv_count,
    spn, spk, sph, spw, swn, swm, swk, smn, smh, smw, sgn, sgk, sgh, sgw,
    two_sigma2,
    BLOCK_H: tl.constexpr, BLOCK_W: tl.constexpr,
):
    n, k, rows, cols, inside, pred, target, mask = _program_tile(
        pred_ptr, win_ptr, mask_ptr, H, W, K, M, spn, spk, sph, spw, swn, swm, swk, smn, smh, smw,
        two_sigma2, BLOCK_H, BLOCK_W)
    scale = tl.load(grad_loss_ptr + n).to(tl.float32) * 2.0 * inv_count
    grad = scale * (pred - target) * mask
    goffs = n.to(tl.int64) * sgn + k.to(tl.int64) * sgk + rows[:, None] * sgh + cols[None, :] * sgw
    tl.store(grad_ptr + goffs, grad.to(grad_ptr.dtype.element_ty), mask=inside)


def _check_kernel_inputs(pred: torch.Tensor, windows: torch.Tensor, mask: torch.Tensor) -> None:
    """What the kernels rely on; `ops.bottomup_loss` validates the public function's arguments."""
    if pred.dtype not in (torch.float32, torch.float16, torch.bfloat16) or pred.dim() != 4:
        raise ValueError(f"bottomup_heatmap_loss (triton): pred must be float32, float16 or bfloat16 (N, K, H, W), "
                         f"got {pred.dtype} {tuple(pred.shape)}")
    n, k, h, w = pred.shape
    if windows.dtype != torch.float32 or windows.dim() != 4 or windows.shape[0] != n \
            or tuple(windows.shape[2:]) != (k, 6) or windows.stride(3) != 1:
        raise ValueError(f"bottomup_heatmap_loss (triton): windows must be float32 (N={n}, M, K={k}, 6) with a "
                         f"unit last stride, "
                         f"got {windows.dtype} {tuple(windows.shape)}")
    if mask.dtype != torch.float32 or tuple(mask.shape) != (n, h, w):
        raise ValueError(f"bottomup_heatmap_loss (triton): mask must be float32 (N, H, W) = {(n, h, w)}, "
                         f"got {mask.dtype} {tuple(mask.shape)}")
    if windows.device != pred.device or mask.device != pred.device:
        raise ValueError("bottomup_heatmap_loss (triton): pred, windows and mask must be on the same device")
    launch.check_kernel_device("bottomup_heatmap_loss", pred, _bottomup_heatmap_loss_fwd_kernel)


def _launch_config(pred: torch.Tensor) -> dict:
    n, k, h, w = pred.shape
    block_w = min(64, triton.next_power_of_2(w))
    block_h = min(triton.next_power_of_2(h), max(1, 2048 // block_w))
    return dict(grid=(n * k, triton.cdiv(h, block_h), triton.cdiv(w, block_w)),
                constexprs=dict(BLOCK_H=block_h, BLOCK_W=block_w))


def bottomup_heatmap_loss_forward(pred: torch.Tensor, windows: torch.Tensor, mask: torch.Tensor,
                                  sigma: float) -> torch.Tensor:
    """Per-image loss (N,) float32: mean over (K, H, W) of (pred - t)^2 * mask, t made from `windows`."""
    _check_kernel_inputs(pred, windows, mask)
    n, k, h, w = pred.shape
    cfg = _launch_config(pred)
    grid = cfg["grid"]
    partials = launch.new_buffer((grid[0] * grid[1] * grid[2],), pred.device)
    if partials.numel() > 0:
        wrap_triton(_bottomup_heatmap_loss_fwd_kernel)[grid](
            pred, windows, mask, partials,
            h, w, k, windows.shape[1], grid[1], grid[2],
            *pred.stride(), windows.stride(0), windows.stride(1), windows.stride(2), *mask.stride(),
            2.0 * float(sigma) * float(sigma),
            **cfg["constexprs"],
        )
    # An image's programs are consecutive: sum them; an empty map gives 0 / 0 = NaN, as torch's mean.
    return partials.reshape(n, -1).sum(dim=1) / (k * h * w)


def bottomup_heatmap_loss_backward(grad_loss: torch.Tensor, pred: torch.Tensor, windows: torch.Tensor,
                                   mask: torch.Tensor, sigma: float) -> torch.Tensor:
    """grad_pred (pred's shape and dtype, contiguous) of the forward, for the per-image gradients grad_loss (N,)."""
    _check_kernel_inputs(pred, windows, mask)
    n, k, h, w = pred.shape
    if tuple(grad_loss.shape) != (n,) or grad_loss.device != pred.device:
        raise ValueError(f"bottomup_heatmap_loss (triton): grad_loss must be ({n},) on {pred.device}, "
                         f"got {tuple(grad_loss.shape)} on {grad_loss.device}")
    grad_pred = launch.new_buffer(pred.shape, pred.device, pred.dtype)
    if grad_pred.numel() == 0:
        return grad_pred
    cfg = _launch_config(pred)
    wrap_triton(_bottomup_heatmap_loss_bwd_kernel)[cfg["grid"]](
        grad_loss.contiguous(), pred, windows, mask, grad_pred,
        h, w, k, windows.shape[1], 1.0 / (k * h * w),
        *pred.stride(), windows.stride(0), windows.stride(1), windows.stride(2), *mask.stride(),
        *grad_pred.stride(),
        2.0 * float(sigma) * float(sigma),
        **cfg["constexprs"],
    )
    return grad_pred
