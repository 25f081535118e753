"""Backend selection: what "auto" picks, and the errors for backends that cannot run."""
import numpy as np
import pytest
import torch

from srpose_fast import decode_heatmaps
from srpose_fast.deploy import decoder_available
from srpose_fast.ops.backend import resolve_backend

CPU = torch.device("cpu")


def test_auto_on_the_cpu_is_the_cpp_decoder_for_decode_and_torch_otherwise():
    expected = "cpp" if decoder_available() else "torch"
    assert resolve_backend("auto", CPU, op="decode", supported=("auto", "torch", "triton", "cuda", "cpp")) == expected
    assert resolve_backend("auto", CPU, op="sr_head", supported=("auto", "torch", "triton", "cuda")) == "torch"


def test_auto_on_cuda_prefers_triton():
    assert resolve_backend("auto", torch.device("cuda"), op="x", supported=("auto", "torch", "triton")) == "triton"
    assert resolve_backend("auto", torch.device("cuda"), op="x", supported=("auto", "torch")) == "torch"


@pytest.mark.parametrize("backend, device, error, message", [
    ("opencl", CPU, ValueError, "backend must be one of"),
    ("cuda", CPU, ValueError, "needs CUDA tensors"),
    ("cpp", torch.device("cuda"), ValueError, "decodes CPU inputs"),
    ("triton", CPU, ValueError, "not implemented"),  # an op that has no triton backend
])
def test_clear_errors(backend, device, error, message):
    supported = ("auto", "torch", "cuda", "cpp")
    with pytest.raises(error, match=message):
        resolve_backend(backend, device, op="op", supported=supported)


@pytest.mark.skipif(not decoder_available(), reason="the C++ decoder is not built")
def test_default_cpu_decode_equals_the_torch_reference_for_shift():
    maps = np.random.default_rng(0).random((3, 17, 32, 24), dtype=np.float32)
    fast, fast_scores = decode_heatmaps(maps, method="shift")
    reference, reference_scores = decode_heatmaps(maps, method="shift", backend="torch")
    np.testing.assert_array_equal(fast, reference)
    np.testing.assert_array_equal(fast_scores, reference_scores)


def test_a_cuda_extension_that_is_built_but_does_not_import_warns_and_is_unavailable(monkeypatch):
    from srpose_fast.ops import backend

    def broken_import(name):
        raise ImportError("libcudart.so.13: cannot open shared object file")

    monkeypatch.setattr(backend.importlib.util, "find_spec", lambda name: object())
    monkeypatch.setattr(backend.importlib, "import_module", broken_import)
    with pytest.warns(UserWarning, match="built but does not import.*libcudart"):
        assert backend._import_cuda_extension() is False


def test_an_unbuilt_cuda_extension_is_unavailable_without_a_warning(monkeypatch, recwarn):
    from srpose_fast.ops import backend

    monkeypatch.setattr(backend.importlib.util, "find_spec", lambda name: None)
    assert backend._import_cuda_extension() is False
    assert not recwarn.list
    if not backend.cuda_extension_available():
        with pytest.raises(RuntimeError, match="srpose_fast._C"):
            resolve_backend("cuda", torch.device("cuda"), op="op", supported=("auto", "torch", "cuda"))
