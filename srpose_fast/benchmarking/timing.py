"""One timing function for every benchmark: `benchmark(fn, make_inputs, device=...)`.

- CUDA, kernels only (`host_sync=False`): CUDA events around each call, median over many calls after a
  warm-up.
- CUDA, work that waits on the host (`host_sync=True`: device-to-host copies, Python loops):
  `time.perf_counter` around each call with the device synchronised before and after.
- CPU: `time.perf_counter` around each call, median.
- With `rotate=True` the calls cycle through enough independent copies of the inputs that together
  they exceed twice the cache (a GPU's L2, a CPU's last-level cache), so no call finds its inputs in
  the cache from the previous one.

The number of timed calls follows a time budget: enough calls to fill `budget_s`, but at least
`min_reps` and at most `max_reps`.
"""
from __future__ import annotations

import math
import statistics
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

import torch

# Rotation never makes more copies than this, nor spends more memory than this on them.
MAX_ROTATION_COPIES = 64
MAX_ROTATION_BYTES = 4 << 30


@dataclass(frozen=True)
class Timing:
    median_ms: float
    p20_ms: float
    p80_ms: float
    reps: int
    timer: str  # "cuda-events" | "perf_counter+sync" | "perf_counter"
    input_copies: int  # distinct input sets the calls cycled through

    def as_dict(self) -> dict:
        return asdict(self)


def tensor_bytes(obj: Any) -> int:
    """Bytes of every tensor in a (nested) tuple/list/dict of tensors."""
    if isinstance(obj, torch.Tensor):
        return obj.numel() * obj.element_size()
    if isinstance(obj, (tuple, list)):
        return sum(tensor_bytes(o) for o in obj)
    if isinstance(obj, dict):
        return sum(tensor_bytes(o) for o in obj.values())
    return 0


def _size_bytes(text: str) -> int:
    """sysfs cache sizes: "32768K", "1M" or plain bytes."""
    text = text.strip().upper()
    unit = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}.get(text[-1:], 1)
    return int(text.rstrip("KMG")) * unit


def last_level_cache_bytes(sysfs: Path = Path("/sys/devices/system/cpu/cpu0/cache")) -> int:
    """The CPU's largest cache (L3 on most machines) from Linux's sysfs; 0 where it cannot be read."""
    sizes = {}
    for index in sysfs.glob("index*"):
        try:
            if (index / "type").read_text().strip() != "Instruction":
                sizes[int((index / "level").read_text())] = _size_bytes((index / "size").read_text())
        except (OSError, ValueError):
            continue
    return sizes[max(sizes)] if sizes else 0


def cache_bytes(device: torch.device) -> int:
    """The cache that a call must not find its inputs in: L2 on a GPU, the last-level cache on a CPU."""
    if device.type == "cuda":
        return int(getattr(torch.cuda.get_device_properties(device), "L2_cache_size", 0))
    return last_level_cache_bytes()


def rotation_copies(input_bytes: int, device: torch.device) -> int:
    """How many input sets make the calls miss the cache: enough for twice its size, within the caps."""
    cache = cache_bytes(device)
    if cache == 0 or input_bytes == 0:
        return 1
    wanted = math.ceil(2 * cache / input_bytes)
    affordable = max(1, MAX_ROTATION_BYTES // input_bytes)
    return max(1, min(wanted, affordable, MAX_ROTATION_COPIES))


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _timed_once(fn: Callable, inputs: Any, device: torch.device) -> float:
    _synchronize(device)
    start = time.perf_counter()
    fn(inputs)
    _synchronize(device)
    return time.perf_counter() - start


def benchmark(fn: Callable[[Any], Any], make_inputs: Callable[[], Any], *, device: torch.device | str,
              rotate: bool = False, host_sync: bool = False, warmup_s: float = 0.05, min_warmup: int = 2,
              budget_s: float = 0.5, min_reps: int = 5, max_reps: int = 200) -> Timing:
    """Median time of `fn(inputs)`; `make_inputs()` builds one input set (called once per rotation copy).

    The warm-up runs at least `min_warmup` calls and at least `warmup_s` seconds (compilation, autotuning
    and allocator growth happen there); its last call estimates how many calls fit in `budget_s`.
    """
    device = torch.device(device)
    first = make_inputs()
    # never more copies than timed calls (the tiny profile times one)
    copies = min(rotation_copies(tensor_bytes(first), device), max_reps) if rotate else 1
    inputs = [first] + [make_inputs() for _ in range(copies - 1)]

    spent, calls, last = 0.0, 0, 0.0
    while calls < min_warmup or spent < warmup_s:
        last = _timed_once(fn, inputs[calls % copies], device)
        spent += last
        calls += 1
        if spent > 20 * max(warmup_s, budget_s):  # a very slow call: the warm-up has seen enough
            break
    reps = int(min(max_reps, max(min_reps, budget_s / max(last, 1e-7))))

    if device.type == "cuda" and not host_sync:
        timer = "cuda-events"
        stream = torch.cuda.current_stream(device)
        events = [(torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)) for _ in range(reps)]
        _synchronize(device)
        for i, (start, end) in enumerate(events):
            start.record(stream)
            fn(inputs[i % copies])
            end.record(stream)
        _synchronize(device)
        times_ms = [start.elapsed_time(end) for start, end in events]
    else:
        timer = "perf_counter+sync" if device.type == "cuda" else "perf_counter"
        times_ms = [1e3 * _timed_once(fn, inputs[i % copies], device) for i in range(reps)]

    q = statistics.quantiles(times_ms, n=5, method="inclusive") if len(times_ms) > 1 else times_ms * 4
    return Timing(median_ms=statistics.median(times_ms), p20_ms=q[0], p80_ms=q[3], reps=reps, timer=timer,
                  input_copies=copies)
