"""srpose_fast.ops.multi_stage_loss: the torch backend against a hand computation and the per-joint
reference; each fused backend (triton, cuda: tests/ops/conftest.py; targets made in the kernels) against the
torch backend (which materialises the targets), per target method, shape, weight rule and dtype; the
registered ops; and that no target tensor is ever made.

Without a GPU the Triton kernels run under TRITON_INTERPRET=1 on CPU tensors (tests/conftest.py sets it);
with one, the same tests run the compiled kernels on CUDA tensors, and the CUDA C++ kernels too.
"""
import functools
import importlib
import math

import pytest
import torch
import torch.nn.functional as F
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from srpose_fast.codecs.targets import encode_heatmaps
from srpose_fast.ops.multi_stage_loss import SUPPORTED_BACKENDS, TARGET_METHODS, multi_stage_loss
from srpose_fast.ops.registry import fused_op
from srpose_fast.reference.loss import srpose_losses
from srpose_fast.reference.pipeline import make_targets

from backends import DEVICES
from new_tensors import RecordNewTensors
from tolerances import assert_close_fp32, assert_within_twice_torch_error

pytest.importorskip("triton")
from srpose_fast.kernels import multi_stage_loss as msl_kernels  # noqa: E402  (after conftest set the interpreter)

msl_module = importlib.import_module("srpose_fast.ops.multi_stage_loss")  # the module, not the function
DEVICE = DEVICES["triton"]
# SRPose's 8x6 / 64x48 / 256x192 outputs scaled down by 8 (blocks of 8x8 and 4x4 full-resolution pixels).
SMALL_SIZES = [(4, 3), (8, 6), (32, 24)]


# every buffer the Triton launchers allocate starts as NaN (tests/conftest.py)
pytestmark = pytest.mark.usefixtures("poison_kernel_outputs")


def make_preds(n, k, sizes, *, dtype=torch.float32, seed=0):
    gen = torch.Generator().manual_seed(seed)
    # Values near the targets' range, so pred - t is not dominated by pred.
    return [torch.rand(n, k, h, w, generator=gen).mul(0.5).to(dtype) for h, w in sizes]


@pytest.fixture
def check(fused_backend, poison_kernel_outputs):
    """`check_against_torch` on each fused backend, with poisoned outputs."""
    return functools.partial(check_against_torch, fused_backend, poison_kernel_outputs)


def loss_and_grads(preds, keypoints, weight, **kwargs):
    leaves = [p.detach().clone().requires_grad_() for p in preds]
    loss = multi_stage_loss(leaves, keypoints, weight, **kwargs)
    return loss.detach(), torch.autograd.grad(loss, leaves)


def close_fp32(actual, expected, name):
    # fp32 sums in a different order (and block means taken per axis)
    assert_close_fp32(actual, expected, name)


def on(backend, *tensors):
    """The tensors (or lists of them) on `backend`'s device."""
    return [[t.to(DEVICES[backend]) for t in x] if isinstance(x, list) else x.to(DEVICES[backend]) for x in tensors]


def check_against_torch(backend, poison, preds, keypoints, weight, **kwargs):
    preds, keypoints, weight = on(backend, preds, keypoints, weight)
    poison()
    loss, grads = loss_and_grads(preds, keypoints, weight, backend=backend, **kwargs)
    ref_loss, ref_grads = loss_and_grads(preds, keypoints, weight, backend="torch", **kwargs)
    assert loss.dtype == torch.float32 and loss.shape == ()
    close_fp32(loss, ref_loss, "loss")
    for i, (g, r) in enumerate(zip(grads, ref_grads)):
        assert g.dtype == preds[i].dtype and g.shape == preds[i].shape
        close_fp32(g, r, f"grad of preds[{i}]")


