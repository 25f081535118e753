"""The multi-stage loss as one op: predictions + keypoints in, scalar loss out; targets made inside.

The "torch" backend materialises the full-resolution target (codecs.encode_heatmaps) and its
pooled copies; fused backends compute the same loss without any target tensor.

The fused backends sum stage_weight * `torch.ops.srpose_fast.heatmap_mse_loss_<backend>` over the
predictions, one registered op per stage (`ops.registry`) whose targets are the block means of the separable
full-resolution Gaussian, made in the kernel; their autograd runs `heatmap_mse_loss_backward_<backend>`.
"triton": kernels in `srpose_fast.kernels.multi_stage_loss`, made per tile in registers; "cuda":
csrc/cuda/multi_stage_loss.cu, one thread block per joint, the two block-mean profiles in shared memory.
"""
from __future__ import annotations

from typing import Sequence

import torch

from ..codecs.conventions import SRPOSE_STAGE_WEIGHTS, TARGET_METHODS
from ..codecs.targets import encode_heatmaps
from ..losses.multi_stage import multi_stage_loss_from_target
from .backend import resolve_backend
from .registry import Autograd, FusedOp, fused_op, register


def check_loss_inputs(preds: Sequence[torch.Tensor], keypoints: torch.Tensor, target_weight: torch.Tensor,
                      stage_weights: Sequence[float], sigma: float, target_method: str) -> tuple[int, int, int]:
    """Validate; return the index of the largest prediction, and its (H, W)."""
    if isinstance(preds, torch.Tensor):
        preds = [preds]
    if len(preds) == 0:
        raise ValueError("multi_stage_loss: preds is empty")
    if len(stage_weights) != len(preds):
        raise ValueError(f"multi_stage_loss: {len(preds)} predictions but {len(stage_weights)} stage weights")
    n, k = preds[0].shape[:2]
    for i, p in enumerate(preds):
        if p.dim() != 4 or tuple(p.shape[:2]) != (n, k):
            raise ValueError(f"multi_stage_loss: preds[{i}] must be (N={n}, K={k}, H, W), got {tuple(p.shape)}")
        if p.device != preds[0].device:
            raise ValueError("multi_stage_loss: all predictions must be on one device")
    if tuple(keypoints.shape) != (n, k, 2):
        raise ValueError(f"multi_stage_loss: keypoints must be (N={n}, K={k}, 2), got {tuple(keypoints.shape)}")
    if tuple(target_weight.shape) not in ((n, k), (n, k, 1)):
        raise ValueError(f"multi_stage_loss: target_weight must be (N={n}, K={k}), got {tuple(target_weight.shape)}")
    if not sigma > 0:
        raise ValueError(f"multi_stage_loss: sigma must be positive, got {sigma}")
    if target_method not in TARGET_METHODS:
        raise ValueError(f"multi_stage_loss: target_method must be one of {TARGET_METHODS}, got {target_method!r}")
    areas = [p.shape[-2] * p.shape[-1] for p in preds]
    largest = areas.index(max(areas))  # the first largest, as max(key=...) would (and torch.compile traces this)
    height, width = preds[largest].shape[-2:]
    for i, p in enumerate(preds):
        if height % p.shape[-2] or width % p.shape[-1]:
            raise ValueError(f"multi_stage_loss: preds[{i}] of size {tuple(p.shape[-2:])} does not divide the "
                             f"largest prediction's {height}x{width}; pooled targets need whole blocks")
    return largest, height, width


def multi_stage_loss(preds: Sequence[torch.Tensor], keypoints: torch.Tensor, target_weight: torch.Tensor, *,
                     sigma: float = 8.0, stage_weights: Sequence[float] = SRPOSE_STAGE_WEIGHTS,
                     target_method: str = "msra", backend: str = "auto") -> torch.Tensor:
    """SRPose's training loss of the model's train-mode outputs.

    Args:
        preds: the list the model returns in train mode (a single tensor is taken as a list of one).
        keypoints: (N, K, 2) (x, y) in pixel coordinates of the largest prediction.
        target_weight: (N, K) visibility weights; a joint whose target window lies wholly outside
            the map gets weight 0, as in the reference.
        sigma: Gaussian sigma at the largest prediction's resolution.
        stage_weights: one weight per prediction (SRPose: 1e-4 for the LR map, 1 for each SR output).
        target_method: "msra" (integer centre), "unbiased" or "udp".
    Returns the scalar float32 loss, differentiable with respect to every prediction.
    """
    if isinstance(preds, torch.Tensor):
        preds = [preds]
    _, height, width = check_loss_inputs(preds, keypoints, target_weight, stage_weights, sigma, target_method)
    chosen = resolve_backend(backend, preds[0].device, op="multi_stage_loss", supported=SUPPORTED_BACKENDS)
    if chosen == "torch":
        weight = target_weight.reshape(keypoints.shape[:2]).to(preds[0].device)
        with torch.no_grad():
            target, weight = encode_heatmaps(keypoints.to(preds[0].device), weight, (height, width), sigma,
                                             method=target_method)
        return multi_stage_loss_from_target(preds, target, weight, stage_weights)
    if chosen in ("triton", "cuda"):
        device = preds[0].device
        weight = target_weight.reshape(keypoints.shape[:2]).to(device).detach()
        keypoints = keypoints.to(device).detach()
        stage_loss = fused_op("heatmap_mse_loss", chosen)
        total = preds[0].new_zeros((), dtype=torch.float32)
        for pred, stage_weight in zip(preds, stage_weights):
            loss = stage_loss(pred, keypoints, weight, float(sigma), int(height), int(width), target_method)
            total = total + stage_weight * loss
        return total
    raise AssertionError(f"unreachable backend {chosen}")


def _fake_loss(pred, keypoints, weight, sigma, full_h, full_w, method):
    return pred.new_empty((), dtype=torch.float32)


def _fake_loss_backward(grad_loss, pred, keypoints, weight, sigma, full_h, full_w, method):
    return torch.empty_like(pred, memory_format=torch.contiguous_format)


def _setup_context(ctx, inputs, output):
    pred, keypoints, weight, sigma, full_h, full_w, method = inputs
    ctx.save_for_backward(pred, keypoints, weight)
    ctx.args = (sigma, full_h, full_w, method)


def _gradients(backward_op, ctx, grad_loss):
    pred, keypoints, weight = ctx.saved_tensors
    grad_pred = backward_op(grad_loss, pred, keypoints, weight, *ctx.args)
    # The targets are constants of the loss (as in the torch backend): no gradient to keypoints or weight.
    return grad_pred, None, None, None, None, None, None


HEATMAP_MSE_LOSS_BACKWARD = FusedOp("heatmap_mse_loss_backward", _fake_loss_backward,
                                    triton="multi_stage_loss:heatmap_mse_loss_backward")
HEATMAP_MSE_LOSS = FusedOp("heatmap_mse_loss", _fake_loss, triton="multi_stage_loss:heatmap_mse_loss_forward",
                           autograd=Autograd("heatmap_mse_loss_backward", _setup_context, _gradients))
SUPPORTED_BACKENDS = ("auto", "torch", *HEATMAP_MSE_LOSS.backends)
register(HEATMAP_MSE_LOSS_BACKWARD, HEATMAP_MSE_LOSS)
