"""srpose_fast.ops.sr_head: the torch reference against an explicit formula, each fused backend (triton,
cuda: tests/ops/conftest.py) against the reference (forward and every gradient), the registered ops, and
input validation.

Without a GPU the Triton kernels run under TRITON_INTERPRET=1 on CPU tensors (tests/conftest.py sets it);
with one, the same tests run the compiled kernels on CUDA tensors, and the CUDA C++ kernels too.
"""

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from srpose_fast.ops.registry import fused_op
from srpose_fast.ops.sr_head import sr_head, sr_head_reference

from backends import DEVICES
from tolerances import assert_close_fp32 as close_fp32
from tolerances import assert_within_twice_torch_error, exact_fp32_reference  # noqa: F401  (a fixture)

pytest.importorskip("triton")

DEVICE = DEVICES["triton"]
# (k, e, r) of the four SR heads in SRPose: converge[0..2] and the final x4 head.
MODEL_CONFIGS = [(3, 16, 8), (5, 8, 4), (7, 4, 2), (9, 4, 4)]


# every buffer the Triton launchers allocate starts as NaN (tests/conftest.py)
pytestmark = pytest.mark.usefixtures("poison_kernel_outputs", "exact_fp32_reference")


def make_inputs(n, joints, e, k, r, h, w, *, dtype=torch.float32, device=DEVICE, seed=0):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n, joints * e, h, w, generator=gen)
    weight = torch.randn(joints * r * r, e, k, k, generator=gen)
    bias = torch.randn(joints * r * r, generator=gen)
    return tuple(t.to(device=device, dtype=dtype) for t in (x, weight, bias))


def forward_and_grads(fn, x, weight, bias, grad_out):
    """fn's output and the gradients of <output, grad_out> w.r.t. x, weight (and bias when given)."""
    leaves = [t.detach().clone().requires_grad_() for t in (x, weight, bias) if t is not None]
    out = fn(leaves[0], leaves[1], leaves[2] if bias is not None else None)
    grads = torch.autograd.grad(out, leaves, grad_out)
    return (out.detach(), *grads)


# --- the oracle itself -----------------------------------------------------------------------------

def test_reference_matches_explicit_formula():
    n, joints, e, k, r, h, w = 2, 2, 3, 3, 2, 3, 4
    x, weight, bias = make_inputs(n, joints, e, k, r, h, w, dtype=torch.float64, device="cpu")
    p = k // 2
    expected = torch.zeros(n, joints, r * h, r * w, dtype=torch.float64)
    for b in range(n):
        for j in range(joints):
            for y in range(h):
                for xx in range(w):
                    for dy in range(r):
                        for dx in range(r):
                            o = j * r * r + dy * r + dx
                            acc = bias[o].item()
                            for c in range(e):
                                for ky in range(k):
                                    for kx in range(k):
                                        iy, ix = y + ky - p, xx + kx - p
                                        if 0 <= iy < h and 0 <= ix < w:
                                            acc += x[b, j * e + c, iy, ix].item() * weight[o, c, ky, kx].item()
                            expected[b, j, y * r + dy, xx * r + dx] = acc
    torch.testing.assert_close(sr_head(x, weight, bias, r, backend="torch"), expected, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(sr_head(x, weight, bias, r), expected, rtol=1e-12, atol=1e-12)  # auto on CPU


# --- each fused backend against the reference ----------------------------------------------------

def check_against_reference(backend, poison, n, joints, e, k, r, h, w, *, with_bias=True, seed=0, dtype=torch.float32):
    device = DEVICES[backend]
    x, weight, bias = make_inputs(n, joints, e, k, r, h, w, dtype=dtype, device=device, seed=seed)
    bias = bias if with_bias else None
    grad_out = torch.randn(n, joints, r * h, r * w, generator=torch.Generator().manual_seed(seed + 1)).to(device, dtype)
    poison()
    got = forward_and_grads(lambda a, b, c: sr_head(a, b, c, r, backend=backend), x, weight, bias, grad_out)
    want = forward_and_grads(lambda a, b, c: sr_head_reference(a, b, c, r), x, weight, bias, grad_out)
    for name, g, ref in zip(("out", "grad_x", "grad_weight", "grad_bias"), got, want):
        assert g.shape == ref.shape and g.dtype == ref.dtype and g.is_contiguous(), name
        close_fp32(g, ref, name)


@pytest.mark.parametrize("k,e,r", MODEL_CONFIGS)
@pytest.mark.parametrize("n,joints,h,w", [(1, 17, 5, 3), (2, 3, 6, 4)])
def test_matches_reference_model_configs(fused_backend, poison_kernel_outputs, k, e, r, n, joints, h, w):
    check_against_reference(fused_backend, poison_kernel_outputs, n, joints, e, k, r, h, w)


def test_without_bias(fused_backend, poison_kernel_outputs):
    check_against_reference(fused_backend, poison_kernel_outputs, 2, 3, 4, 5, 2, 4, 3, with_bias=False)


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    k=st.sampled_from([1, 3, 5]), e=st.integers(1, 5), r=st.integers(1, 3), joints=st.integers(1, 4),
    n=st.integers(1, 2), h=st.integers(1, 6), w=st.integers(1, 6), with_bias=st.booleans(),
)
def test_matches_reference_random_shapes(fused_backend, poison_kernel_outputs, k, e, r, joints, n, h, w, with_bias):
    check_against_reference(fused_backend, poison_kernel_outputs, n, joints, e, k, r, h, w, with_bias=with_bias)