def edge_keypoints(n, k, width, height, seed=0):
    """Random keypoints over and around the map, with a few fixed ones on the edge cases of the bounds."""
    gen = torch.Generator().manual_seed(seed)
    kp = torch.rand(n, k, 2, generator=gen) * torch.tensor([width + 20.0, height + 20.0]) - 10.0
    fixed = torch.tensor([
        [-0.6, 5.0],            # trunc(-0.1) = 0, where floor would give -1
        [width - 0.5, 3.0],     # mu = W: window still partly inside for msra/udp
        [5.0, -40.0],           # far above the map: weight zeroed
        [width + 40.0, 2.0],    # far right
        [3.3, height - 1.0],
        [-7.5, -8.49],
    ])
    flat = kp.view(-1, 2)
    m = min(len(fixed), flat.shape[0])
    flat[:m] = fixed[:m]
    return kp


def edge_weights(n, k, seed=0):
    """Visibility 0, 0.3 (kept as a weight, no Gaussian drawn: > 0.5 rule), 0.6 and 1."""
    gen = torch.Generator().manual_seed(seed)
    choices = torch.tensor([0.0, 0.3, 0.6, 1.0, 1.0])
    return choices[torch.randint(len(choices), (n, k), generator=gen)]


# --- the torch backend -----------------------------------------------------------------------------

def test_single_joint_matches_hand_computation():
    # One visible joint at an integer centre far from the border, a zero prediction:
    # the loss is sum(g^2) / (N K H W) with g the windowed Gaussian, radius 3 sigma.
    sigma, height, width = 1.0, 16, 12
    pred = torch.zeros(1, 2, height, width, requires_grad=True)
    keypoints = torch.tensor([[[5.0, 7.0], [3.0, 3.0]]])
    weight = torch.tensor([[1.0, 0.0]])
    loss = multi_stage_loss([pred], keypoints, weight, sigma=sigma, stage_weights=(1.0,))
    one_axis = sum(math.exp(-d * d / (2 * sigma ** 2)) ** 2 for d in range(-3, 4))
    assert loss.item() == pytest.approx(one_axis ** 2 / (2 * height * width), rel=1e-6)
    loss.backward()
    # d/dpred of mean((pred - t)^2) = 2 (pred - t) / count, zero for the weightless joint.
    assert pred.grad[0, 0, 7, 5].item() == pytest.approx(-2.0 / (2 * height * width), rel=1e-6)
    assert torch.all(pred.grad[0, 1] == 0)


def test_stage_weights_and_pooled_targets():
    torch.manual_seed(0)
    full = torch.rand(2, 3, 32, 24)
    low = torch.rand(2, 3, 4, 3)
    keypoints = torch.rand(2, 3, 2) * torch.tensor([24.0, 32.0])
    weight = torch.ones(2, 3)
    both = multi_stage_loss([low, full], keypoints, weight, sigma=2.0, stage_weights=(0.5, 2.0))
    only_low = multi_stage_loss([low, full], keypoints, weight, sigma=2.0, stage_weights=(1.0, 0.0))
    only_full = multi_stage_loss([low, full], keypoints, weight, sigma=2.0, stage_weights=(0.0, 1.0))
    torch.testing.assert_close(both, 0.5 * only_low + 2.0 * only_full)
    # The low-resolution stage is compared with the 8x8 block means of the full target.
    target, _ = make_targets(keypoints.numpy(), weight.numpy(), (24, 32), 2.0)
    pooled = target.reshape(2, 3, 4, 8, 3, 8).mean(axis=(3, 5))
    expected = ((low.numpy() - pooled) ** 2).mean()
    assert only_low.item() == pytest.approx(expected, rel=1e-5)


