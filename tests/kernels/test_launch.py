"""The launchers' shared rules: poisoned buffers, where kernels may run, block sizes."""
import pytest
import torch

pytest.importorskip("triton")
from srpose_fast.kernels import launch  # noqa: E402  (after conftest set the interpreter)
from srpose_fast.kernels.decode import _decode_argmax_kernel  # noqa: E402


def test_poisoned_buffers_are_nan_in_every_dtype(poison_kernel_outputs):
    for dtype in (torch.float32, torch.bfloat16, torch.float16):
        buf = launch.new_buffer((3, 4), torch.device("cpu"), dtype)
        assert buf.dtype == dtype and torch.isnan(buf).all()


def test_unpoisoned_buffers_have_the_asked_shape_and_dtype():
    buf = launch.new_buffer((2, 5), torch.device("cpu"))
    assert buf.shape == (2, 5) and buf.dtype == torch.float32


def test_compiled_kernels_refuse_cpu_tensors_and_interpreted_ones_take_them():
    if launch.interpreted(_decode_argmax_kernel):
        launch.check_kernel_device("op", torch.zeros(1), _decode_argmax_kernel)
    compiled = object()  # anything that is not an interpreted kernel
    with pytest.raises(ValueError, match=r"op \(triton\): needs CUDA tensors.*got a tensor on cpu"):
        launch.check_kernel_device("op", torch.zeros(1), compiled)


@pytest.mark.parametrize("n, block", [(1, 16), (16, 16), (17, 32), (100, 128)])
def test_block_sizes_are_powers_of_two_of_at_least_16(n, block):
    assert launch.pow2_at_least_16(n) == block