def test_non_contiguous_inputs_and_broadcast_grad(fused_backend, poison_kernel_outputs):
    n, joints, e, k, r, h, w = 2, 3, 4, 3, 2, 5, 4
    x, weight, bias = make_inputs(n, joints, e, k, r, h, w, device=DEVICES[fused_backend])
    x = x.to(memory_format=torch.channels_last)
    weight = weight.transpose(2, 3).contiguous().transpose(2, 3)  # same values, permuted strides
    results = []
    for fn in (lambda a, b, c: sr_head(a, b, c, r, backend=fused_backend),
               lambda a, b, c: sr_head_reference(a, b, c, r)):
        leaves = [t.detach().clone().requires_grad_() for t in (x, weight, bias)]
        poison_kernel_outputs()
        out = fn(*leaves)
        out.sum().backward()  # grad_out is an expanded scalar: every stride is 0
        results.append((out.detach(), *(t.grad for t in leaves)))
    for name, g, ref in zip(("out", "grad_x", "grad_weight", "grad_bias"), *results):
        close_fp32(g, ref, name)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
@pytest.mark.parametrize("k,e,r", [(3, 16, 8), (9, 4, 4)])
def test_low_precision(fused_backend, poison_kernel_outputs, dtype, k, e, r):
    """Judged as flash-attention does (tests/tolerances.py), plus one unit of `dtype` at the output's scale:
    the kernels round their fp32 result once (<= 0.5 ulp), and under the interpreter the fp32 -> bf16 cast
    truncates instead of rounding to nearest; far below the O(1) error of a wrong index or tap."""
    n, joints, h, w = 2, 3, 5, 4
    x, weight, bias = make_inputs(n, joints, e, k, r, h, w, dtype=dtype, device=DEVICES[fused_backend])
    grad_out = torch.randn(n, joints, r * h, r * w, generator=torch.Generator().manual_seed(7)).to(x.device, dtype)
    poison_kernel_outputs()
    got = forward_and_grads(lambda a, b, c: sr_head(a, b, c, r, backend=fused_backend), x, weight, bias, grad_out)
    low = forward_and_grads(lambda a, b, c: sr_head_reference(a, b, c, r), x, weight, bias, grad_out)
    exact = forward_and_grads(lambda a, b, c: sr_head_reference(a, b, c, r),
                              *(t.double() for t in (x, weight, bias, grad_out)))
    eps = torch.finfo(dtype).eps
    for name, g, lo, ex in zip(("out", "grad_x", "grad_weight", "grad_bias"), got, low, exact):
        assert g.dtype == dtype, name
        assert_within_twice_torch_error(name, g, lo, ex, slack=eps * ex.abs().max().item())


# --- registered ops -------------------------------------------------------------------------------

# Under the interpreter, triton_op's functional decomposition (used by AOTAutograd, hence by
# opcheck's test_aot_dispatch_* and by torch.compile's aot backends) would hand fake tensors to the
# interpreted kernel, which reads real memory; so on CPU opcheck runs the checks that do not trace
# into the kernels, and the full opcheck runs on CUDA below.
CPU_OPCHECK_UTILS = ("test_schema", "test_autograd_registration", "test_faketensor")


def opcheck_cases(backend):
    device = DEVICES[backend]
    x, weight, bias = make_inputs(2, 3, 4, 3, 2, 4, 3, device=device)
    grad_out = torch.randn(2, 3, 8, 6).to(device)
    forward, backward = fused_op("sr_head", backend).default, fused_op("sr_head_backward", backend).default
    return [
        (forward, (x, weight, bias, 2)),
        (forward, (x.requires_grad_(), weight.requires_grad_(), None, 2)),
        (backward, (grad_out, x.detach(), weight.detach(), 2)),
        # the fake's grad_x must be contiguous like the kernels', whatever x's strides (it kept channels-last)
        (backward, (grad_out, x.detach().to(memory_format=torch.channels_last), weight.detach(), 2)),
    ]


def test_opcheck(fused_backend):
    utils = CPU_OPCHECK_UTILS if DEVICES[fused_backend] == "cpu" else CPU_OPCHECK_UTILS + ("test_aot_dispatch_dynamic",)
    for op, args in opcheck_cases(fused_backend):
        torch.library.opcheck(op, args, test_utils=utils)