def test_matches_the_per_joint_reference_on_srpose_shapes():
    torch.manual_seed(1)
    n, k = 2, 17
    sizes = [(8, 6), (64, 48), (64, 48), (64, 48), (256, 192)]
    preds = [torch.rand(n, k, h, w, requires_grad=True) for h, w in sizes]
    keypoints = torch.rand(n, k, 2) * torch.tensor([230.0, 300.0]) - 20  # some fall off the map
    visible = (torch.rand(n, k) > 0.2).float()
    loss = multi_stage_loss(preds, keypoints, visible)
    target, target_weight = make_targets(keypoints.numpy(), visible.numpy(), (192, 256), 8.0)
    reference = sum(srpose_losses(preds, torch.from_numpy(target), torch.from_numpy(target_weight)).values())
    torch.testing.assert_close(loss, reference, rtol=1e-5, atol=1e-8)
    grads = torch.autograd.grad(loss, preds)
    reference_grads = torch.autograd.grad(reference, preds)
    for g, r in zip(grads, reference_grads):
        # fp32 sums in a different order: relative 1e-5 of the gradient's own scale.
        torch.testing.assert_close(g, r, rtol=1e-5, atol=1e-5 * r.abs().max().item())


def test_low_precision_predictions_give_a_float32_loss():
    preds = [torch.rand(1, 2, 8, 8, dtype=torch.bfloat16)]
    loss = multi_stage_loss(preds, torch.full((1, 2, 2), 4.0), torch.ones(1, 2), sigma=1.0, stage_weights=(1.0,))
    assert loss.dtype == torch.float32 and torch.isfinite(loss)


@pytest.mark.parametrize("kwargs, message", [
    (dict(preds=[], keypoints=torch.zeros(1, 2, 2), target_weight=torch.ones(1, 2)), "empty"),
    (dict(preds=[torch.zeros(1, 2, 8, 8)], keypoints=torch.zeros(1, 3, 2), target_weight=torch.ones(1, 2)),
     "keypoints must be"),
    (dict(preds=[torch.zeros(1, 2, 8, 8)], keypoints=torch.zeros(1, 2, 2), target_weight=torch.ones(2, 2)),
     "target_weight must be"),
    (dict(preds=[torch.zeros(1, 2, 8)], keypoints=torch.zeros(1, 2, 2), target_weight=torch.ones(1, 2)),
     "must be \\(N=1, K=2, H, W\\)"),
    (dict(preds=[torch.zeros(1, 2, 3, 3), torch.zeros(1, 2, 8, 8)], keypoints=torch.zeros(1, 2, 2),
          target_weight=torch.ones(1, 2)), "does not divide"),
])
def test_bad_inputs_raise_clear_errors(kwargs, message):
    stage_weights = (1.0,) * len(kwargs["preds"])
    with pytest.raises(ValueError, match=message):
        multi_stage_loss(**kwargs, stage_weights=stage_weights)


def test_stage_weight_count_and_sigma_and_method_are_checked():
    args = ([torch.zeros(1, 2, 8, 8)], torch.zeros(1, 2, 2), torch.ones(1, 2))
    with pytest.raises(ValueError, match="stage weights"):
        multi_stage_loss(*args)
    with pytest.raises(ValueError, match="sigma"):
        multi_stage_loss(*args, sigma=0.0, stage_weights=(1.0,))
    with pytest.raises(ValueError, match="target_method"):
        multi_stage_loss(*args, stage_weights=(1.0,), target_method="gaussian")
    with pytest.raises(ValueError, match="backend"):
        multi_stage_loss(*args, stage_weights=(1.0,), backend="opencl")


# --- each fused backend against the torch backend --------------------------------------------------------------------

@pytest.mark.parametrize("method", TARGET_METHODS)
def test_matches_torch_backend_on_scaled_srpose_shapes(check, method):
    n, k = 2, 3
    preds = make_preds(n, k, SMALL_SIZES)
    keypoints = edge_keypoints(n, k, 24, 32)
    weight = torch.tensor([[1.0, 0.3, 1.0], [0.0, 1.0, 0.6]])
    check(preds, keypoints, weight, sigma=2.0, stage_weights=(0.5, 1.0, 2.0), target_method=method)


