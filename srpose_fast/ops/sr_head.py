"""The SR head's job: grouped KxK convolution (one group per joint) followed by pixel shuffle.

`sr_head(x, weight, bias, upscale)` maps (N, e*K, H, W) embeddings to (N, K, r*H, r*W) heatmaps
with `weight` of shape (r*r*K, e, k, k) (torch's grouped-conv layout, groups = K) and
`bias` of shape (r*r*K,). Padding is k // 2, so the spatial size is kept before the shuffle.

Backends: "torch" is `sr_head_reference` (the oracle, the CPU path, the benchmark baseline). The fused
backends are the registered ops `torch.ops.srpose_fast.sr_head_<backend>` with autograd through
`sr_head_backward_<backend>` (`ops.registry`): "triton" (kernels in `srpose_fast.kernels.sr_head`: one
fused kernel that writes the shuffled output, and a backward that reads grad_out in place) and "cuda"
(csrc/cuda/sr_head.cu, the same fused layout; fp32/fp16/bf16/fp64 with fp32 or fp64 accumulation).
"""
from __future__ import annotations


import torch
import torch.nn.functional as F

from .backend import resolve_backend
from .registry import Autograd, FusedOp, fused_op, register


def check_sr_head_inputs(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, upscale: int, *,
                         op: str = "sr_head") -> int:
    """Validate shapes; return the number of joints K (the number of groups). Errors start with `op`."""
    if x.dim() != 4:
        raise ValueError(f"{op}: x must be (N, C, H, W), got shape {tuple(x.shape)}")
    if weight.dim() != 4 or weight.shape[2] != weight.shape[3] or weight.shape[2] % 2 == 0:
        raise ValueError(f"{op}: weight must be (r*r*K, e, k, k) with odd k, got shape {tuple(weight.shape)}")
    if not isinstance(upscale, int) or upscale < 1:
        raise ValueError(f"{op}: upscale must be a positive int, got {upscale!r}")
    per_joint_out = upscale * upscale
    if weight.shape[0] % per_joint_out:
        raise ValueError(f"{op}: weight has {weight.shape[0]} output channels, not a multiple of upscale**2 = {per_joint_out}")
    joints = weight.shape[0] // per_joint_out
    if x.shape[1] != joints * weight.shape[1]:
        raise ValueError(
            f"{op}: x has {x.shape[1]} channels but weight expects K * e = {joints} * {weight.shape[1]}"
        )
    if bias is not None and tuple(bias.shape) != (weight.shape[0],):
        raise ValueError(f"{op}: bias must have shape ({weight.shape[0]},), got {tuple(bias.shape)}")
    if x.device != weight.device or (bias is not None and bias.device != x.device):
        raise ValueError(f"{op}: x, weight and bias must be on the same device")
    return joints


def sr_head_reference(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, upscale: int) -> torch.Tensor:
    """The reference: cuDNN/ATen grouped conv, then pixel shuffle (what SRPose runs)."""
    joints = check_sr_head_inputs(x, weight, bias, upscale)
    k = weight.shape[-1]
    out = F.conv2d(x, weight, bias, padding=k // 2, groups=joints)
    return F.pixel_shuffle(out, upscale)


def sr_head(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, upscale: int, *,
            backend: str = "auto") -> torch.Tensor:
    """Grouped conv (groups = joints, padding k // 2) + pixel shuffle(upscale); differentiable.

    Under autocast every backend computes in the autocast dtype, as torch's conv2d does.
    """
    check_sr_head_inputs(x, weight, bias, upscale)
    chosen = resolve_backend(backend, x.device, op="sr_head", supported=SUPPORTED_BACKENDS)
    if chosen == "torch":
        return sr_head_reference(x, weight, bias, upscale)
    if torch.is_autocast_enabled(x.device.type):
        # The registered ops are not on autocast's list: cast here what conv2d would cast.
        dtype = torch.get_autocast_dtype(x.device.type)
        x, weight = x.to(dtype), weight.to(dtype)
        bias = None if bias is None else bias.to(dtype)
    return fused_op("sr_head", chosen)(x, weight, bias, upscale)


def _fake_sr_head(x, weight, bias, upscale):
    n, _, h, w = x.shape
    joints = weight.shape[0] // (upscale * upscale)
    return x.new_empty((n, joints, upscale * h, upscale * w))


def _fake_sr_head_backward(grad_out, x, weight, upscale):
    # contiguous, as every backend allocates them (empty_like would keep a channels-last x's strides)
    return x.new_empty(x.shape), weight.new_empty(weight.shape), weight.new_empty((weight.shape[0],))


def _setup_context(ctx, inputs, output):
    x, weight, bias, upscale = inputs
    ctx.save_for_backward(x, weight)
    ctx.has_bias = bias is not None
    ctx.upscale = upscale


def _gradients(backward_op, ctx, grad_out):
    x, weight = ctx.saved_tensors
    grad_x, grad_weight, grad_bias = backward_op(grad_out, x, weight, ctx.upscale)
    return grad_x, grad_weight, grad_bias if ctx.has_bias else None, None


SR_HEAD_BACKWARD = FusedOp("sr_head_backward", _fake_sr_head_backward, triton="sr_head:sr_head_backward")
SR_HEAD = FusedOp("sr_head", _fake_sr_head, triton="sr_head:sr_head_forward",
                  autograd=Autograd("sr_head_backward", _setup_context, _gradients))
SUPPORTED_BACKENDS = ("auto", "torch", *SR_HEAD.backends)
register(SR_HEAD_BACKWARD, SR_HEAD)
