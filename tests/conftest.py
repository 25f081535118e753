"""Shared pytest setup: Triton's interpreter where there is no GPU, and the `cuda` marker."""
import os

import pytest
import torch

if not torch.cuda.is_available():
    # Triton reads this when a @triton.jit function is defined, so it must be set before anything
    # imports srpose_fast.kernels (test modules are imported after this file).
    os.environ.setdefault("TRITON_INTERPRET", "1")


def pytest_collection_modifyitems(config, items):
    if torch.cuda.is_available():
        return
    skip_cuda = pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if "cuda" in item.keywords:
            item.add_marker(skip_cuda)