@pytest.mark.parametrize("method", TARGET_METHODS)
@pytest.mark.parametrize("sigma", [1.7, 0.7, 2.5])
def test_fractional_three_sigma(check, method, sigma):
    # 3 sigma = 5.1, 2.1 (not an fp32 number: the kernel gets it as an fp32 pair) and 7.5: the window
    # centre moves off mu (mmpose's quirk) and the bounds must truncate exactly as the float64 reference.
    n, k = 2, 5
    preds = make_preds(n, k, [(4, 3), (16, 12)], seed=1)
    keypoints = edge_keypoints(n, k, 12, 16, seed=1)
    check(preds, keypoints, edge_weights(n, k, seed=1), sigma=sigma, stage_weights=(1.0, 1.0),
                        target_method=method)


@pytest.mark.parametrize("method", TARGET_METHODS)
def test_keypoints_on_the_bounds_of_the_map(check, method):
    # sigma 2, 24 wide: "unbiased" drops x >= 30 (ul = x - 6 >= 24) and x < -7 (br = x + 7 < 0);
    # msra/udp drop x >= 29.5 (mu >= 30) and x <= -8.5 (mu <= -8, truncating toward zero).
    xs = [29.49, 29.5, 29.99, 30.0, -6.99, -7.0, -7.01, -8.49, -8.5, -0.5, -0.6, 23.5]
    keypoints = torch.tensor([[[x, 10.0] for x in xs], [[10.0, x + 8.0] for x in xs]], dtype=torch.float64)
    weight = torch.ones(2, len(xs), dtype=torch.float64)
    preds = make_preds(2, len(xs), [(8, 6), (32, 24)], seed=2)
    check(preds, keypoints, weight, sigma=2.0, stage_weights=(1.0, 1.0), target_method=method)
    # The weight rule itself: the joints the reference zeroes give no loss to the triton backend either.
    _, eff = encode_heatmaps(keypoints.cpu(), weight.cpu().float(), (32, 24), 2.0, method=method)
    assert 0 < int((eff == 0).sum()) < eff.numel()


def test_weight_rule_zero_fractional_and_unit(any_backend):
    # One joint at the centre, pred = 0: weight 0 -> no loss; 0.3 -> no Gaussian (<= 0.5), loss 0;
    # 0.6 -> Gaussian drawn, loss scaled by 0.36 against weight 1.
    device = DEVICES[any_backend]
    keypoints = torch.full((1, 4, 2), 12.0, device=device)
    weight = torch.tensor([[0.0, 0.3, 0.6, 1.0]], device=device)
    pred = torch.zeros(1, 4, 24, 24, device=device, requires_grad=True)
    loss = multi_stage_loss([pred], keypoints, weight, sigma=2.0, stage_weights=(1.0,), backend=any_backend)
    (grad,) = torch.autograd.grad(loss, [pred])
    per_joint = grad.abs().sum(dim=(0, 2, 3))
    assert per_joint[0] == 0 and per_joint[1] == 0
    torch.testing.assert_close(per_joint[2], 0.36 * per_joint[3], rtol=1e-5, atol=0)
    # And with a non-zero pred, weight 0.3 still counts (against a zero target).
    pred2 = torch.ones(1, 4, 24, 24, device=device)
    only_03 = torch.tensor([[0.0, 0.3, 0.0, 0.0]], device=device)
    loss2 = multi_stage_loss([pred2], keypoints, only_03, sigma=2.0, stage_weights=(1.0,), backend=any_backend)
    torch.testing.assert_close(loss2, torch.tensor(0.09 / 4, device=device), rtol=1e-6, atol=0)


def test_srpose_stage_weights_and_target_weight_with_trailing_dim(check):
    n, k = 2, 3
    sizes = [(2, 3), (16, 24), (16, 24), (16, 24), (64, 96)]  # SRPose's five outputs, 1/4 the size, wide maps
    preds = make_preds(n, k, sizes, seed=3)
    keypoints = edge_keypoints(n, k, 96, 64, seed=3)
    weight = edge_weights(n, k, seed=3)[..., None]
    check(preds, keypoints, weight, sigma=2.0, target_method="msra")


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    n=st.integers(1, 2), k=st.sampled_from([1, 3, 5]), h=st.integers(1, 7), w=st.integers(1, 7),
    bh=st.integers(1, 4), bw=st.integers(1, 4), sigma=st.floats(0.4, 3.0),
    method=st.sampled_from(TARGET_METHODS), seed=st.integers(0, 2 ** 16),
)
def test_odd_shapes_against_torch_backend(check, n, k, h, w, bh, bw, sigma, method, seed):
    preds = make_preds(n, k, [(h, w), (h * bh, w * bw)], seed=seed)
    keypoints = edge_keypoints(n, k, w * bw, h * bh, seed=seed)
    check(preds, keypoints, edge_weights(n, k, seed=seed), sigma=sigma, stage_weights=(0.7, 1.0),
                        target_method=method)


