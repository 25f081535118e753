"""The registered torch ops of srpose_fast: one namespace, `srpose_fast::`, one op per job and fused backend.

Backend `b` of job `name` is `torch.ops.srpose_fast.<name>_<b>`, as extension-cpp and flash-attention name
theirs (`sr_head_triton`, `sr_head_cuda`, `sr_head_backward_triton`, ...):
- "triton": defined here by `torch.library.triton_op` around the job's launcher in `srpose_fast.kernels`
  (its schema is inferred from the launcher's annotations), when the triton package is installed;
  without it nothing here imports triton.
- "cuda": defined by the compiled extension `srpose_fast._C` (csrc/ops.cpp,
  `TORCH_LIBRARY_FRAGMENT(srpose_fast, m)`, the same signatures), when it is built and imports.

Each op file describes its jobs as `FusedOp` rows and hands them to `register`, the one place that gives
every available backend of every job its fake and, where the job has one, its autograd formula. A public
function calls `fused_op(name, backend)`.
"""
from __future__ import annotations

import functools
import importlib
from dataclasses import dataclass
from typing import Callable

import torch

from .backend import cuda_extension_available, triton_available

NAMESPACE = "srpose_fast"
FUSED_BACKENDS = ("triton", "cuda")


@dataclass(frozen=True)
class Autograd:
    """A job's derivative: the op of job `backward` on the same backend computes the gradients."""
    backward: str
    setup_context: Callable
    formula: Callable  # (backward_op, ctx, *grad_outputs) -> one gradient (or None) per input


@dataclass(frozen=True)
class FusedOp:
    """One job of the table: srpose_fast::<name>_<backend> for each backend in `backends`."""
    name: str
    fake: Callable  # the outputs' shapes, dtypes and strides from the inputs' (every kernel's are contiguous)
    triton: str  # "module:function", the launcher in srpose_fast.kernels
    backends: tuple[str, ...] = FUSED_BACKENDS
    autograd: Autograd | None = None


def qualified_name(name: str, backend: str) -> str:
    return f"{NAMESPACE}::{name}_{backend}"


def fused_op(name: str, backend: str):
    """torch.ops.srpose_fast.<name>_<backend> (an attribute lookup, so torch.compile traces it)."""
    return getattr(getattr(torch.ops, NAMESPACE), f"{name}_{backend}")


def _define(op: FusedOp, backend: str):
    """The backend's op (defining it where this module does: triton), or None where it is not available."""
    if backend == "triton":
        if not triton_available():
            return None
        module, function = op.triton.split(":")
        launcher = getattr(importlib.import_module(f"srpose_fast.kernels.{module}"), function)
        return torch.library.triton_op(qualified_name(op.name, backend), launcher, mutates_args=())
    # cuda: defined by srpose_fast._C when it imported; elsewhere backend="cuda" says why not
    return qualified_name(op.name, backend) if backend == "cuda" and cuda_extension_available() else None


def register(*ops: FusedOp) -> None:
    """Fakes and autograd for every available backend of `ops` (a backward job before the job using it)."""
    for op in ops:
        for backend in op.backends:
            defined = _define(op, backend)
            if defined is None:
                continue
            torch.library.register_fake(defined, op.fake)
            if op.autograd is not None:
                formula = functools.partial(op.autograd.formula, fused_op(op.autograd.backward, backend))
                torch.library.register_autograd(defined, formula, setup_context=op.autograd.setup_context)
