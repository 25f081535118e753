"""srpose_fast.ops.bottomup_loss: the torch backend against the loss reference on constructed targets,
and backend="triton" (the fused heatmap term with on-the-fly multi-person targets) against the torch
backend for every output and gradient, over odd shapes, several tiles, sigmas and dtypes; the registered
ops; and that no target map is made.

Without a GPU the Triton kernels run under TRITON_INTERPRET=1 on CPU tensors (tests/conftest.py sets it).
"""
from __future__ import annotations

import importlib

import pytest
import torch

from srpose_fast.codecs.bottomup_targets import bottomup_heatmaps, joint_indices, joint_windows
from srpose_fast.losses.associative_embedding import associative_embedding_loss
from srpose_fast.ops.bottomup_loss import SUPPORTED_BACKENDS, bottomup_loss

from backends import DEVICES
from new_tensors import RecordNewTensors
from tolerances import FP32_RTOL, assert_close_fp32, assert_within_twice_torch_error

pytest.importorskip("triton")
from srpose_fast.kernels import bottomup_loss as kernels  # noqa: E402  (after conftest set the interpreter)

op_module = importlib.import_module("srpose_fast.ops.bottomup_loss")
DEVICE = DEVICES["triton"]
TERMS = ("heatmap_loss", "push_loss", "pull_loss", "loss")

pytestmark = pytest.mark.usefixtures("poison_kernel_outputs")


def make_case(n, k, h, w, people, *, dtype=torch.float32, seed=0):
    """(output (N, 2K, h, w), joints (N, M, K, 3), mask (N, h, w)): joints over and around the map, some
    invisible, two people close together, a few on the map's edges; a mask with holes."""
    gen = torch.Generator().manual_seed(seed)
    output = (torch.rand(n, 2 * k, h, w, generator=gen) * 0.6 - 0.1).to(dtype)
    joints = torch.zeros(n, people, k, 3)
    joints[..., 0] = torch.rand(n, people, k, generator=gen) * (w + 6) - 3
    joints[..., 1] = torch.rand(n, people, k, generator=gen) * (h + 6) - 3
    joints[..., 2] = torch.randint(0, 3, (n, people, k), generator=gen).float()
    joints[0, -1] = 0  # a padding person
    if people > 1:
        joints[0, 1, 0] = joints[0, 0, 0] + torch.tensor([2.0, 1.0, 0.0])  # overlapping Gaussians
        joints[0, :2, 0, 2] = 2
    edges = torch.tensor([[-0.5, 3.0, 2], [w - 0.01, h - 0.01, 1], [w, 1.0, 2], [2.0, -1.0, 2]])
    joints[-1, 0, :min(k, 4)] = edges[:min(k, 4)]
    mask = (torch.rand(n, h, w, generator=gen) > 0.2).float()
    return output.to(DEVICE), joints.to(DEVICE), mask.to(DEVICE)


def terms_and_grad(output, joints, mask, **kwargs):
    leaf = output.detach().clone().requires_grad_()
    terms = bottomup_loss(leaf, joints, mask, **kwargs)
    (grad,) = torch.autograd.grad(terms["loss"] * 1.7, leaf)
    return {name: terms[name].detach() for name in TERMS}, grad


def check_against_torch(output, joints, mask, **kwargs):
    terms, grad = terms_and_grad(output, joints, mask, backend="triton", **kwargs)
    ref_terms, ref_grad = terms_and_grad(output, joints, mask, backend="torch", **kwargs)
    for name in TERMS:
        assert terms[name].dtype == torch.float32 and terms[name].shape == ()
        assert_close_fp32(terms[name], ref_terms[name], name)
    assert grad.dtype == output.dtype and grad.shape == output.shape
    assert_close_fp32(grad, ref_grad, "grad of the output")
    return ref_terms


