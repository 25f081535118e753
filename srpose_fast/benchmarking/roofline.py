"""The device's roofline, measured in the same run as the benchmarks it judges.

- Memory bandwidth: a large device-to-device copy (`dst.copy_(src)`), counted as the bytes read plus
  the bytes written.
- Matrix rate: a large square matmul per dtype: "float32" (torch's default precision, no TF32),
  "tf32" (CUDA only, with TF32 allowed for the call) and "bfloat16".

A case with `bytes` moved and `flops` done has a roofline time max(bytes / bandwidth, flops / rate);
its fraction of the roofline is that time over the measured time (1.0 = at the measured limit). The
rates are what this device reaches on these two operations, not datasheet peaks, so a kernel can
exceed 1.0 (for example a cuDNN convolution in float32 that uses TF32 while the float32 rate does not).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

import torch

from .timing import benchmark

# (copy MiB per buffer, matmul n for float32 / bfloat16) per profile and device type
SIZES = {
    ("full", "cuda"): (1024, 8192, 8192),
    ("quick", "cuda"): (512, 4096, 8192),
    ("tiny", "cuda"): (64, 1024, 1024),
    ("full", "cpu"): (256, 2048, 1024),
    ("quick", "cpu"): (64, 1024, 512),
    ("tiny", "cpu"): (8, 256, 128),
}


@dataclass
class Roofline:
    device: str
    bandwidth_gbps: float  # GB/s (1e9), read + write
    matmul_tflops: dict = field(default_factory=dict)  # dtype name -> TFLOP/s (1e12)
    copy_mib: int = 0
    matmul_n: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        return asdict(self)

    def rate(self, dtype: str) -> float | None:
        """FLOP/s for a case of this dtype ("float32" | "bfloat16" | "float16"); None if unmeasured."""
        key = "bfloat16" if dtype in ("bfloat16", "float16") else "float32"
        tflops = self.matmul_tflops.get(key)
        return None if tflops is None else tflops * 1e12

    def fraction(self, median_ms: float, *, bytes_moved: float, flops: float, dtype: str) -> float | None:
        """Roofline time / measured time; None when the case has neither bytes nor flops, or no time."""
        if not median_ms or median_ms <= 0:
            return None
        times = []
        if bytes_moved and self.bandwidth_gbps > 0:
            times.append(bytes_moved / (self.bandwidth_gbps * 1e9))
        rate = self.rate(dtype)
        if flops and rate:
            times.append(flops / rate)
        if not times:
            return None
        return max(times) / (median_ms * 1e-3)


def _matmul_tflops(n: int, dtype: torch.dtype, device: torch.device, budget_s: float) -> float:
    def make():
        return (torch.randn(n, n, device=device).to(dtype), torch.randn(n, n, device=device).to(dtype))

    timing = benchmark(lambda ab: torch.mm(ab[0], ab[1]), make, device=device, budget_s=budget_s, min_reps=3)
    return 2.0 * n ** 3 / (timing.median_ms * 1e-3) / 1e12


def measure_roofline(device: torch.device | str, profile: str = "full") -> Roofline:
    """Measure bandwidth and matmul rates on `device` with the sizes of `profile` ("full" | "quick" | "tiny")."""
    device = torch.device(device)
    copy_mib, n_fp32, n_bf16 = SIZES[(profile, "cuda" if device.type == "cuda" else "cpu")]
    budget = 0.5 if profile == "full" else 0.2

    numel = copy_mib * (1 << 20) // 4

    def make_copy():
        return torch.empty(numel, device=device), torch.ones(numel, device=device)

    copy = benchmark(lambda ds: ds[0].copy_(ds[1]), make_copy, device=device, budget_s=budget, min_reps=3)
    bandwidth = 2 * numel * 4 / (copy.median_ms * 1e-3) / 1e9

    tflops = {"float32": _matmul_tflops(n_fp32, torch.float32, device, budget)}
    sizes = {"float32": n_fp32}
    if device.type == "cuda":
        previous = torch.backends.cuda.matmul.allow_tf32
        torch.backends.cuda.matmul.allow_tf32 = True
        try:
            tflops["tf32"] = _matmul_tflops(n_fp32, torch.float32, device, budget)
            sizes["tf32"] = n_fp32
        finally:
            torch.backends.cuda.matmul.allow_tf32 = previous
    tflops["bfloat16"] = _matmul_tflops(n_bf16, torch.bfloat16, device, budget)
    sizes["bfloat16"] = n_bf16
    return Roofline(device=str(device), bandwidth_gbps=bandwidth, matmul_tflops=tflops, copy_mib=copy_mib,
                    matmul_n=sizes)
