"""Triton kernels of test-time decoding: heatmaps (N, K, H, W) -> keypoints (N, K, 2), scores (N, K).

Two launches (semantics: `srpose_fast.codecs.decoders`):

1. Argmax, `_decode_argmax_kernel`, grid (N*K, S): program (nk, s) reads the flat tiles s, s + S, ...
   of BLOCK values of map nk. Each lane keeps its running maximum and that maximum's flat index (a
   strictly greater value replaces it, so a lane keeps its lowest index); NaN is tracked apart. The
   lanes reduce to (max, lowest flat index holding it, any NaN), written to a partial buffer. With
   flip the merged value (h[k] + f[flip_indices[k]] mirrored, shifted) / 2 is formed on the fly, in
   the reference's fp32 arithmetic, and never stored: the argmax, the score and "shift" are bitwise
   those of the reference. The pass streams the maps, so it is kept apart from the refinement: with
   the DARK refinement in the same kernel, its registers (about 200 a thread) left one or two
   programs on an SM to stream, where the argmax alone takes about 50 (tests/kernels/hopper_compile.py).
   S splits each map so that small batches still fill the GPU.
The rest runs in `_decode_refine_kernel`, grid (N*K,), which first reduces the S partials (max; the
lowest index among equal maxima; NaN if any) and then:

2. Refinement around the argmax (x0, y0), from a small window of the merged map:
   - "shift": the 8x8 window at (y0 - 2, x0 - 2); the four neighbours are read from it.
   - "dark" / "dark_udp": the (BWL x BWL) window at (y0 - 2 - RB, x0 - 2 - RB), RB = blur radius,
     zero outside the map, is blurred by two fp32 dots (Gv @ window @ Gv^T) into the blurred map
     on a 16x16 tile at (y0 - 2, x0 - 2), of which the 5x5 around the argmax is valid (BWL >= KB + 4).
     The reference rescales the blurred map by (map max / blurred max) before the clamp and the
     log. The factor is a constant added to the log, which cancels in the derivatives, so it only
     matters through the clamp. It is >= 1 (a normalised blur never exceeds the map's maximum).
     So when every stencil value is at least twice the clamp floor (and, for dark_udp, the map's
     maximum is at most 49, below the 50 ceiling), the clamp cannot act and the kernel uses
     factor 1. Otherwise it computes the exact blurred maximum: a loop over the whole map in
     16x16 output tiles (windows of BWG x BWG), as the reference does. So the rescale is exact,
     and the slow loop runs only for maps that need it.
3. Transform to image pixels (center/scale, x200; UDP divides by W - 1, H - 1) and the stores.

Where the kernel may differ from the reference: only in the last bits of the blurred map and of
the log (other summation order, Triton's log), amplified by DARK's Newton step where its Hessian is
ill-conditioned. Argmax, scores and "shift" are exact. (A map holding +-inf: the reference's rescale
is inf / inf = NaN, so DARK gives NaN; the kernel's blur by dots multiplies inf by zero taps, also
NaN, and its clamp propagates NaN as torch's does; beyond that, inf maps are not a supported input.)

The jit helpers below are also used by `kernels/sr_head_decode.py`, which computes its heatmap values
from the SR head's embeddings instead of loading them.
"""
from __future__ import annotations

import torch
import triton
import triton.language as tl
from torch.library import wrap_triton

from . import launch

METHOD_IDS = {"argmax": 0, "shift": 1, "dark": 2, "dark_udp": 3}
TILE = 16  # side of the blurred tiles (tl.dot needs >= 16)


# --- helpers shared with kernels/sr_head_decode.py -----------------------------------------------

@triton.jit
def _argmax_update(best, best_i, nan_seen, v, flat, mask):
    """One tile into the per-lane running argmax: strictly greater wins (or the lane's first value)."""
    nan_seen = tl.where(mask & (v != v), 1, nan_seen)
    take = mask & (v == v) & ((v > best) | (best_i == 2147483647))
    best = tl.where(take, v, best)
    best_i = tl.where(take, flat, best_i)
    return best, best_i, nan_seen


