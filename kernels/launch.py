"""What the Triton launchers of this package share: where kernels may run, output buffers, block sizes."""
from __future__ import annotations

import torch
import triton
from triton.runtime.interpreter import InterpretedFunction

# Tests set this to True: every buffer a launcher allocates starts as NaN, so an element the kernels
# never write fails the comparison instead of passing by luck.
POISON_OUTPUTS = False

# Programs a streaming pass (the argmax over whole maps) aims for: an H200's 132 SMs a few times over.
# Maps are split into that many slices when the batch alone gives fewer programs, into MAX_SPLITS at most
# (a power of two: the refinement reduces them in one step; batch 1 of 17 maps then gets 1088 programs).
TARGET_PROGRAMS = 2048
MAX_SPLITS = 64


def interpreted(kernel) -> bool:
    """True under Triton's interpreter (TRITON_INTERPRET=1 before import): kernels run on CPU tensors."""
    return isinstance(kernel, InterpretedFunction)


def check_kernel_device(op: str, tensor: torch.Tensor, kernel) -> None:
    """Compiled kernels need CUDA tensors; the interpreter takes CPU tensors."""
    if tensor.device.type != "cuda" and not interpreted(kernel):
        raise ValueError(f"{op} (triton): needs CUDA tensors (CPU tensors only under TRITON_INTERPRET=1), "
                         f"got a tensor on {tensor.device}")


def new_buffer(shape, device: torch.device, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """An output buffer: NaN-filled when POISON_OUTPUTS (tests), else uninitialised."""
    if POISON_OUTPUTS:
        return torch.full(shape, float("nan"), dtype=dtype, device=device)
    return torch.empty(shape, dtype=dtype, device=device)


def argmax_partials(n_maps: int, n_tiles: int, device: torch.device) -> tuple[int, torch.Tensor, torch.Tensor]:
    """(S, values, indices) for an argmax pass that splits each of n_maps maps of n_tiles tiles over S
    programs: S fills TARGET_PROGRAMS when the maps alone do not (up to MAX_SPLITS), and no program is left
    without a tile.
    values (n_maps, S) float32, indices (n_maps, S) int32: one (max, lowest flat index) per program."""
    n_splits = max(1, min(n_tiles, triton.cdiv(TARGET_PROGRAMS, n_maps), MAX_SPLITS))
    values = new_buffer((n_maps, n_splits), device)
    indices = torch.empty((n_maps, n_splits), dtype=torch.int32, device=device)  # every program writes its own
    return n_splits, values, indices


def dot_config(dtype: torch.dtype, kernel) -> tuple[str, bool]:
    """(PRECISION, DOT_FP32) of a kernel's tl.dot on `dtype` operands. fp32 operands stay fp32 ("ieee", not
    tf32), so the kernels match the reference to ~1e-6; for bf16/fp16 operands the flag has no effect
    ("tf32" is Triton's default on NVIDIA). DOT_FP32 upcasts bf16 operands first, only under
    TRITON_INTERPRET=1, whose tl.dot multiplies bf16 bit patterns (triton-lang/triton#11584); bf16 -> fp32 is
    exact, so the product is what the GPU's bf16 dot with fp32 accumulation computes."""
    dot_fp32 = dtype == torch.bfloat16 and interpreted(kernel)
    return ("ieee" if dtype == torch.float32 or dot_fp32 else "tf32"), dot_fp32


def pow2_at_least_16(n: int) -> int:
    """A block size for n elements: tl.dot wants at least 16 along each dimension."""
    return max(16, triton.next_power_of_2(n))
