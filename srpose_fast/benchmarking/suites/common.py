"""What every suite needs: the profile's sizes, which backends can run here, and torch.compile's settings."""
from __future__ import annotations

import shutil
from dataclasses import dataclass

import torch

from ...ops.backend import resolve_backend
from ..cases import Unavailable

PROFILES = ("full", "quick", "tiny")
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}
FP32_ONLY = {"float32": torch.float32}


@dataclass(frozen=True)
class Settings:
    """One suite run: the device, the profile ("full" on a GPU; "quick" for a CPU minute; "tiny" for the
    smoke test) and the model zoo names the model suites use."""
    device: torch.device
    profile: str
    models: tuple[str, ...] = ()

    def pick(self, full, quick, tiny):
        return {"full": full, "quick": quick, "tiny": tiny}[self.profile]

    @property
    def cuda(self) -> bool:
        return self.device.type == "cuda"

    def dtypes(self, tiny: dict) -> dict:
        """float32 and bfloat16, except in the quick profile on a CPU (16-bit convolutions are emulated
        there, slowly): float32 only; the tiny profile takes `tiny`."""
        if self.profile == "tiny":
            return tiny
        return DTYPES if (self.profile == "full" or self.cuda) else FP32_ONLY


def require_backend(backend: str, device: torch.device, *, op: str, supported) -> None:
    """Raise Unavailable, with the reason, unless `op` can run with `backend` on `device`.

    Triton kernels are benchmarked on CUDA tensors only: under Triton's CPU interpreter (which the tests
    use) they run, but their timings say nothing about the kernels.
    """
    try:
        resolve_backend(backend, device, op=op, supported=supported)
    except (ValueError, RuntimeError) as err:
        raise Unavailable(str(err)) from None
    if backend == "triton" and device.type != "cuda":
        raise Unavailable("the Triton kernels need CUDA tensors (no GPU in this run)")


def compile_mode(settings: Settings, *, autotune: bool) -> str:
    """torch.compile's mode for a compiled-reference provider, or Unavailable.

    "max-autotune" on a GPU when `autotune` (the SR head target), else the default mode. Compiling takes
    minutes per model, so only the full profile compiles.
    """
    if settings.profile != "full":
        raise Unavailable(f"torch.compile is timed only in the full profile (compile time exceeds the "
                          f"{settings.profile} profile's budget)")
    if not settings.cuda and shutil.which("g++") is None and shutil.which("c++") is None:
        raise Unavailable("torch.compile on the CPU needs a C++ compiler (none found)")
    return "max-autotune" if (autotune and settings.cuda) else "default"


def dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).replace("torch.", "")


def sync_to_host(*tensors):
    """What an evaluation loop does with results: bring them to the host (numpy)."""
    return tuple(t.detach().cpu().numpy() for t in tensors)
