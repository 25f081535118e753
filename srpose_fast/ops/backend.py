"""Which implementation runs a fused op: the one rule every op in `srpose_fast.ops` follows.

- "torch": the plain-PyTorch reference (any device; the test oracle and the CPU path).
- "triton": the Triton kernels in `srpose_fast.kernels` (CUDA tensors; CPU tensors only under
  Triton's interpreter, which tests use).
- "cuda": the compiled CUDA C++ extension (CUDA tensors).
- "cpp": the portable multi-threaded C++ decoder of `srpose_fast.deploy` (CPU inputs; decode only).
- "auto": a fused backend for CUDA tensors (triton, else cuda); on the CPU the C++ decoder where an
  op has one and it is built, torch otherwise.

Nothing is chosen from environment variables: a caller who wants a backend names it.
"""
from __future__ import annotations

import importlib
import importlib.util
import os
import warnings

import torch

BACKENDS = ("auto", "torch", "triton", "cuda", "cpp")


# Looked up once at import: plain constants keep torch.compile(fullgraph=True) happy (no import
# machinery to trace inside a compiled region).
_TRITON_INSTALLED = importlib.util.find_spec("triton") is not None  # found, not imported


def _import_cuda_extension() -> bool:
    """Import srpose_fast._C (registering its ops) where it was built; warn if it was built but fails."""
    if importlib.util.find_spec("srpose_fast._C") is None:
        return False  # not built: backend="cuda" says so when asked for
    try:
        importlib.import_module("srpose_fast._C")
    except ImportError as err:
        warnings.warn(f"srpose_fast: the CUDA C++ extension srpose_fast._C is built but does not import ({err}); "
                      "ops fall back to the Triton or torch backend", stacklevel=2)
        return False
    return True


_CUDA_EXTENSION_IMPORTED = _import_cuda_extension()


def triton_available() -> bool:
    return _TRITON_INSTALLED


def cuda_extension_available() -> bool:
    """True when the compiled CUDA extension srpose_fast._C was imported (its ops are registered)."""
    return _CUDA_EXTENSION_IMPORTED


def cpp_decoder_available() -> bool:
    from ..deploy import decoder_available

    return decoder_available()


def resolve_backend(backend: str, device: torch.device, *, op: str, supported=BACKENDS) -> str:
    """The concrete backend for `op` on `device`, or a ValueError saying why not."""
    if backend not in BACKENDS:
        raise ValueError(f"{op}: backend must be one of {BACKENDS}, got {backend!r}")
    if backend == "auto":
        # Triton first: its kernels are tested against the reference under the interpreter in CI,
        # while the CUDA C++ kernels are only compiled there (they await a GPU run, csrc/README.md).
        if device.type == "cuda":
            if "triton" in supported and triton_available():
                return "triton"
            if "cuda" in supported and cuda_extension_available():
                return "cuda"
        elif device.type == "cpu" and "cpp" in supported and cpp_decoder_available():
            return "cpp"
        return "torch"
    if backend not in supported:
        raise ValueError(f"{op}: the {backend!r} backend is not implemented yet; available: "
                         f"{tuple(b for b in supported if b != 'auto')}")
    if backend == "triton":
        if not triton_available():
            raise RuntimeError(f"{op}: backend='triton' needs the triton package (pip install triton)")
        if device.type != "cuda" and os.environ.get("TRITON_INTERPRET") != "1":
            raise ValueError(f"{op}: backend='triton' needs CUDA tensors (or Triton's CPU interpreter, "
                             f"TRITON_INTERPRET=1 set before srpose_fast is imported), got a tensor on {device}")
    if backend == "cuda":
        if device.type != "cuda":
            raise ValueError(f"{op}: backend='cuda' needs CUDA tensors, got a tensor on {device}")
        if not cuda_extension_available():
            raise RuntimeError(f"{op}: backend='cuda' needs the compiled extension srpose_fast._C")
    if backend == "cpp":
        if device.type != "cpu":
            raise ValueError(f"{op}: backend='cpp' decodes CPU inputs, got a tensor on {device}")
        if not cpp_decoder_available():
            raise RuntimeError(f"{op}: backend='cpp' needs the compiled decoder srpose_fast.deploy._decoder "
                               "(pip install -e . --no-build-isolation with a C++ compiler and pybind11)")
    return backend
