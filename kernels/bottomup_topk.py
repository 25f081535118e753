"""Triton kernel of bottom-up test time on the maps: flip merge + max-pool NMS + top-k, one launch.

Semantics: `srpose_fast.codecs.bottomup_maps` (the torch reference). Inputs are the network's eval outputs
at the input size, (N, 2K, H, W) = K heatmaps then K tags, and optionally a second set: the outputs on the
mirrored image (MIRROR: the kernel mirrors them and reorders their channels by flip_indices as it reads them)
or maps already in the plain image's frame (the resized maps of a stride-4 head: no mirror, no reorder).

Grid (N * K, S): program (nk, s) owns an output tile of (BH - 2 PAD) x (BW - 2 PAD) pixels of map nk and
loads the BH x BW window around it (the tile and a PAD-pixel halo) once:
1. merged value m = (h + f) * 0.5 (fp32, as the reference's (h + f) / 2), or h without flip; -inf outside
   the map (max-pool's padding);
2. maximum over the 2 PAD + 1 columns around each pixel, then over 2 PAD + 1 rows of those (`tl.gather`
   within the window, whose halo holds every neighbour of the tile's own pixels);
3. NMS: a pixel of the tile is a candidate with value m where m equals that window maximum, else value 0;
4. the merged map is written (adjust and refine read it);
5. the tile's TOPK best candidates as int64 keys, (order-preserving int32 of the value) << 32 | (2^31 - 1 -
   flat index): one integer comparison orders by value, then lowest flat index first (the reference's stable
   sort); -0.0 counts as 0.0. Written to a partial buffer (N * K, S, TOPK).
6. The program that finishes last for map nk (an atomic ticket per map, acquire-release) merges the S * TOPK
   partial keys into the map's TOPK best: round t takes the largest key below round t - 1's, in chunks; it
   writes the value, (x, y) and the tags there: the plain tag and, with flip, the flipped-back one.
Values and tags are exactly the reference's (fp32 loads, one add, one multiply by 0.5; maxima and
comparisons exact). Inputs must be finite.
"""
from __future__ import annotations

import torch
import triton
import triton.language as tl
from torch.library import wrap_triton

from . import launch

INT64_MIN = tl.constexpr(-9223372036854775808)
INT64_MAX = tl.constexpr(9223372036854775807)
BLOCK = (64, 64)  # (rows, columns) of a program's window, its PAD-pixel halo included
MERGE_CHUNK = 1024  # partial keys read at once by the merging program


@triton.jit
def _sortable(value):
    """int32 whose signed order is the float order (-0.0 taken as 0.0)."""
    bits = tl.where(value == 0.0, 0.0, value).to(tl.int32, bitcast=True)
    return tl.where(bits < 0, bits ^ 0x7FFFFFFF, bits)


