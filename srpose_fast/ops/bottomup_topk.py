"""Bottom-up test time on the maps: flip merge, project2image, max-pool NMS and top-k per joint.

`bottomup_topk` returns the merged heatmaps (N, K, H, W) at the network input's size and, for each joint
map, its `top_k` NMS survivors: values (N, K, k) descending, locations (N, K, k, 2) int64 (x, y) and the
tags there (N, K, k, L), L = 2 with flip (the plain tag, then the flipped-back one), else 1. The semantics
are `codecs.bottomup_maps` (the torch reference, backend "torch"), which follows the original.

backend="triton" runs the registered op `torch.ops.srpose_fast.bottomup_topk_triton` (`ops.registry`): one
kernel (`srpose_fast.kernels.bottomup_topk`) that reads each map once, merges the flip on the fly, pools,
selects and gathers the tags. When the outputs are smaller than the input (a stride-4 head), the original
resizes the plain and the flipped-back maps before merging them; the torch path then does that resize and
the kernel merges the resized maps. Test time has no gradient: the inputs are detached, the op has no
autograd formula. Results are exactly the reference's (see the kernel's docstring).
"""
from __future__ import annotations

from typing import Sequence

import torch

from ..codecs.bottomup_maps import bottomup_topk_reference, check_outputs, flip_back_outputs, project
from .backend import resolve_backend
from .decode import flip_index_tensor
from .registry import FusedOp, fused_op, register


def _fake_bottomup_topk(outputs, second, flip_indices, mirror, nms_padding, top_k, block_rows=64, block_cols=64):
    n, channels, height, width = outputs.shape
    joints = channels // 2
    tags = 2 if second is not None else 1
    return (outputs.new_empty((n, joints, height, width), dtype=torch.float32),
            outputs.new_empty((n, joints, top_k), dtype=torch.float32),
            outputs.new_empty((n, joints, top_k, 2), dtype=torch.int64),
            outputs.new_empty((n, joints, top_k, tags), dtype=torch.float32))


BOTTOMUP_TOPK = FusedOp("bottomup_topk", _fake_bottomup_topk, triton="bottomup_topk:bottomup_topk_forward",
                        backends=("triton",))
SUPPORTED_BACKENDS = ("auto", "torch", *BOTTOMUP_TOPK.backends)
register(BOTTOMUP_TOPK)


def bottomup_topk(outputs: torch.Tensor, flipped_outputs: torch.Tensor | None = None, *, flip_indices: Sequence[int],
                  input_size: Sequence[int], nms_kernel: int, nms_padding: int, top_k: int, backend: str = "auto"):
    """(heatmaps (N, K, H, W) float32, values (N, K, top_k) float32, locations (N, K, top_k, 2) int64,
    tags (N, K, top_k, L) float32).

    Args:
        outputs: the network's eval outputs (N, 2K, h, w): K heatmaps then K tags; any float dtype.
        flipped_outputs: the outputs on the mirrored images, same shape (flip test), or None.
        flip_indices: the left/right permutation of the K joints.
        input_size: (H, W) of the network input: the maps are resized to it where they are smaller.
        nms_kernel, nms_padding: max-pool NMS window (kernel = 2 padding + 1).
        top_k: candidates per joint map (at most H * W).
        backend: "auto" (triton for CUDA tensors, else torch) | "torch" | "triton".
    """
    k = len(flip_indices)
    check_outputs(outputs, flipped_outputs, k)
    size = (int(input_size[0]), int(input_size[1]))
    if nms_kernel != 2 * nms_padding + 1 or nms_padding < 0:
        raise ValueError(f"bottomup_topk: nms_kernel must be 2 * nms_padding + 1, got {nms_kernel} and {nms_padding}")
    if not 1 <= top_k <= size[0] * size[1]:
        raise ValueError(f"bottomup_topk: top_k must be in 1..H*W = {size[0] * size[1]}, got {top_k}")
    chosen = resolve_backend(backend, outputs.device, op="bottomup_topk", supported=SUPPORTED_BACKENDS)
    outputs = outputs.detach()
    flipped_outputs = None if flipped_outputs is None else flipped_outputs.detach()
    if chosen == "torch":
        return bottomup_topk_reference(outputs, flipped_outputs, flip_indices, size, nms_kernel, nms_padding, top_k)
    mirror = True
    if tuple(outputs.shape[-2:]) != size:  # project2image first, as the original: flip back, then resize
        if flipped_outputs is not None:
            flipped_outputs, mirror = project(flip_back_outputs(flipped_outputs, flip_indices), size), False
        outputs = project(outputs.float(), size)
    index = flip_index_tensor(tuple(flip_indices), outputs.device)
    return fused_op("bottomup_topk", chosen)(outputs, flipped_outputs, index, mirror, nms_padding, top_k)
