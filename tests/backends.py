"""Where each backend's op tests run, and how CUDA outputs are poisoned (importable as `backends`: pytest
puts tests/ on sys.path).

"torch" and "cpp" on CPU tensors; "cuda" on CUDA tensors; "triton" on CUDA tensors where there is a GPU and
under TRITON_INTERPRET=1 on CPU tensors elsewhere (tests/conftest.py sets it). The fixtures that run one test
body on each backend are in tests/ops/conftest.py.
"""
import torch

DEVICES = {"torch": "cpu", "triton": "cuda" if torch.cuda.is_available() else "cpu", "cuda": "cuda", "cpp": "cpu"}


def poison_cuda_cache(nbytes: int = 1 << 22) -> None:
    """Leave the CUDA caching allocator only NaN-filled free blocks (0xFF bytes: NaN in every float type),
    which the next op's outputs then reuse, so an element a CUDA kernel never writes stays NaN. No-op without
    a GPU.

    Small pool (requests up to 1 MB): every free fragment is taken 512 bytes at a time until the pool has to
    grow, then two more MB. Large pool: one block of `nbytes`. Everything is freed again at the end; the
    allocator serves later requests from these blocks (best fit, from the start of a block)."""
    if not torch.cuda.is_available():
        return
    torch.cuda.synchronize()
    torch.cuda.empty_cache()
    held = []
    reserved = torch.cuda.memory_reserved()
    while len(held) < 200_000 and torch.cuda.memory_reserved() == reserved:
        held.append(torch.full((512,), 255, dtype=torch.uint8, device="cuda"))
    held += [torch.full((1 << 20,), 255, dtype=torch.uint8, device="cuda") for _ in range(2)]
    held.append(torch.full((max(nbytes, 1 << 22),), 255, dtype=torch.uint8, device="cuda"))
    del held