@triton.jit
def _argmax_reduce(best, best_i, nan_seen):
    """(max, lowest flat index of the max, any NaN) of 1-D per-lane state; index 0 if none."""
    m = tl.max(best, 0)
    idx = tl.min(tl.where(best == m, best_i, 2147483647), 0)
    is_nan = tl.max(nan_seen, 0) > 0
    idx = tl.where(is_nan | (idx == 2147483647), 0, idx)
    return m, idx, is_nan


@triton.jit
def _stencil_masks(x0, y0, H, W, TO: tl.constexpr):
    """Row masks (TO, 1) for y0-2..y0+2 and column masks (1, TO) for x0-2..x0+2 of a tile whose [2, 2]
    is (y0, x0), each offset clamped into the map (= edge padding; a no-op wherever dark refines).
    A value of the tile is then a masked sum: with one selected element the sum is exact."""
    rows = tl.arange(0, TO)[:, None] + y0 - 2
    cols = tl.arange(0, TO)[None, :] + x0 - 2
    r_m2 = rows == tl.maximum(y0 - 2, 0)
    r_m1 = rows == tl.maximum(y0 - 1, 0)
    r_0 = rows == y0
    r_p1 = rows == tl.minimum(y0 + 1, H - 1)
    r_p2 = rows == tl.minimum(y0 + 2, H - 1)
    c_m2 = cols == tl.maximum(x0 - 2, 0)
    c_m1 = cols == tl.maximum(x0 - 1, 0)
    c_0 = cols == x0
    c_p1 = cols == tl.minimum(x0 + 1, W - 1)
    c_p2 = cols == tl.minimum(x0 + 2, W - 1)
    return r_m2, r_m1, r_0, r_p1, r_p2, c_m2, c_m1, c_0, c_p1, c_p2


@triton.jit
def _shift_offset(win, x0, y0, H, W, valid):
    """mmpose 0.x quarter-pixel shift from the 8x8 merged window whose [2, 2] is (y0, x0)."""
    ok = valid & (x0 > 1) & (x0 < W - 1) & (y0 > 1) & (y0 < H - 1)
    _, r_m1, r_0, r_p1, _, _, c_m1, c_0, c_p1, _ = _stencil_masks(x0, y0, H, W, 8)
    gx = tl.sum(tl.where(r_0 & c_p1, win, 0.0) - tl.where(r_0 & c_m1, win, 0.0))
    gy = tl.sum(tl.where(r_p1 & c_0, win, 0.0) - tl.where(r_m1 & c_0, win, 0.0))
    sx = tl.where(gx > 0, 0.25, tl.where(gx < 0, -0.25, 0.0))
    sy = tl.where(gy > 0, 0.25, tl.where(gy < 0, -0.25, 0.0))
    return tl.where(ok, sx, 0.0), tl.where(ok, sy, 0.0)


@triton.jit
def _blur_tile(win, g_ptr, KB: tl.constexpr, TO: tl.constexpr, BW: tl.constexpr):
    """Gaussian blur of a (BW, BW) window: out[a, b] = sum g[r - a] g[c - b] win[r, c], (TO, TO).

    With the window at (oy - RB, ox - RB) and zero outside the map, out[a, b] is the zero-padded blur
    at (oy + a, ox + b) wherever a, b <= BW - KB. Vertical pass first, as the reference.
    """
    a = tl.arange(0, TO)[:, None]
    r = tl.arange(0, BW)[None, :]
    d = r - a
    gv = tl.load(g_ptr + tl.where((d >= 0) & (d < KB), d, 0), mask=(d >= 0) & (d < KB), other=0.0)
    c = tl.arange(0, BW)[:, None]
    b = tl.arange(0, TO)[None, :]
    e = c - b
    gh = tl.load(g_ptr + tl.where((e >= 0) & (e < KB), e, 0), mask=(e >= 0) & (e < KB), other=0.0)
    vertical = tl.dot(gv, win, input_precision="ieee")
    return tl.dot(vertical, gh, input_precision="ieee")


@triton.jit
def _dark_ok(x0, y0, H, W, valid, UDP: tl.constexpr):
    if UDP:
        return valid
    else:
        return valid & (x0 > 1) & (x0 < W - 2) & (y0 > 1) & (y0 < H - 2)