@triton.jit
def _bottomup_topk_kernel(out_ptr, second_ptr, flip_ptr, merged_ptr, partial_ptr, ticket_ptr,
                          val_ptr, loc_ptr, tag_ptr,
                          K, H, W, n_tiles_x, S,
                          s_n, s_c, s_h, s_w,
                          HAS_SECOND: tl.constexpr, MIRROR: tl.constexpr, PAD: tl.constexpr, TOPK: tl.constexpr,
                          TAGS: tl.constexpr, BH: tl.constexpr, BW: tl.constexpr, CHUNK: tl.constexpr):
    nk = tl.program_id(0).to(tl.int64)
    s = tl.program_id(1)
    n = nk // K
    k = nk % K
    OH: tl.constexpr = BH - 2 * PAD
    OW: tl.constexpr = BW - 2 * PAD
    i = tl.arange(0, BH)[:, None]
    j = tl.arange(0, BW)[None, :]
    rows = (s // n_tiles_x) * OH - PAD + i
    cols = (s % n_tiles_x) * OW - PAD + j
    inside = (rows >= 0) & (rows < H) & (cols >= 0) & (cols < W)

    # 1: merged values of the window (-inf outside the map, as max-pool's padding)
    merged = tl.load(out_ptr + n * s_n + k * s_c + rows * s_h + cols * s_w, mask=inside,
                     other=float("-inf")).to(tl.float32)
    if HAS_SECOND:
        if MIRROR:
            fk = tl.load(flip_ptr + k)
            other = tl.load(second_ptr + n * s_n + fk * s_c + rows * s_h + (W - 1 - cols) * s_w, mask=inside,
                            other=float("-inf"))
        else:
            other = tl.load(second_ptr + n * s_n + k * s_c + rows * s_h + cols * s_w, mask=inside,
                            other=float("-inf"))
        merged = (merged + other.to(tl.float32)) * 0.5
    # 2-3: maxima over the 2 PAD + 1 columns, then rows, around each pixel, within the window (its halo
    # holds the neighbours of the tile's own pixels; the clamped indices only serve halo pixels)
    window_max = merged
    for d in tl.static_range(1, PAD + 1):
        right = tl.gather(merged, tl.minimum(j + d, BW - 1) + i * 0, 1)
        left = tl.gather(merged, tl.maximum(j - d, 0) + i * 0, 1)
        window_max = tl.maximum(window_max, tl.maximum(right, left))
    row_max = window_max
    for d in tl.static_range(1, PAD + 1):
        below = tl.gather(row_max, tl.minimum(i + d, BH - 1) + j * 0, 0)
        above = tl.gather(row_max, tl.maximum(i - d, 0) + j * 0, 0)
        window_max = tl.maximum(window_max, tl.maximum(below, above))

    # 4: the tile's own pixels: the merged map, and NMS
    own = inside & (i >= PAD) & (i < PAD + OH) & (j >= PAD) & (j < PAD + OW)
    flat = rows * W + cols
    tl.store(merged_ptr + nk * H * W + flat, merged, mask=own)
    value = tl.where(merged == window_max, merged, 0.0)

    # 5: the tile's TOPK best keys, largest first (INT64_MIN once the tile has no more pixels)
    key = tl.where(own, (_sortable(value).to(tl.int64) << 32) | (2147483647 - flat).to(tl.int64), INT64_MIN)
    partial = partial_ptr + (nk * S + s) * TOPK
    for t in range(TOPK):
        best = tl.max(tl.max(key, 1), 0)
        tl.store(partial + t, best)
        key = tl.where(key == best, INT64_MIN, key)

    # 6: the last program of this map merges the partials
    # Every thread's partial stores before the ticket (barrier), the ticket a gpu-scope release/acquire, the
    # merge's loads from L2 (.cg): the last program sees every program's partials.
    tl.debug_barrier()
    ticket = tl.atomic_add(ticket_ptr + nk, 1, sem="acq_rel", scope="gpu")
    if ticket == S - 1:
        offs = tl.arange(0, CHUNK)
        total = S * TOPK
        previous = INT64_MAX
        for t in range(TOPK):
            top = INT64_MIN
            for start in range(0, total, CHUNK):
                keys = tl.load(partial_ptr + nk * total + start + offs, mask=start + offs < total, other=INT64_MIN,
                               cache_modifier=".cg")
                top = tl.maximum(top, tl.max(tl.where(keys < previous, keys, INT64_MIN), 0))
            previous = top
            index = 2147483647 - (top & 0xFFFFFFFF).to(tl.int32)
            x = index % W
            y = index // W
            ordered = (top >> 32).to(tl.int32)
            value_bits = tl.where(ordered < 0, ordered ^ 0x7FFFFFFF, ordered)  # the inverse of _sortable
            tl.store(val_ptr + nk * TOPK + t, value_bits.to(tl.float32, bitcast=True))
            tl.store(loc_ptr + (nk * TOPK + t) * 2, x.to(tl.int64))
            tl.store(loc_ptr + (nk * TOPK + t) * 2 + 1, y.to(tl.int64))
            plain_tag = tl.load(out_ptr + n * s_n + (K + k) * s_c + y * s_h + x * s_w).to(tl.float32)
            tl.store(tag_ptr + (nk * TOPK + t) * TAGS, plain_tag)
            if HAS_SECOND:
                if MIRROR:
                    fk = tl.load(flip_ptr + k)
                    flipped_tag = tl.load(second_ptr + n * s_n + (K + fk) * s_c + y * s_h + (W - 1 - x) * s_w)
                else:
                    flipped_tag = tl.load(second_ptr + n * s_n + (K + k) * s_c + y * s_h + x * s_w)
                tl.store(tag_ptr + (nk * TOPK + t) * TAGS + 1, flipped_tag.to(tl.float32))


def bottomup_topk_forward(outputs: torch.Tensor, second: torch.Tensor | None, flip_indices: torch.Tensor | None,
                          mirror: bool, nms_padding: int, top_k: int, block_rows: int = BLOCK[0],
                          block_cols: int = BLOCK[1]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """(merged heatmaps (N, K, H, W) float32, values (N, K, top_k) float32, locations (N, K, top_k, 2) int64
    (x, y), tags (N, K, top_k, L) float32) of outputs (N, 2K, H, W) and the optional second set (same shape):
    the mirrored image's outputs (mirror=True, flip_indices (K,) int) or maps already flipped back."""
    launch.check_kernel_device("bottomup_topk", outputs, _bottomup_topk_kernel)
    n, channels, height, width = outputs.shape
    joints = channels // 2
    if min(block_rows, block_cols) <= 2 * nms_padding:
        raise ValueError(f"bottomup_topk (triton): a {block_rows}x{block_cols} block leaves no pixels inside "
                         f"its {nms_padding}-pixel halo")
    has_second = second is not None
    outputs = outputs.contiguous()
    second = second.contiguous() if has_second else outputs  # same strides as outputs
    mirror = bool(mirror and has_second)
    if mirror and flip_indices is None:
        raise ValueError("bottomup_topk (triton): mirror needs flip_indices")
    device = outputs.device
    tiles_x = triton.cdiv(width, block_cols - 2 * nms_padding)
    tiles = triton.cdiv(height, block_rows - 2 * nms_padding) * tiles_x
    merged = launch.new_buffer((n, joints, height, width), device)
    partial = torch.empty((n * joints, tiles, top_k), dtype=torch.int64, device=device)
    tickets = torch.zeros(n * joints, dtype=torch.int32, device=device)
    values = launch.new_buffer((n, joints, top_k), device)
    locations = torch.full((n, joints, top_k, 2), -1, dtype=torch.int64, device=device)
    tag_dim = 2 if has_second else 1
    tags = launch.new_buffer((n, joints, top_k, tag_dim), device)
    flips = flip_indices.to(device=device, dtype=torch.int32) if mirror else tickets
    if n * joints:
        wrap_triton(_bottomup_topk_kernel)[(n * joints, tiles)](
            outputs, second, flips, merged, partial, tickets, values, locations, tags,
            joints, height, width, tiles_x, tiles, *outputs.stride(),
            HAS_SECOND=has_second, MIRROR=mirror, PAD=nms_padding, TOPK=top_k, TAGS=tag_dim,
            BH=block_rows, BW=block_cols, CHUNK=MERGE_CHUNK, num_warps=16)
    return merged, values, locations, tags