def test_non_contiguous_prediction(check):
    base = make_preds(2, 3, [(24, 32)], seed=4)[0]
    pred = base.transpose(2, 3)  # (2, 3, 32, 24), strides not row-major
    low = make_preds(2, 3, [(8, 6)], seed=5)[0]
    check([low, pred], edge_keypoints(2, 3, 24, 32), edge_weights(2, 3), sigma=2.0,
                        stage_weights=(1.0, 1.0), target_method="udp")


# --- low precision, judged against an fp64 oracle --------------------------------------------------

def fp64_oracle(preds, keypoints, weight, sigma, stage_weights, method):
    """The loss and gradients in fp64 from the (fp32) reference targets; preds taken at their stored values."""
    height, width = preds[-1].shape[-2:]
    target, eff = encode_heatmaps(keypoints.cpu(), weight.cpu().float(), (height, width), sigma, method=method)
    leaves = [p.detach().cpu().double().requires_grad_() for p in preds]
    total = 0.0
    for p, sw in zip(leaves, stage_weights):
        t = F.adaptive_avg_pool2d(target.double(), p.shape[-2:])
        total = total + sw * ((p - t) * eff.double()[:, :, None, None]).square().mean()
    return total.detach(), torch.autograd.grad(total, leaves)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
@pytest.mark.parametrize("method", TARGET_METHODS)
def test_low_precision_error_at_most_twice_torch_backend(fused_backend, poison_kernel_outputs, dtype, method):
    n, k = 2, 3
    preds, keypoints, weight = on(fused_backend, make_preds(n, k, SMALL_SIZES, dtype=dtype, seed=6),
                                  edge_keypoints(n, k, 24, 32, seed=6), edge_weights(n, k, seed=6))
    kwargs = dict(sigma=2.0, stage_weights=(0.5, 1.0, 2.0), target_method=method)
    poison_kernel_outputs()
    loss, grads = loss_and_grads(preds, keypoints, weight, backend=fused_backend, **kwargs)
    ref_loss, ref_grads = loss_and_grads(preds, keypoints, weight, backend="torch", **kwargs)
    ex_loss, ex_grads = fp64_oracle(preds, keypoints, weight, 2.0, kwargs["stage_weights"], method)
    eps = torch.finfo(dtype).eps
    for name, got, ref, ex in [("loss", loss, ref_loss, ex_loss)] + [
            (f"grad {i}", g, r, e) for i, (g, r, e) in enumerate(zip(grads, ref_grads, ex_grads))]:
        assert got.dtype == ref.dtype
        # The loss is fp32 in both backends: its error is fp32 rounding, far below eps * |loss|.
        assert_within_twice_torch_error(name, got, ref, ex, slack=1e-2 * eps * ex.abs().max().item())


# --- the poison, the registered ops, compile ------------------------------------------------------


# Under the interpreter, triton_op's functional decomposition (used by AOTAutograd, hence by opcheck's
# test_aot_dispatch_* and by torch.compile's aot backends) would hand fake tensors to the interpreted
# kernel, which reads real memory; so on CPU opcheck runs the checks that do not trace into the kernels,
# and the aot_dispatch check runs on CUDA.
CPU_OPCHECK_UTILS = ("test_schema", "test_autograd_registration", "test_faketensor")


