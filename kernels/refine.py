"""What both Triton decoders share once a map's values can be read: the argmax state and its reduction, the
flip partner of a map, the refinements ("shift", "dark", "dark_udp") with DARK's blur, the transform to
image pixels and the stores. Semantics: `srpose_fast.codecs.decoders`, `flip` and `transforms`.

A decoder hands `refine_and_store` a window reader and its arguments: `read(src, SPEC, oy, ox, BW)` returns
the (flip-merged) float32 map on the (BW, BW) window whose [0, 0] is (oy, ox), zero outside the map. The
decoders differ only there: `kernels.decode` loads the maps, `kernels.sr_head_decode` computes the values
from the SR head's embeddings. Triton passes a jit function as a constexpr argument; `src` is a tuple of the
reader's run-time values and SPEC one of its compile-time settings, which the reader reads by index
(`X: tl.constexpr = SPEC[i]`: unpacked, they would lose their constexpr-ness).

Refinement around the argmax (x0, y0):
- "shift": the 8x8 window at (y0 - 2, x0 - 2); the four neighbours are read from it.
- "dark" / "dark_udp": the (BWL x BWL) window at (y0 - 2 - RB, x0 - 2 - RB), RB = blur radius, zero
  outside the map, is blurred by two fp32 dots (Gv @ window @ Gv^T) into the blurred map on a 16x16 tile
  at (y0 - 2, x0 - 2), of which the 5x5 around the argmax is valid (BWL >= KB + 4).
  The reference rescales the blurred map by (map max / blurred max) before the clamp and the log. The
  factor is a constant added to the log, which cancels in the derivatives, so it only matters through the
  clamp. It is >= 1 (a normalised blur never exceeds the map's maximum). So when every stencil value is at
  least twice the clamp floor (and, for dark_udp, the map's maximum is at most 49, below the 50 ceiling),
  the clamp cannot act and factor 1 is used. Otherwise the exact blurred maximum is computed: a loop over
  the whole map in 16x16 output tiles (windows of BWG x BWG), as the reference does. So the rescale is
  exact, and the slow loop runs only for maps that need it.
Then the transform to image pixels (center/scale in units of PIXEL_STD; UDP divides by W - 1, H - 1).
"""
from __future__ import annotations

import torch
import triton
import triton.language as tl

from srpose_fast.codecs.conventions import PIXEL_STD
from srpose_fast.codecs.decoders import gaussian_taps

from . import launch

METHOD_IDS = {"argmax": 0, "shift": 1, "dark": 2, "dark_udp": 3}
TILE = 16  # side of the blurred tiles (tl.dot needs >= 16)
# The refinement reduces a map's partials in one step of MAX_SPLITS lanes: a constant, so the compiled
# refinement does not depend on how many programs the argmax pass split each map into (which depends on the
# batch size). (A loop over steps instead made ptxas cap the heatmap-free refinement at 128 registers and
# spill.)
_SPLIT_LANES = tl.constexpr(launch.MAX_SPLITS)
NO_INDEX = tl.constexpr(2147483647)  # "no value seen yet" in the int32 argmax indices
_PIXEL_STD = tl.constexpr(PIXEL_STD)


@triton.jit
def argmax_update(best, best_i, nan_seen, v, flat, mask):
    """One tile into the per-lane running argmax: strictly greater wins (or the lane's first value)."""
    nan_seen = tl.where(mask & (v != v), 1, nan_seen)
    take = mask & (v == v) & ((v > best) | (best_i == NO_INDEX))
    best = tl.where(take, v, best)
    best_i = tl.where(take, flat, best_i)
    return best, best_i, nan_seen


@triton.jit
def argmax_reduce(best, best_i, nan_seen):
    """(max, lowest flat index of the max, any NaN) of per-lane state of any shape; index 0 if none."""
    m = tl.max(best)
    idx = tl.min(tl.where(best == m, best_i, NO_INDEX))
    is_nan = tl.max(nan_seen) > 0
    idx = tl.where(is_nan | (idx == NO_INDEX), 0, idx)
    return m, idx, is_nan


@triton.jit
def store_partial(part_val_ptr, part_idx_ptr, nk, split, n_splits, best, best_i, nan_seen):
    """An argmax program's (max, lowest flat index) into the partials; a NaN value marks a split that saw NaN."""
    m, idx, is_nan = argmax_reduce(best, best_i, nan_seen)
    tl.store(part_val_ptr + nk * n_splits + split, tl.where(is_nan, float("nan"), m))
    tl.store(part_idx_ptr + nk * n_splits + split, idx)


@triton.jit
def reduce_partials(part_val_ptr, part_idx_ptr, nk, n_splits):
    """(max, lowest flat index among equal maxima, any NaN) of map nk from the argmax pass's partials
    (n_splits <= MAX_SPLITS of them; a NaN value marks a split that saw NaN)."""
    offs = tl.arange(0, _SPLIT_LANES)
    mask = offs < n_splits
    v = tl.load(part_val_ptr + nk * n_splits + offs, mask=mask, other=float("-inf"))
    i = tl.load(part_idx_ptr + nk * n_splits + offs, mask=mask, other=NO_INDEX)
    return argmax_reduce(tl.where(v == v, v, float("-inf")), i, tl.where(v != v, 1, 0))


@triton.jit
def flip_partner(fidx_ptr, nk, K: tl.constexpr, FLIP: tl.constexpr):
    """(n as int64, joint k, flip partner fk) of map nk = (n, k): with flip the plain map k is merged with the
    flipped image's map flip_indices[k] of the same sample; fk = k without flip."""
    k = nk % K
    fk = k
    if FLIP:
        fk = tl.load(fidx_ptr + k)
    return (nk // K).to(tl.int64), k, fk


@triton.jit
def flipped_columns(cols, W, SHIFT: tl.constexpr):
    """The flipped map's column merged into each plain column (`codecs.flip.flip_merge`): mirrored, and with
    the shift one pixel right, column 0 keeping its own (mirrored) value."""
    if SHIFT:
        return W - tl.maximum(cols, 1)
    else:
        return W - 1 - cols


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
    at (oy + a, ox + b) wherever a, b <= BW - KB. Vertical pass first, as the reference. fp32 operands stay
    fp32 ("ieee", not tf32).
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
def _blurred_max(read, src, SPEC: tl.constexpr, g_ptr, H, W, KB: tl.constexpr, TO: tl.constexpr,
                 BWG: tl.constexpr):
    """The maximum over the whole map of its blurred values (the reference's rescale divisor)."""
    RB: tl.constexpr = KB // 2
    a = tl.arange(0, TO)[:, None]
    b = tl.arange(0, TO)[None, :]
    blur_max = tl.full([], float("-inf"), tl.float32)
    for ty in range(0, H, TO):
        for tx in range(0, W, TO):
            tile = _blur_tile(read(src, SPEC, ty - RB, tx - RB, BWG), g_ptr, KB, TO, BWG)
            tile = tl.where((ty + a < H) & (tx + b < W), tile, float("-inf"))
            blur_max = tl.maximum(blur_max, tl.max(tile))
    return blur_max


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
def refine_and_store(read, src, SPEC: tl.constexpr,
                     part_val_ptr, part_idx_ptr, g_ptr, center_ptr, scale_ptr, kp_ptr, score_ptr, n, nk, n_splits, H, W,
                     METHOD: tl.constexpr, KB: tl.constexpr, HAS_TRANSFORM: tl.constexpr,
                     BWL: tl.constexpr, BWG: tl.constexpr, TO: tl.constexpr):
    """Map nk's argmax from the partials, its refinement from windows read by `read(src, ...)`, the
    transform of sample n's keypoint, and the stores: score and keypoint (NaN map: NaN; max <= 0: score 0)."""
    UDP: tl.constexpr = METHOD == 3
    RB: tl.constexpr = KB // 2
    m, idx, is_nan = reduce_partials(part_val_ptr, part_idx_ptr, nk, n_splits)
    x0 = idx % W
    y0 = idx // W
    valid = (m > 0) & ~is_nan
    ox = 0.0
    oy = 0.0
    if METHOD == 1:
        ox, oy = _shift_offset(read(src, SPEC, y0 - 2, x0 - 2, 8), x0, y0, H, W, valid)
    if METHOD >= 2:
        blur = _blur_tile(read(src, SPEC, y0 - 2 - RB, x0 - 2 - RB, BWL), g_ptr, KB, TO, BWL)
        ok = valid
        if not UDP:
            ok = ok & (x0 > 1) & (x0 < W - 2) & (y0 > 1) & (y0 < H - 2)
        factor = tl.full([], 1.0, tl.float32)
        if ok & _needs_blurred_max(blur, m, x0, y0, H, W, TO, UDP):
            blur_max = _blurred_max(read, src, SPEC, g_ptr, H, W, KB, TO, BWG)
            factor = tl.where(blur_max != 0, m / tl.where(blur_max != 0, blur_max, 1.0), 1.0)
        ox, oy = _dark_offset(blur, factor, x0, y0, H, W, ok, TO, UDP)

    kx = x0.to(tl.float32) + ox
    ky = y0.to(tl.float32) + oy
    if HAS_TRANSFORM:
        crop_x = tl.load(scale_ptr + 2 * n) * _PIXEL_STD
        crop_y = tl.load(scale_ptr + 2 * n + 1) * _PIXEL_STD
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


# --- the launchers' side ---------------------------------------------------------------------------

_TAPS: dict[tuple[int, torch.device], torch.Tensor] = {}


def blur_taps(blur_kernel: int, device: torch.device) -> torch.Tensor:
    """`codecs.decoders.gaussian_taps` on `device`, made once per (device, size): no launches per call.
    While torch.compile traces (fake tensors) a fresh one, which the trace holds."""
    if torch.compiler.is_compiling() or torch._guards.detect_fake_mode() is not None:
        return gaussian_taps(blur_kernel, device)
    key = (blur_kernel, device)
    if key not in _TAPS:
        _TAPS[key] = gaussian_taps(blur_kernel, device)
    return _TAPS[key]


def decode_outputs(n: int, k: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """The (N, K, 2) keypoints and (N, K) scores buffers, float32."""
    return launch.new_buffer((n, k, 2), device), launch.new_buffer((n, k), device)


def flip_inputs(plain: torch.Tensor, flipped: torch.Tensor | None, flip_indices: torch.Tensor | None,
                unused: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(the flipped source, the flip indices as int32 on its device) for both passes; without flip the plain
    source (its strides only) and `unused` (never read)."""
    if flipped is None:
        return plain, unused
    return flipped, flip_indices.to(device=plain.device, dtype=torch.int32).contiguous()


def refine_config(method: str, blur_kernel: int, center: torch.Tensor | None, scale: torch.Tensor | None,
                  device: torch.device, unused: torch.Tensor):
    """The refinement's inputs besides the maps: taps ("dark"/"dark_udp"; else `unused`, never read),
    center and scale as float32 (N, 2) (`unused` without a transform), and its constexprs."""
    dark = method in ("dark", "dark_udp")
    taps = blur_taps(blur_kernel, device) if dark else unused
    if center is None:
        center_t = scale_t = unused
    else:
        center_t = center.to(device=device, dtype=torch.float32).contiguous()
        scale_t = scale.to(device=device, dtype=torch.float32).contiguous()
    # KB, BWL and BWG are read by DARK only: fixed otherwise, so no blur kernel compiles another argmax/shift binary
    kb = blur_kernel if dark else 1
    bwl, bwg = window_sizes(blur_kernel) if dark else (TILE, TILE)
    return taps, center_t, scale_t, dict(METHOD=METHOD_IDS[method], KB=kb, HAS_TRANSFORM=center is not None,
                                         BWL=bwl, BWG=bwg, TO=TILE)


def window_sizes(blur_kernel: int) -> tuple[int, int]:
    """(BWL, BWG): the local window (5x5 valid blurred values) and the whole-map tiles' window."""
    return (max(TILE, triton.next_power_of_2(blur_kernel + 4)),
            max(TILE, triton.next_power_of_2(TILE + blur_kernel - 1)))