def test_torch_backend_is_the_reference_on_materialised_targets():
    output, joints, mask = make_case(2, 3, 20, 24, 3)
    terms = bottomup_loss(output, joints, mask, sigma=2.0, backend="torch")
    target = bottomup_heatmaps(joints, (20, 24), 2.0)
    expected = associative_embedding_loss(output, target, mask, joint_indices(joints, (20, 24)))
    for name in TERMS:
        assert terms[name].item() == expected[name].item()
    assert target.amax() == 1.0  # targets were drawn


def test_triton_matches_torch_several_tiles():
    # 37 x 70: two row tiles (32 rows) and two column tiles (64 columns), partial at both ends.
    output, joints, mask = make_case(2, 3, 37, 70, 4, seed=1)
    terms = check_against_torch(output, joints, mask, sigma=3.0)
    assert terms["heatmap_loss"] > 0 and terms["push_loss"] > 0 and terms["pull_loss"] > 0


@pytest.mark.parametrize("shape", [(1, 1, 1, 1, 1), (1, 17, 13, 17, 2), (3, 5, 9, 7, 3), (2, 2, 5, 130, 5)])
def test_triton_matches_torch_odd_shapes(shape):
    n, k, h, w, people = shape
    output, joints, mask = make_case(n, k, h, w, people, seed=sum(shape))
    check_against_torch(output, joints, mask, sigma=2.0)


def test_fractional_sigma_window_rounding():
    # 3 sigma + 1 = 8.5: the window's bounds round half to even and its centre is off the joint.
    output, joints, mask = make_case(2, 4, 24, 30, 3, seed=2)
    check_against_torch(output, joints, mask, sigma=2.5)
    windows = joint_windows(joints, (24, 30), 2.5)
    assert (windows[..., 4] != torch.trunc(joints[..., 0]))[joints[..., 2] > 0].any()


def test_max_loss_type_and_factors():
    output, joints, mask = make_case(2, 3, 16, 20, 3, seed=3)
    check_against_torch(output, joints, mask, sigma=2.0, loss_type="max", heatmap_factor=0.5, push_factor=2e-3,
                        pull_factor=3e-3)


@pytest.mark.parametrize("layout", ["column-major", "channels-last"])
def test_non_contiguous_output(layout):
    # channels-last is what the trainer's default (channels_last: true) hands the loss
    output, joints, mask = make_case(2, 3, 18, 14, 3, seed=4)
    if layout == "column-major":
        strided = output.transpose(2, 3).contiguous().transpose(2, 3)
    else:
        strided = output.contiguous(memory_format=torch.channels_last)
    assert not strided.is_contiguous()
    check_against_torch(strided, joints, mask, sigma=2.0)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_low_precision_error_at_most_twice_torch_backend(dtype):
    output, joints, mask = make_case(2, 3, 20, 24, 3, dtype=dtype, seed=5)
    terms, grad = terms_and_grad(output, joints, mask, sigma=2.0, backend="triton")
    ref_terms, ref_grad = terms_and_grad(output, joints, mask, sigma=2.0, backend="torch")
    # fp64 oracle: the same loss on the stored low-precision values.
    ex_terms, ex_grad = terms_and_grad(output.double(), joints, mask, sigma=2.0, backend="torch")
    eps = torch.finfo(dtype).eps
    for name in TERMS:  # fp32 sums in both backends: their error is fp32 rounding, far below eps * |term|
        assert_within_twice_torch_error(name, terms[name], ref_terms[name], ex_terms[name],
                                        slack=FP32_RTOL * abs(ex_terms[name].item()))
    # The gradient is stored once in 16 bits: the interpreter's cast truncates where the GPU rounds to nearest,
    # one unit in the last place at most against the reference's half unit (twice its error); no more slack.
    assert_within_twice_torch_error("gradient", grad, ref_grad, ex_grad, slack=1e-6 * eps)


# Under the interpreter, triton_op's functional decomposition (AOTAutograd) would hand fake tensors to the
# interpreted kernel; on CPU opcheck runs the checks that do not trace into the kernels.
CPU_OPCHECK_UTILS = ("test_schema", "test_autograd_registration", "test_faketensor")