def test_opcheck(fused_backend):
    pred, keypoints, weight = on(fused_backend, make_preds(2, 3, [(8, 6)])[0], edge_keypoints(2, 3, 24, 32),
                                 edge_weights(2, 3))
    grad_loss = torch.tensor(1.5, device=pred.device)
    device = DEVICES[fused_backend]
    utils = CPU_OPCHECK_UTILS if device == "cpu" else CPU_OPCHECK_UTILS + ("test_aot_dispatch_dynamic",)
    for method in TARGET_METHODS:
        args = (keypoints, weight, 2.0, 32, 24, method)
        torch.library.opcheck(fused_op("heatmap_mse_loss", fused_backend).default,
                              (pred.clone().requires_grad_(), *args), test_utils=utils)
        torch.library.opcheck(fused_op("heatmap_mse_loss_backward", fused_backend).default, (grad_loss, pred, *args),
                              test_utils=utils)


def test_backward_op_scales_with_grad_loss(fused_backend):
    pred, keypoints, weight = on(fused_backend, make_preds(1, 2, [(8, 6)])[0], edge_keypoints(1, 2, 24, 32),
                                 edge_weights(1, 2))
    args = (pred, keypoints, weight, 2.0, 32, 24, "msra")
    backward = fused_op("heatmap_mse_loss_backward", fused_backend)
    one = backward(torch.tensor(1.0, device=pred.device), *args)
    three = backward(torch.tensor(-3.0, device=pred.device), *args)
    torch.testing.assert_close(three, -3.0 * one)


def test_compile_fullgraph_smoke(fused_backend):
    # backend="eager": Dynamo traces the loss into one graph (no break) around the registered op;
    # the aot/inductor backends need real kernels (see above) and are tested on CUDA.
    preds, keypoints, weight = on(fused_backend, make_preds(2, 3, SMALL_SIZES), edge_keypoints(2, 3, 24, 32),
                                  edge_weights(2, 3))
    fn = torch.compile(lambda *p: multi_stage_loss(list(p), keypoints, weight, sigma=2.0,
                                                   stage_weights=(1e-4, 1.0, 1.0), backend=fused_backend),
                       fullgraph=True, backend="eager")
    leaves = [p.clone().requires_grad_() for p in preds]
    loss = fn(*leaves)
    grads = torch.autograd.grad(loss, leaves)
    ref_loss, ref_grads = loss_and_grads(preds, keypoints, weight, sigma=2.0, stage_weights=(1e-4, 1.0, 1.0),
                                         backend="torch")
    close_fp32(loss.detach(), ref_loss, "compiled loss")
    for i, (g, r) in enumerate(zip(grads, ref_grads)):
        close_fp32(g, r, f"compiled grad {i}")


# --- no target is materialised --------------------------------------------------------------------

def large_outputs(backend, preds, keypoints, weight):
    """Shapes of the tensors of at least N*K*(smallest map's pixels) elements that the forward pass
    and the backward pass create: any target (full-resolution or pooled) is at least that large."""
    n, k = keypoints.shape[:2]
    threshold = n * k * min(p.shape[-2] * p.shape[-1] for p in preds)
    leaves = [p.detach().clone().requires_grad_() for p in preds]
    with RecordNewTensors() as fwd:
        loss = multi_stage_loss(leaves, keypoints, weight, sigma=2.0, stage_weights=(1e-4, 1.0, 1.0),
                                backend=backend)
    with RecordNewTensors() as bwd:
        torch.autograd.grad(loss, leaves)
    big = lambda shapes: [s for s in shapes if torch.Size(s).numel() >= threshold]  # noqa: E731
    return big(fwd.shapes), big(bwd.shapes)


