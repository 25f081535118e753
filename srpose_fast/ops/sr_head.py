"""The SR head's job: grouped KxK convolution (one group per joint) followed by pixel shuffle.

`sr_head(x, weight, bias, upscale)` maps (N, e*K, H, W) embeddings to (N, K, r*H, r*W) heatmaps
with `weight` of shape (r*r*K, e, k, k) (torch's grouped-conv layout, groups = K) and
`bias` of shape (r*r*K,). Padding is k // 2, so the spatial size is kept before the shuffle.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .backend import resolve_backend

SUPPORTED_BACKENDS = ("auto", "torch")


def check_sr_head_inputs(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, upscale: int) -> int:
    """Validate shapes; return the number of joints K (the number of groups)."""
    if x.dim() != 4:
        raise ValueError(f"sr_head: x must be (N, C, H, W), got shape {tuple(x.shape)}")
    if weight.dim() != 4 or weight.shape[2] != weight.shape[3] or weight.shape[2] % 2 == 0:
        raise ValueError(f"sr_head: weight must be (r*r*K, e, k, k) with odd k, got shape {tuple(weight.shape)}")
    if not isinstance(upscale, int) or upscale < 1:
        raise ValueError(f"sr_head: upscale must be a positive int, got {upscale!r}")
    per_joint_out = upscale * upscale
    if weight.shape[0] % per_joint_out:
        raise ValueError(f"sr_head: weight has {weight.shape[0]} output channels, not a multiple of upscale**2 = {per_joint_out}")
    joints = weight.shape[0] // per_joint_out
    if x.shape[1] != joints * weight.shape[1]:
        raise ValueError(
            f"sr_head: x has {x.shape[1]} channels but weight expects K * e = {joints} * {weight.shape[1]}"
        )
    if bias is not None and tuple(bias.shape) != (weight.shape[0],):
        raise ValueError(f"sr_head: bias must have shape ({weight.shape[0]},), got {tuple(bias.shape)}")
    if x.device != weight.device or (bias is not None and bias.device != x.device):
        raise ValueError("sr_head: x, weight and bias must be on the same device")
    return joints


def sr_head_reference(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, upscale: int) -> torch.Tensor:
    """The reference: cuDNN/ATen grouped conv, then pixel shuffle (what SRPose runs)."""
    joints = check_sr_head_inputs(x, weight, bias, upscale)
    k = weight.shape[-1]
    out = F.conv2d(x, weight, bias, padding=k // 2, groups=joints)
    return F.pixel_shuffle(out, upscale)


def sr_head(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, upscale: int, *,
            backend: str = "auto") -> torch.Tensor:
    """Grouped conv (groups = joints, padding k // 2) + pixel shuffle(upscale); differentiable."""
    chosen = resolve_backend(backend, x.device, op="sr_head", supported=SUPPORTED_BACKENDS)
    if chosen == "torch":
        return sr_head_reference(x, weight, bias, upscale)
    raise AssertionError(f"unreachable backend {chosen}")
