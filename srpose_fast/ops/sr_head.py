"""The SR head's job: grouped KxK convolution (one group per joint) followed by pixel shuffle.

`sr_head(x, weight, bias, upscale)` maps (N, e*K, H, W) embeddings to (N, K, r*H, r*W) heatmaps
with `weight` of shape (r*r*K, e, k, k) (torch's grouped-conv layout, groups = K) and
`bias` of shape (r*r*K,). Padding is k // 2, so the spatial size is kept before the shuffle.

Backends: "torch" is `sr_head_reference` (the oracle, the CPU path, the benchmark baseline);
"triton" is the registered op `torch.ops.srpose_fast.sr_head` (kernels in `srpose_fast.kernels.sr_head`:
one fused kernel that writes the shuffled output, and a backward that reads grad_out in place), with
autograd through the registered op `torch.ops.srpose_fast.sr_head_backward`. The triton ops are
registered when this module is imported and the triton package is installed; without triton nothing
here imports it, and backend="triton" says what is missing.
"cuda" is `torch.ops.srpose_fast_cuda.sr_head` / `sr_head_backward` from the compiled extension
`srpose_fast._C` (csrc/cuda/sr_head.cu, the same fused layout; fp32/fp16/bf16/fp64 with fp32 or fp64
accumulation). Their schemas come from the extension; their fakes and autograd are registered here when
the extension is built.
"""
from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F

from .backend import cuda_extension_available, resolve_backend, triton_available

SUPPORTED_BACKENDS = ("auto", "torch", "triton", "cuda")


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
    """Grouped conv (groups = joints, padding k // 2) + pixel shuffle(upscale); differentiable.

    Under autocast every backend computes in the autocast dtype, as torch's conv2d does.
    """
    chosen = resolve_backend(backend, x.device, op="sr_head", supported=SUPPORTED_BACKENDS)
    if chosen != "torch" and torch.is_autocast_enabled(x.device.type):
        # The registered ops are not on autocast's list: cast here what conv2d would cast.
        dtype = torch.get_autocast_dtype(x.device.type)
        x, weight = x.to(dtype), weight.to(dtype)
        bias = None if bias is None else bias.to(dtype)
    if chosen == "torch":
        return sr_head_reference(x, weight, bias, upscale)
    if chosen == "triton":
        check_sr_head_inputs(x, weight, bias, upscale)
        return torch.ops.srpose_fast.sr_head(x, weight, bias, upscale)
    if chosen == "cuda":
        check_sr_head_inputs(x, weight, bias, upscale)
        return torch.ops.srpose_fast_cuda.sr_head(x, weight, bias, upscale)
    raise AssertionError(f"unreachable backend {chosen}")


def _fake_sr_head(x, weight, bias, upscale):
    n, _, h, w = x.shape
    joints = weight.shape[0] // (upscale * upscale)
    return x.new_empty((n, joints, upscale * h, upscale * w))


def _setup_context(ctx, inputs, output):
    x, weight, bias, upscale = inputs
    ctx.save_for_backward(x, weight)
    ctx.has_bias = bias is not None
    ctx.upscale = upscale


def _autograd_backward(backward_op):
    """The autograd formula of an sr_head op whose gradients come from the registered op `backward_op`."""
    def backward(ctx, grad_out):
        x, weight = ctx.saved_tensors
        grad_x, grad_weight, grad_bias = backward_op(grad_out, x, weight, ctx.upscale)
        return grad_x, grad_weight, grad_bias if ctx.has_bias else None, None

    return backward


def _register_triton_ops() -> None:
    """Define srpose_fast::sr_head and srpose_fast::sr_head_backward (triton_op), their fakes and autograd."""
    from torch.library import triton_op

    from srpose_fast.kernels.sr_head import sr_head_backward, sr_head_forward

    @triton_op("srpose_fast::sr_head", mutates_args=())
    def sr_head_op(x: torch.Tensor, weight: torch.Tensor, bias: Optional[torch.Tensor], upscale: int) -> torch.Tensor:
        return sr_head_forward(x, weight, bias, upscale)

    sr_head_op.register_fake(_fake_sr_head)

    @triton_op("srpose_fast::sr_head_backward", mutates_args=())
    def sr_head_backward_op(grad_out: torch.Tensor, x: torch.Tensor, weight: torch.Tensor,
                            upscale: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return sr_head_backward(grad_out, x, weight, upscale)

    @sr_head_backward_op.register_fake
    def _(grad_out, x, weight, upscale):
        return torch.empty_like(x), torch.empty_like(weight), weight.new_empty((weight.shape[0],))

    sr_head_op.register_autograd(_autograd_backward(torch.ops.srpose_fast.sr_head_backward),
                                 setup_context=_setup_context)


def _register_cuda_ops() -> None:
    """Fakes and autograd of srpose_fast_cuda::sr_head and ::sr_head_backward (schemas and CUDA kernels
    come from srpose_fast._C). Outputs are contiguous, as the kernels allocate them."""
    torch.library.register_fake("srpose_fast_cuda::sr_head", _fake_sr_head)

    @torch.library.register_fake("srpose_fast_cuda::sr_head_backward")
    def _(grad_out, x, weight, upscale):
        return x.new_empty(x.shape), weight.new_empty(weight.shape), weight.new_empty((weight.shape[0],))

    torch.library.register_autograd("srpose_fast_cuda::sr_head",
                                    _autograd_backward(torch.ops.srpose_fast_cuda.sr_head_backward),
                                    setup_context=_setup_context)


if triton_available():
    _register_triton_ops()
# Only where the extension imported (that registered its schemas); elsewhere backend="cuda" says why not.
if cuda_extension_available():
    _register_cuda_ops()