def test_opcheck_and_backward_scaling():
    output, joints, mask = make_case(2, 3, 12, 10, 3, seed=6)
    pred = output[:, :3]
    windows = joint_windows(joints, (12, 10), 2.0)
    utils = CPU_OPCHECK_UTILS if DEVICE == "cpu" else CPU_OPCHECK_UTILS + ("test_aot_dispatch_dynamic",)
    torch.library.opcheck(torch.ops.srpose_fast.bottomup_heatmap_loss_triton.default,
                          (pred.clone().requires_grad_(), windows, mask, 2.0), test_utils=utils)
    grad_loss = torch.tensor([1.0, -3.0], device=DEVICE)
    torch.library.opcheck(torch.ops.srpose_fast.bottomup_heatmap_loss_backward_triton.default,
                          (grad_loss, pred, windows, mask, 2.0), test_utils=utils)
    backward = torch.ops.srpose_fast.bottomup_heatmap_loss_backward_triton
    grad = backward(grad_loss, pred, windows, mask, 2.0)
    ones = backward(torch.ones(2, device=DEVICE), pred, windows, mask, 2.0)
    torch.testing.assert_close(grad, ones * grad_loss[:, None, None, None])


def test_compile_fullgraph_smoke():
    output, joints, mask = make_case(2, 3, 16, 12, 3, seed=7)
    fn = torch.compile(lambda out: bottomup_loss(out, joints, mask, sigma=2.0, backend="triton")["loss"],
                       fullgraph=True, backend="eager")
    leaf = output.clone().requires_grad_()
    loss = fn(leaf)
    (grad,) = torch.autograd.grad(loss * 1.7, leaf)
    ref_terms, ref_grad = terms_and_grad(output, joints, mask, sigma=2.0, backend="torch")
    assert_close_fp32(loss.detach(), ref_terms["loss"], "compiled loss")
    assert_close_fp32(grad, ref_grad, "compiled gradient")


def test_no_target_map_is_made(monkeypatch):
    output, joints, mask = make_case(2, 3, 16, 12, 3, seed=8)
    heatmaps = (2, 3, 16, 12)
    with RecordNewTensors() as torch_path:
        bottomup_loss(output, joints, mask, sigma=2.0, backend="torch")
    assert heatmaps in torch_path.shapes  # the detector sees the reference's target
    monkeypatch.setattr(op_module, "bottomup_heatmaps", lambda *a, **kw: pytest.fail("targets materialised"))
    leaf = output.clone().requires_grad_()
    with RecordNewTensors() as fused:
        loss = bottomup_loss(leaf, joints, mask, sigma=2.0, backend="triton")["loss"]
    assert heatmaps not in fused.shapes
    with RecordNewTensors() as backward:
        torch.autograd.grad(loss, leaf)
    assert backward.shapes.count(heatmaps) == 1  # the kernel's gradient, nothing else of a target's size


def test_backends_and_bad_inputs():
    from srpose_fast.ops.backend import resolve_backend

    assert "triton" in SUPPORTED_BACKENDS and "cuda" not in SUPPORTED_BACKENDS
    assert resolve_backend("auto", torch.device("cpu"), op="bottomup_loss", supported=SUPPORTED_BACKENDS) == "torch"
    output, joints, mask = make_case(1, 2, 8, 8, 2)
    with pytest.raises(ValueError, match="joints must be"):
        bottomup_loss(output, joints[..., :2], mask, sigma=2.0)
    with pytest.raises(ValueError, match="mask must be"):
        bottomup_loss(output, joints, mask[:, :4], sigma=2.0)
    with pytest.raises(ValueError, match="loss_type"):
        bottomup_loss(output, joints, mask, sigma=2.0, loss_type="square")
    with pytest.raises(ValueError, match="float32, float16 or bfloat16"):
        kernels.bottomup_heatmap_loss_forward(output[:, :2].double(), joint_windows(joints, 8, 2.0), mask, 2.0)
    with pytest.raises(ValueError, match="windows must be"):
        kernels.bottomup_heatmap_loss_forward(output[:, :2], joint_windows(joints, 8, 2.0)[..., :5], mask, 2.0)
