"""Benchmarks against the reference: `run_benchmarks` (the `srpose-fast bench` command) and its parts.

- `runner`: runs the suites, writes results.json, results.md and speedup.png;
- `suites/`: one file per op (sr_head, decode, sr_head_decode, loss), the whole models (train, infer), the
  deployment decoder (deploy) and bottom-up test time (bottomup: its decode and whole-image inference);
- `bottomup_outputs`: synthetic bottom-up network outputs with people in them (the bottomup suite's inputs);
- `cases`: a case, its providers, and the check-then-time loop every suite goes through;
- `timing`: the one timing function (CUDA events or perf_counter, median, warm-up, L2 rotation);
- `roofline`: the device's copy bandwidth and matmul rates, measured in the same run;
- `environment`, `report`: where it ran; the markdown table and the plot.
"""
from .runner import run_benchmarks, selected_cases

__all__ = ["run_benchmarks", "selected_cases"]