@triton.jit
def _needs_blurred_max(blur, m, x0, y0, H, W, TO: tl.constexpr, UDP: tl.constexpr):
    """Whether the clamp could act at a stencil point (the 13 points |dx| + |dy| <= 2 in the map),
    so that the rescale factor must be known: blurred value < 2x the floor, or (UDP) max > 49."""
    dy = tl.arange(0, TO)[:, None] - 2
    dx = tl.arange(0, TO)[None, :] - 2
    near = ((tl.abs(dy) + tl.abs(dx)) <= 2) & (y0 + dy >= 0) & (y0 + dy < H) & (x0 + dx >= 0) & (x0 + dx < W)
    if UDP:
        low = near & ~(blur >= 2e-3)
    else:
        low = near & ~(blur >= 2e-10)
    need = tl.max(low.to(tl.int32)) > 0
    if UDP:
        need = need | (m > 49.0)
    return need


@triton.jit
def _dark_offset(blur, factor, x0, y0, H, W, ok, TO: tl.constexpr, UDP: tl.constexpr):
    """The DARK (or DARK-UDP) Newton step -(H^-1 g) from the blurred tile (blur[2, 2] at (y0, x0)).

    Each derivative is one masked sum over the tile of L = log(clamp(blur * factor)): the reference's
    differences of L values, summed in another order (differences of ~1 ulp of L)."""
    r_m2, r_m1, r_0, r_p1, r_p2, c_m2, c_m1, c_0, c_p1, c_p2 = _stencil_masks(x0, y0, H, W, TO)
    if UDP:
        logs = tl.log(tl.minimum(tl.maximum(blur * factor, 1e-3, propagate_nan=tl.PropagateNan.ALL), 50.0,
                                       propagate_nan=tl.PropagateNan.ALL))
        gx = 0.5 * tl.sum(tl.where(r_0 & c_p1, logs, 0.0) - tl.where(r_0 & c_m1, logs, 0.0))
        gy = 0.5 * tl.sum(tl.where(r_p1 & c_0, logs, 0.0) - tl.where(r_m1 & c_0, logs, 0.0))
        dxx = tl.sum(tl.where(r_0 & c_p1, logs, 0.0) - 2 * tl.where(r_0 & c_0, logs, 0.0)
                     + tl.where(r_0 & c_m1, logs, 0.0)) + 1.1920928955078125e-07  # + float32 machine eps
        dyy = tl.sum(tl.where(r_p1 & c_0, logs, 0.0) - 2 * tl.where(r_0 & c_0, logs, 0.0)
                     + tl.where(r_m1 & c_0, logs, 0.0)) + 1.1920928955078125e-07
        dxy = 0.5 * tl.sum(tl.where(r_p1 & c_p1, logs, 0.0) - tl.where(r_0 & c_p1, logs, 0.0)
                           - tl.where(r_p1 & c_0, logs, 0.0) + 2 * tl.where(r_0 & c_0, logs, 0.0)
                           - tl.where(r_0 & c_m1, logs, 0.0) - tl.where(r_m1 & c_0, logs, 0.0)
                           + tl.where(r_m1 & c_m1, logs, 0.0))
    else:
        logs = tl.log(tl.maximum(blur * factor, 1e-10, propagate_nan=tl.PropagateNan.ALL))
        gx = 0.5 * tl.sum(tl.where(r_0 & c_p1, logs, 0.0) - tl.where(r_0 & c_m1, logs, 0.0))
        gy = 0.5 * tl.sum(tl.where(r_p1 & c_0, logs, 0.0) - tl.where(r_m1 & c_0, logs, 0.0))
        dxx = 0.25 * tl.sum(tl.where(r_0 & c_p2, logs, 0.0) - 2 * tl.where(r_0 & c_0, logs, 0.0)
                            + tl.where(r_0 & c_m2, logs, 0.0))
        dyy = 0.25 * tl.sum(tl.where(r_p2 & c_0, logs, 0.0) - 2 * tl.where(r_0 & c_0, logs, 0.0)
                            + tl.where(r_m2 & c_0, logs, 0.0))
        dxy = 0.25 * tl.sum(tl.where(r_p1 & c_p1, logs, 0.0) - tl.where(r_m1 & c_p1, logs, 0.0)
                            - tl.where(r_p1 & c_m1, logs, 0.0) + tl.where(r_m1 & c_m1, logs, 0.0))
    det = dxx * dyy - dxy * dxy
    ok = ok & (det != 0)
    det = tl.where(ok, det, 1.0)
    ox = -(dyy * gx - dxy * gy) / det
    oy = -(dxx * gy - dxy * gx) / det
    return tl.where(ok, ox, 0.0), tl.where(ok, oy, 0.0)


@triton.jit
def _finish(kp_ptr, score_ptr, center_ptr, scale_ptr, n, nk, m, is_nan, x0, y0, ox, oy, H, W,
            HAS_TRANSFORM: tl.constexpr, UDP: tl.constexpr):
    """Score and keypoint (NaN map: NaN; max <= 0: score 0), transform to the image, store."""
    kx = x0.to(tl.float32) + ox
    ky = y0.to(tl.float32) + oy
    if HAS_TRANSFORM:
        crop_x = tl.load(scale_ptr + 2 * n) * 200.0
        crop_y = tl.load(scale_ptr + 2 * n + 1) * 200.0
        if UDP:
            step_x = crop_x / ((W - 1) * 1.0)
            step_y = crop_y / ((H - 1) * 1.0)
        else:
            step_x = crop_x / (W * 1.0)
            step_y = crop_y / (H * 1.0)
        kx = kx * step_x + (tl.load(center_ptr + 2 * n) - crop_x * 0.5)
        ky = ky * step_y + (tl.load(center_ptr + 2 * n + 1) - crop_y * 0.5)
    nan = float("nan")
    tl.store(kp_ptr + 2 * nk, tl.where(is_nan, nan, kx))
    tl.store(kp_ptr + 2 * nk + 1, tl.where(is_nan, nan, ky))
    tl.store(score_ptr + nk, tl.where(is_nan, nan, tl.where(m > 0, m, 0.0)))


@triton.jit
def reduce_partials(part_val_ptr, part_idx_ptr, nk, n_splits, BLOCK_S: tl.constexpr):
    """(max, lowest flat index among equal maxima, any NaN) of map nk from the argmax pass's partials
    (a NaN value marks a split that saw NaN)."""
    offs = tl.arange(0, BLOCK_S)
    mask = offs < n_splits
    vals = tl.load(part_val_ptr + nk * n_splits + offs, mask=mask, other=float("-inf"))
    idxs = tl.load(part_idx_ptr + nk * n_splits + offs, mask=mask, other=2147483647)
    return _argmax_reduce(tl.where(vals == vals, vals, float("-inf")), idxs, tl.where(vals != vals, 1, 0))


# --- the decode kernels ---------------------------------------------------------------------------

@triton.jit
def _merged_at(h_base, f_base, rows, cols, inside, W, shh, shw, sfh, sfw,
               FLIP: tl.constexpr, SHIFT: tl.constexpr):
    """The (flip-merged) map at (rows, cols), float32, 0 where not inside. Same arithmetic as
    `codecs.flip.flip_merge`: (h + f) * 0.5 with f read at the mirrored, shifted column."""
    v = tl.load(h_base + rows * shh + cols * shw, mask=inside, other=0.0).to(tl.float32)
    if FLIP:
        if SHIFT:
            fcols = W - tl.maximum(cols, 1)
        else:
            fcols = W - 1 - cols
        f = tl.load(f_base + rows * sfh + fcols * sfw, mask=inside, other=0.0).to(tl.float32)
        v = (v + f) * 0.5
    return v


@triton.jit
def _merged_window(h_base, f_base, oy, ox, H, W, shh, shw, sfh, sfw,
                   BW: tl.constexpr, FLIP: tl.constexpr, SHIFT: tl.constexpr):
    rows = oy + tl.arange(0, BW)[:, None]
    cols = ox + tl.arange(0, BW)[None, :]
    inside = (rows >= 0) & (rows < H) & (cols >= 0) & (cols < W)
    return _merged_at(h_base, f_base, rows, cols, inside, W, shh, shw, sfh, sfw, FLIP, SHIFT)