def test_compile_fullgraph_smoke(fused_backend):
    # backend="eager": Dynamo traces sr_head into one graph (no break) using the registered fake;
    # the aot/inductor backends need real kernels (see above) and are tested on CUDA.
    n, joints, e, k, r, h, w = 1, 2, 3, 3, 2, 4, 3
    x, weight, bias = make_inputs(n, joints, e, k, r, h, w, device=DEVICES[fused_backend])
    compiled = torch.compile(lambda a, b, c: sr_head(a, b, c, r, backend=fused_backend), fullgraph=True,
                             backend="eager")
    close_fp32(compiled(x, weight, bias), sr_head_reference(x, weight, bias, r), "compiled out")


@pytest.mark.cuda
def test_compile_fullgraph_inductor_cuda(fused_backend):
    n, joints, e, k, r, h, w = 2, 17, 4, 9, 4, 16, 12
    x, weight, bias = make_inputs(n, joints, e, k, r, h, w, device="cuda")
    grad_out = torch.randn(n, joints, r * h, r * w, device="cuda")
    compiled = torch.compile(lambda a, b, c: sr_head(a, b, c, r, backend=fused_backend), fullgraph=True)
    got = forward_and_grads(compiled, x, weight, bias, grad_out)
    want = forward_and_grads(lambda a, b, c: sr_head_reference(a, b, c, r), x, weight, bias, grad_out)
    for name, g, ref in zip(("out", "grad_x", "grad_weight", "grad_bias"), got, want):
        close_fp32(g, ref, name)


@pytest.mark.cuda
@pytest.mark.parametrize("k,e,r", MODEL_CONFIGS)
def test_model_sizes_cuda(fused_backend, poison_kernel_outputs, k, e, r):
    # The model's real map sizes (64x48 input for the x4 head, 8x6..32x24 elsewhere), batch 4.
    h, w = (64, 48) if (k, e, r) == (9, 4, 4) else (32 // r * 2, 24 // r * 2)
    check_against_reference(fused_backend, poison_kernel_outputs, 4, 17, e, k, r, h, w)


# --- input validation -----------------------------------------------------------------------------

def bad_input_cases():
    x, weight, bias = make_inputs(1, 2, 3, 3, 2, 4, 4)
    return [
        ("rank", (x[0], weight, bias, 2), "x must be"),
        ("weight rank", (x, weight[..., 0], bias, 2), "weight must be"),
        ("channels", (x[:, :5], weight, bias, 2), "channels"),
        ("even k", (x, weight[..., :2, :2], bias, 2), "odd k"),
        ("upscale 0", (x, weight, bias, 0), "upscale"),
        ("upscale float", (x, weight, bias, 2.0), "upscale"),
        ("upscale mismatch", (x, weight, bias, 3), "upscale"),
        ("bias shape", (x, weight, bias[:-1], 2), "bias"),
        ("device", (x, weight.to("meta"), bias, 2), "same device"),
    ]


@pytest.mark.parametrize("case", bad_input_cases(), ids=lambda c: c[0])
def test_bad_inputs_raise_value_error(any_backend, case):
    _, args, message = case
    with pytest.raises(ValueError, match=f"sr_head: .*{message}"):
        sr_head(*args, backend=any_backend)


def test_triton_rejects_float64_and_mixed_dtypes():
    x, weight, bias = make_inputs(1, 2, 3, 3, 2, 4, 4)
    with pytest.raises(ValueError, match="dtype"):
        sr_head(x.double(), weight.double(), bias.double(), 2, backend="triton")
    with pytest.raises(ValueError, match="dtype"):
        sr_head(x, weight.half(), bias, 2, backend="triton")


def test_import_and_torch_backend_without_triton(run_without_triton):
    """`import srpose_fast.ops` neither imports nor needs triton when it is absent; backend="triton" then
    says what is missing. Run in a fresh interpreter where importing triton fails."""
    run_without_triton("""
        import sys
        import torch
        from srpose_fast.ops import sr_head
        x, w = torch.randn(1, 4, 3, 3), torch.randn(8, 2, 3, 3)
        assert sr_head(x, w, None, 2).shape == (1, 2, 6, 6)
        assert "triton" not in sys.modules and not hasattr(torch.ops.srpose_fast, "sr_head_triton")
        try:
            sr_head(x, w, None, 2, backend="triton")
        except RuntimeError as err:
            assert "triton" in str(err)
        else:
            raise AssertionError("backend='triton' without triton did not raise")
    """)


def test_triton_backend_follows_autocast_like_conv2d():
    # The trainer runs under bf16 autocast with fp32 parameters: the op must cast as conv2d does.
    torch.manual_seed(0)
    x = torch.randn(1, 3 * 4, 5, 4)
    weight = torch.randn(3 * 4, 4, 3, 3, requires_grad=True)
    bias = torch.randn(3 * 4, requires_grad=True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = sr_head(x, weight, bias, 2, backend="triton")
        expected = sr_head(x, weight, bias, 2, backend="torch")
    assert out.dtype == expected.dtype == torch.bfloat16
    torch.testing.assert_close(out.float(), expected.float(), rtol=2e-2, atol=2e-2)
    out.float().sum().backward()
    assert weight.grad.dtype == torch.float32 and torch.isfinite(weight.grad).all()
