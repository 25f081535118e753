"""The bottom-up (Associative Embedding) training loss as one op: outputs + joints + mask in, loss terms out.

`bottomup_loss(output, joints, mask, sigma=..)` takes the head's train output (N, 2K, h, w) = K heatmaps
then K tags, the people's joints (N, M, K, 3) in heatmap pixels and the loss mask (N, h, w), and returns
the original's terms (`losses.associative_embedding`): `heatmap_loss`, `push_loss`, `pull_loss`, `loss`.

Backends:
- "torch": materialises the multi-person heatmap targets (`codecs.bottomup_targets.bottomup_heatmaps`,
  a pass over the maps per person) and the joint indices, then
  `losses.associative_embedding.associative_embedding_loss` (the oracle).
- "triton": the heatmap term is the registered op `torch.ops.srpose_fast.bottomup_heatmap_loss_triton`
  (kernels in `srpose_fast.kernels.bottomup_loss`): the targets are drawn per tile from each joint's window
  (`joint_windows`, N x M x K x 6 numbers), so no target map exists; its autograd runs the registered op
  `bottomup_heatmap_loss_backward_triton`, which reads pred and mask once and writes the gradient. The tag
  term reads only the M x K tags at the joints: the torch reference's gather and per-person means.
"""
from __future__ import annotations

import torch

from ..codecs.bottomup_targets import MAX_PEOPLE, bottomup_heatmaps, joint_indices, joint_windows
from ..losses.associative_embedding import (AE_LOSS_TYPES, HEATMAP_FACTOR, PULL_FACTOR, PUSH_FACTOR,
                                            associative_embedding_loss, combine_terms, tag_loss)
from .backend import resolve_backend
from .registry import Autograd, FusedOp, fused_op, register


def check_bottomup_loss_inputs(output: torch.Tensor, joints: torch.Tensor, mask: torch.Tensor, sigma: float,
                               loss_type: str) -> int:
    """Validate; return K."""
    if output.dim() != 4 or output.shape[1] % 2:
        raise ValueError(f"bottomup_loss: output must be (N, 2K, h, w), got {tuple(output.shape)}")
    n, two_k, height, width = output.shape
    k = two_k // 2
    if joints.dim() != 4 or joints.shape[0] != n or tuple(joints.shape[2:]) != (k, 3):
        raise ValueError(f"bottomup_loss: joints must be (N={n}, M, K={k}, 3), got {tuple(joints.shape)}")
    if tuple(mask.shape) != (n, height, width):
        raise ValueError(f"bottomup_loss: mask must be (N, h, w) = {(n, height, width)}, got {tuple(mask.shape)}")
    if joints.device != output.device or mask.device != output.device:
        raise ValueError("bottomup_loss: output, joints and mask must be on one device")
    if not sigma > 0:
        raise ValueError(f"bottomup_loss: sigma must be positive, got {sigma}")
    if loss_type not in AE_LOSS_TYPES:
        raise ValueError(f"bottomup_loss: loss_type must be one of {AE_LOSS_TYPES}, got {loss_type!r}")
    return k


def bottomup_loss(output: torch.Tensor, joints: torch.Tensor, mask: torch.Tensor, *, sigma: float,
                  max_people: int = MAX_PEOPLE, loss_type: str = "exp", heatmap_factor: float = HEATMAP_FACTOR,
                  push_factor: float = PUSH_FACTOR, pull_factor: float = PULL_FACTOR,
                  backend: str = "auto") -> dict[str, torch.Tensor]:
    """The original's bottom-up loss of one train output.

    Args:
        output: (N, 2K, h, w), K heatmaps then K tag maps.
        joints: (N, M, K, 3) (x, y, v) in heatmap pixels, M <= max_people (IndexError beyond).
        mask: (N, h, w), 0 where the loss ignores pixels.
        sigma: the targets' Gaussian sigma in heatmap pixels (8 for the SR head at 512, 2 at 128).
    Returns float32 scalars `heatmap_loss`, `push_loss`, `pull_loss` and `loss` (their sum), differentiable
    with respect to `output`.
    """
    k = check_bottomup_loss_inputs(output, joints, mask, sigma, loss_type)
    chosen = resolve_backend(backend, output.device, op="bottomup_loss", supported=SUPPORTED_BACKENDS)
    size = tuple(output.shape[2:])
    factors = dict(heatmap_factor=heatmap_factor, push_factor=push_factor, pull_factor=pull_factor)
    joints = joints.detach().float()
    with torch.no_grad():
        indices = joint_indices(joints, size, max_people)
    if chosen == "torch":
        with torch.no_grad():
            target = bottomup_heatmaps(joints, size, sigma)
        return associative_embedding_loss(output, target, mask, indices, loss_type=loss_type, **factors)
    with torch.no_grad():
        windows = joint_windows(joints, size, sigma)
    heatmap = fused_op("bottomup_heatmap_loss", chosen)(output[:, :k], windows, mask.detach().float(), float(sigma))
    push, pull = tag_loss(output[:, k:], indices, loss_type)
    return combine_terms(heatmap, push, pull, **factors)


def _fake_loss(pred, windows, mask, sigma):
    return pred.new_empty((pred.shape[0],), dtype=torch.float32)


def _fake_loss_backward(grad_loss, pred, windows, mask, sigma):
    return torch.empty_like(pred, memory_format=torch.contiguous_format)


def _setup_context(ctx, inputs, output):
    pred, windows, mask, sigma = inputs
    ctx.save_for_backward(pred, windows, mask)
    ctx.sigma = sigma


def _gradients(backward_op, ctx, grad_loss):
    pred, windows, mask = ctx.saved_tensors
    # The targets and the mask are constants of the loss (as in the torch backend).
    return backward_op(grad_loss, pred, windows, mask, ctx.sigma), None, None, None


BOTTOMUP_HEATMAP_LOSS_BACKWARD = FusedOp("bottomup_heatmap_loss_backward", _fake_loss_backward,
                                         triton="bottomup_loss:bottomup_heatmap_loss_backward", backends=("triton",))
BOTTOMUP_HEATMAP_LOSS = FusedOp("bottomup_heatmap_loss", _fake_loss, triton="bottomup_loss:bottomup_heatmap_loss_forward",
                                backends=("triton",),
                                autograd=Autograd("bottomup_heatmap_loss_backward", _setup_context, _gradients))
SUPPORTED_BACKENDS = ("auto", "torch", *BOTTOMUP_HEATMAP_LOSS.backends)
register(BOTTOMUP_HEATMAP_LOSS_BACKWARD, BOTTOMUP_HEATMAP_LOSS)
