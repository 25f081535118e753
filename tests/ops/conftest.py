"""The backends one op test body runs on (their devices: tests/backends.py).

- "triton": the Triton kernels; compiled on CUDA tensors where there is a GPU, under TRITON_INTERPRET=1 on CPU
  tensors elsewhere (tests/conftest.py sets it).
- "cuda": the CUDA C++ extension srpose_fast._C, marked `cuda` (skipped without a GPU; on a GPU a missing
  extension fails the test instead of hiding it).
- "cpp": the portable C++ decoder (decode only), on CPU tensors; skipped where it is not built.
"""
import pytest

from srpose_fast.deploy import decoder_available


def _param(backend: str):
    marks = {"triton": (),  # the test modules skip themselves where triton is not installed
             "cuda": pytest.mark.cuda,
             "cpp": pytest.mark.skipif(not decoder_available(), reason="the C++ decoder is not built")}[backend]
    return pytest.param(backend, marks=marks, id=backend)


@pytest.fixture(params=[_param("triton"), _param("cuda")])
def fused_backend(request):
    """Each fused backend of sr_head, sr_head_decode and multi_stage_loss."""
    return request.param


@pytest.fixture(params=["torch", _param("triton"), _param("cuda")])
def any_backend(request):
    """The torch reference and each fused backend (for what every backend must do alike, e.g. refuse bad input)."""
    return request.param


@pytest.fixture(params=[_param("triton"), _param("cuda"), _param("cpp")])
def decode_backend(request):
    """Each backend of decode_heatmaps besides the torch reference."""
    return request.param


@pytest.fixture(params=["torch", _param("triton"), _param("cuda"), _param("cpp")])
def any_decode_backend(request):
    """Every backend of decode_heatmaps, the torch reference included."""
    return request.param
