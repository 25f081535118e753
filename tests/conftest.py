"""Shared pytest setup: Triton's interpreter where there is no GPU, and the `cuda` marker."""
import os
import subprocess
import sys
import textwrap

import pytest
import torch

if not torch.cuda.is_available():
    # Triton reads this when a @triton.jit function is defined, so it must be set before anything
    # imports srpose_fast.kernels (test modules are imported after this file).
    os.environ.setdefault("TRITON_INTERPRET", "1")


@pytest.fixture
def poison_kernel_outputs(monkeypatch):
    """Every buffer the Triton launchers allocate starts as NaN: an element the kernels never write fails.
    Returns `backends.poison_cuda_cache`, to call right before a CUDA C++ op (whose outputs come from the
    allocator)."""
    from backends import poison_cuda_cache
    from srpose_fast.kernels import launch

    monkeypatch.setattr(launch, "POISON_OUTPUTS", True)
    return poison_cuda_cache


@pytest.fixture
def single_thread():
    """One intra-op thread: tiny convolutions are slower with more, and far slower on a busy machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def pytest_collection_modifyitems(config, items):
    if torch.cuda.is_available():
        return
    skip_cuda = pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if "cuda" in item.keywords:
            item.add_marker(skip_cuda)


_HIDE_TRITON = """
import builtins, importlib.util
_find_spec, _import = importlib.util.find_spec, builtins.__import__
def find_spec(name, *args, **kwargs):
    return None if name.partition(".")[0] == "triton" else _find_spec(name, *args, **kwargs)
def hide_triton(name, *args, **kwargs):
    if name.partition(".")[0] == "triton":
        raise ImportError("triton is hidden")
    return _import(name, *args, **kwargs)
importlib.util.find_spec, builtins.__import__ = find_spec, hide_triton
"""


@pytest.fixture
def run_without_triton():
    """Run a script in a fresh interpreter where triton cannot be found or imported; fail on its errors."""
    def run(script: str) -> None:
        code = _HIDE_TRITON + textwrap.dedent(script)
        result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, result.stderr

    return run