@triton.jit
def _map_bases(h_ptr, f_ptr, fidx_ptr, nk, shn, shk, sfn, sfk, K: tl.constexpr, FLIP: tl.constexpr):
    """Pointers to map nk = (n, k) and to its flip partner (flipped map flip_indices[k] of sample n)."""
    n = nk // K
    k = nk % K
    h_base = h_ptr + n.to(tl.int64) * shn + k.to(tl.int64) * shk
    f_base = h_base
    if FLIP:
        fk = tl.load(fidx_ptr + k)
        f_base = f_ptr + n.to(tl.int64) * sfn + fk.to(tl.int64) * sfk
    return h_base, f_base


@triton.jit
def _decode_argmax_kernel(
    h_ptr, f_ptr, fidx_ptr, part_val_ptr, part_idx_ptr,
    H, W, n_splits,
    shn, shk, shh, shw,
    sfn, sfk, sfh, sfw,
    K: tl.constexpr, FLIP: tl.constexpr, SHIFT: tl.constexpr, BLOCK: tl.constexpr,
):
    nk = tl.program_id(0)
    split = tl.program_id(1)
    h_base, f_base = _map_bases(h_ptr, f_ptr, fidx_ptr, nk, shn, shk, sfn, sfk, K, FLIP)
    best = tl.full([BLOCK], float("-inf"), tl.float32)
    best_i = tl.full([BLOCK], 2147483647, tl.int32)
    nan_seen = tl.zeros([BLOCK], tl.int32)
    for start in range(split * BLOCK, H * W, n_splits * BLOCK):
        flat = start + tl.arange(0, BLOCK)
        mask = flat < H * W
        v = _merged_at(h_base, f_base, flat // W, flat % W, mask, W, shh, shw, sfh, sfw, FLIP, SHIFT)
        best, best_i, nan_seen = _argmax_update(best, best_i, nan_seen, v, flat, mask)
    m, idx, is_nan = _argmax_reduce(best, best_i, nan_seen)
    tl.store(part_val_ptr + nk * n_splits + split, tl.where(is_nan, float("nan"), m))
    tl.store(part_idx_ptr + nk * n_splits + split, idx)


@triton.jit
def _decode_refine_kernel(
    h_ptr, f_ptr, fidx_ptr, part_val_ptr, part_idx_ptr, g_ptr, center_ptr, scale_ptr, kp_ptr, score_ptr,
    H, W, n_splits,
    shn, shk, shh, shw,
    sfn, sfk, sfh, sfw,
    K: tl.constexpr, METHOD: tl.constexpr, KB: tl.constexpr, FLIP: tl.constexpr, SHIFT: tl.constexpr,
    HAS_TRANSFORM: tl.constexpr, BLOCK_S: tl.constexpr, BWL: tl.constexpr, BWG: tl.constexpr, TO: tl.constexpr,
):
    UDP: tl.constexpr = METHOD == 3
    RB: tl.constexpr = KB // 2
    nk = tl.program_id(0)
    n = nk // K
    h_base, f_base = _map_bases(h_ptr, f_ptr, fidx_ptr, nk, shn, shk, sfn, sfk, K, FLIP)
    m, idx, is_nan = reduce_partials(part_val_ptr, part_idx_ptr, nk, n_splits, BLOCK_S)
    x0 = idx % W
    y0 = idx // W
    valid = (m > 0) & ~is_nan

    # refinement from a window of the merged map around (x0, y0)
    ox = 0.0
    oy = 0.0
    if METHOD == 1:
        win = _merged_window(h_base, f_base, y0 - 2, x0 - 2, H, W, shh, shw, sfh, sfw, 8, FLIP, SHIFT)
        ox, oy = _shift_offset(win, x0, y0, H, W, valid)
    if METHOD >= 2:
        win = _merged_window(h_base, f_base, y0 - 2 - RB, x0 - 2 - RB, H, W, shh, shw, sfh, sfw, BWL, FLIP, SHIFT)
        blur = _blur_tile(win, g_ptr, KB, TO, BWL)
        ok = _dark_ok(x0, y0, H, W, valid, UDP)
        factor = tl.full([], 1.0, tl.float32)
        if ok & _needs_blurred_max(blur, m, x0, y0, H, W, TO, UDP):
            # the exact rescale factor (map max / blurred max) over the whole map
            a = tl.arange(0, TO)[:, None]
            b = tl.arange(0, TO)[None, :]
            blur_max = tl.full([], float("-inf"), tl.float32)
            for ty in range(0, H, TO):
                for tx in range(0, W, TO):
                    gwin = _merged_window(h_base, f_base, ty - RB, tx - RB, H, W, shh, shw, sfh, sfw,
                                          BWG, FLIP, SHIFT)
                    tile = _blur_tile(gwin, g_ptr, KB, TO, BWG)
                    tile = tl.where((ty + a < H) & (tx + b < W), tile, float("-inf"))
                    blur_max = tl.maximum(blur_max, tl.max(tile))
            factor = tl.where(blur_max != 0, m / tl.where(blur_max != 0, blur_max, 1.0), 1.0)
        ox, oy = _dark_offset(blur, factor, x0, y0, H, W, ok, TO, UDP)

    _finish(kp_ptr, score_ptr, center_ptr, scale_ptr, n, nk, m, is_nan, x0, y0, ox, oy, H, W,
            HAS_TRANSFORM, UDP)


# --- launcher -------------------------------------------------------------------------------------

def gaussian_taps(blur_kernel: int, device: torch.device) -> torch.Tensor:
    """The normalised 1-D Gaussian of `codecs.decoders.gaussian_blur`, computed the same way (float32)."""
    radius = (blur_kernel - 1) // 2
    sigma = 0.3 * ((blur_kernel - 1) * 0.5 - 1) + 0.8
    offsets = torch.arange(blur_kernel, device=device, dtype=torch.float32) - radius
    g = torch.exp(-(offsets * offsets) / (2.0 * sigma * sigma))
    return g / g.sum()


def window_sizes(blur_kernel: int) -> tuple[int, int]:
    """(BWL, BWG): the local window (5x5 valid blurred values) and the whole-map tiles' window."""
    return (max(TILE, triton.next_power_of_2(blur_kernel + 4)),
            max(TILE, triton.next_power_of_2(TILE + blur_kernel - 1)))


def prepare_transform(center: torch.Tensor | None, scale: torch.Tensor | None, n: int, device: torch.device):
    """center, scale as contiguous float32 (N, 2) on `device` (dummies without a transform)."""
    if center is None:
        dummy = torch.zeros(1, 2, dtype=torch.float32, device=device)
        return dummy, dummy
    return (center.to(device=device, dtype=torch.float32).contiguous(),
            scale.to(device=device, dtype=torch.float32).contiguous())


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
    keypoints = launch.new_buffer((N, K, 2), device)
    scores = launch.new_buffer((N, K), device)
    if N * K == 0:
        return keypoints, scores
    flip = flipped is not None
    fmaps = flipped if flip else heatmaps
    fidx = (flip_indices.to(device=device, dtype=torch.int32).contiguous() if flip
            else torch.zeros(1, dtype=torch.int32, device=device))
    block = min(1024, max(16, triton.next_power_of_2(H * W)))
    n_splits, part_val, part_idx = launch.argmax_partials(N * K, triton.cdiv(H * W, block), device)
    wrap_triton(_decode_argmax_kernel)[(N * K, n_splits)](
        heatmaps, fmaps, fidx, part_val, part_idx,
        H, W, n_splits,
        *heatmaps.stride(), *fmaps.stride(),
        K=K, FLIP=flip, SHIFT=bool(flip_shift), BLOCK=block,
    )
    center_t, scale_t = prepare_transform(center, scale, N, device)
    bwl, bwg = window_sizes(blur_kernel)
    wrap_triton(_decode_refine_kernel)[(N * K,)](
        heatmaps, fmaps, fidx, part_val, part_idx, gaussian_taps(blur_kernel, device), center_t, scale_t,
        keypoints, scores,
        H, W, n_splits,
        *heatmaps.stride(), *fmaps.stride(),
        K=K, METHOD=METHOD_IDS[method], KB=blur_kernel, FLIP=flip, SHIFT=bool(flip_shift),
        HAS_TRANSFORM=center is not None, BLOCK_S=triton.next_power_of_2(n_splits), BWL=bwl, BWG=bwg, TO=TILE,
    )
    return keypoints, scores