def test_no_target_tensor_is_materialised(fused_backend, monkeypatch):
    preds, keypoints, weight = on(fused_backend, make_preds(2, 3, SMALL_SIZES), edge_keypoints(2, 3, 24, 32),
                                  edge_weights(2, 3))
    # The detector works: the torch backend's targets show up (a full-resolution one and pooled copies).
    fwd_torch, _ = large_outputs("torch", preds, keypoints, weight)
    assert (2, 3, 32, 24) in fwd_torch and (2, 3, 4, 3) in fwd_torch
    # The triton backend: nothing large in the forward pass; in the backward pass only one gradient per
    # prediction, in its shape.
    fwd, bwd = large_outputs(fused_backend, preds, keypoints, weight)
    assert fwd == []
    assert sorted(bwd) == sorted(tuple(p.shape) for p in preds)
    # And the target encoder is never called on that path.
    monkeypatch.setattr(msl_module, "encode_heatmaps", lambda *a, **kw: pytest.fail("encode_heatmaps called"))
    multi_stage_loss(preds, keypoints, weight, sigma=2.0, stage_weights=(1e-4, 1.0, 1.0), backend=fused_backend)


# --- backend choice and validation ---------------------------------------------------------------

@pytest.mark.parametrize("bad, message", [
    (dict(pred=torch.zeros(1, 2, 8, 6, dtype=torch.float64)), "float32, float16 or bfloat16"),
    (dict(full_h=31), "whole multiple"),
    (dict(method="gaussian"), "method"),
    (dict(sigma=0.0), "sigma"),
    (dict(keypoints=torch.zeros(1, 3, 2)), "keypoints must be"),
    (dict(weight=torch.ones(2, 2)), "weight must be"),
])
def test_kernel_launcher_rejects_bad_inputs(bad, message):
    args = dict(pred=torch.zeros(1, 2, 8, 6), keypoints=torch.zeros(1, 2, 2), weight=torch.ones(1, 2),
                sigma=2.0, full_h=32, full_w=24, method="msra")
    args.update(bad)
    args = {key: value.to(DEVICE) if isinstance(value, torch.Tensor) else value for key, value in args.items()}
    with pytest.raises(ValueError, match=message):
        msl_kernels.heatmap_mse_loss_forward(**args)


# --- CUDA only ------------------------------------------------------------------------------------

@pytest.mark.cuda
def test_auto_picks_triton_on_cuda():
    from srpose_fast.ops.backend import resolve_backend
    assert resolve_backend("auto", torch.device("cuda"), op="multi_stage_loss",
                           supported=SUPPORTED_BACKENDS) in ("triton", "cuda")


@pytest.mark.cuda
@pytest.mark.parametrize("method", TARGET_METHODS)
def test_srpose_sizes_cuda(check, method):
    # The real outputs (8x6, 3 x 64x48, 256x192), 17 joints, sigma 8, the SRPose stage weights.
    n, k = 4, 17
    preds = make_preds(n, k, [(8, 6), (64, 48), (64, 48), (64, 48), (256, 192)], seed=7)
    keypoints = edge_keypoints(n, k, 192, 256, seed=7)
    check(preds, keypoints, edge_weights(n, k, seed=7), sigma=8.0, target_method=method)


@pytest.mark.cuda
def test_compile_fullgraph_inductor_cuda(fused_backend):
    # Not under the interpreter: inductor's aot tracing runs triton_op's body on fake tensors (see opcheck).
    preds = make_preds(2, 17, [(8, 6), (64, 48), (256, 192)], seed=8)
    keypoints, weight = edge_keypoints(2, 17, 192, 256, seed=8), edge_weights(2, 17, seed=8)
    kwargs = dict(sigma=8.0, stage_weights=(1e-4, 1.0, 1.0))
    fn = torch.compile(lambda *p: multi_stage_loss(list(p), keypoints, weight, backend=fused_backend, **kwargs),
                       fullgraph=True)
    leaves = [p.clone().requires_grad_() for p in preds]
    loss = fn(*leaves)
    grads = torch.autograd.grad(loss, leaves)
    ref_loss, ref_grads = loss_and_grads(preds, keypoints, weight, backend="torch", **kwargs)
    close_fp32(loss.detach(), ref_loss, "compiled loss")
    for i, (g, r) in enumerate(zip(grads, ref_grads)):
        close_fp32(g, r, f"compiled grad {i}")
