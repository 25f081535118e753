"""The tolerance rules of the op tests, each written once (importable as `tolerances`: pytest puts tests/ on
sys.path).

- fp32 kernels against the fp32 torch reference: the same sums in another order, so ~1e-6 relative to the
  result's largest magnitude; held to `FP32_RTOL` of it.
- 16-bit kernels, judged as flash-attention judges its kernels: against an fp32/fp64 oracle on the same
  (rounded) inputs, the kernel's error is at most twice the error of torch's own op run in that precision,
  plus a slack the caller justifies (the kernel's single rounding of its fp32 result, or the interpreter's
  truncating casts).
- On CUDA the torch reference runs through cuDNN/cuBLAS, whose fp32 convolutions and matmuls default to
  TF32 (about 3e-4 relative error): the `exact_fp32_reference` fixture turns TF32 off for a test, so the
  reference is fp32 and a correct kernel does not fail against it.
"""
import pytest
import torch

FP32_RTOL = 1e-5


def assert_close_fp32(actual: torch.Tensor, expected: torch.Tensor, name: str, rtol: float = FP32_RTOL) -> None:
    """Within `rtol` relative and `rtol` of the expected result's largest magnitude."""
    scale = expected.abs().max().item() + 1e-30 if expected.numel() else 1.0
    torch.testing.assert_close(actual, expected, rtol=rtol, atol=rtol * scale, msg=lambda m: f"{name}: {m}")


def assert_within_twice_torch_error(name: str, got: torch.Tensor, torch_low: torch.Tensor, oracle: torch.Tensor,
                                    slack: float) -> None:
    """max |got - oracle| <= 2 max |torch_low - oracle| + slack (the flash-attention rule)."""
    err = (got.double().cpu() - oracle.double().cpu()).abs().max().item()
    err_torch = (torch_low.double().cpu() - oracle.double().cpu()).abs().max().item()
    assert err <= 2 * err_torch + slack, f"{name}: error {err:.3g} vs torch's {err_torch:.3g} (slack {slack:.3g})"


@pytest.fixture
def exact_fp32_reference():
    """TF32 off for cuDNN convolutions and cuBLAS matmuls during the test (restored after)."""
    saved = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    yield
    torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved
