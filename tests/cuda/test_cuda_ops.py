"""What only the CUDA C++ ops of srpose_fast._C (torch.ops.srpose_fast.<job>_cuda) have: float64, gradcheck,
autocast, the kernels' own TORCH_CHECK messages, the heatmap-free decoder against decode of the same CUDA
heatmaps. What every backend does is tested once, for every backend, in tests/ops (the "cuda" parameters).

Every test needs a GPU (marked `cuda`; tests/conftest.py skips them elsewhere). On a GPU they fail, not
skip, when the extension is missing: build it with `pip install -e . --no-build-isolation --no-deps`
(see csrc/README.md), then run `pytest -m cuda`.

Tolerances, and why:
- SR head, fp32: max error against the float64 reference on the same inputs <= 1e-5 x the reference's
  largest magnitude (fp32 accumulation of at most a few thousand products; cuDNN's own error is similar).
  fp64: 1e-12. fp16/bf16, judged as flash-attention does: the kernel's max error against that float64
  oracle is at most twice the error of the torch reference run in the same low precision, plus one ulp at
  the output's largest magnitude (the kernel rounds its fp32 result once, <= 0.5 ulp, so a torch result
  that happens to be exact does not demand an exact kernel; tests/tolerances.py).
- heatmap-free decode: bit-identical (argmax/shift; dark to 1e-5 px) to decode_heatmaps(cuda) of the cuda SR
  head's float32 heatmaps (the same sums in the same order), and against the float64 reference wherever a
  map's maximum is unambiguous (top-2 gap above float32 rounding).
- loss: fp32 sums in another order (and per-axis block means): 1e-5 relative to the result's scale.
Outputs are poisoned: before each op the CUDA caching allocator is left with only NaN-filled free blocks,
which its outputs then reuse (test_poisoning_reaches_new_allocations checks that this works on the machine).
"""
from __future__ import annotations

import importlib

import pytest
import torch

from srpose_fast.codecs.flip import flip_merge
from srpose_fast.ops.decode import decode_heatmaps
from srpose_fast.ops.multi_stage_loss import multi_stage_loss
from srpose_fast.ops.sr_head import sr_head, sr_head_reference

from backends import poison_cuda_cache
from tolerances import assert_within_twice_torch_error
from keypoint_checks import boxes, gaussian_maps

pytestmark = pytest.mark.cuda
DEVICE = torch.device("cuda")
METHODS = ("argmax", "shift", "dark", "dark_udp")
K5_FLIP = [0, 2, 1, 4, 3]
LOW = (torch.float16, torch.bfloat16)


def ops():
    """torch.ops.srpose_fast, once the extension is imported (which registers its <job>_cuda ops)."""
    importlib.import_module("srpose_fast._C")
    return torch.ops.srpose_fast


def dev(t):
    return None if t is None else t.to(DEVICE)


def test_extension_is_built():
    try:
        importlib.import_module("srpose_fast._C")
    except ImportError as err:
        pytest.fail(f"srpose_fast._C is not built ({err}): run `pip install -e . --no-build-isolation --no-deps` "
                    "with a CUDA build of torch and nvcc (see csrc/README.md)")
    for name in ("sr_head", "sr_head_backward", "decode_heatmaps", "sr_head_decode", "heatmap_mse_loss",
                 "heatmap_mse_loss_backward"):
        assert hasattr(torch.ops.srpose_fast, f"{name}_cuda"), name


def test_poisoning_reaches_new_allocations():
    if DEVICE.type != "cuda":
        pytest.skip("the CUDA caching allocator only")
    for numel in (17, 1000, 100_000, 3 << 20):  # small and large pools
        poison_cuda_cache(16 << 20)
        fresh = torch.empty(numel, device=DEVICE)
        assert torch.isnan(fresh).all(), (f"poison_cache did not poison a new allocation of {numel} floats: the "
                                          "other tests' outputs are not reliably poisoned on this machine")


# --- SR head -----------------------------------------------------------------------------------------

# (N, K, E, H, W, R, KS): odd maps, K not a power of two, SRPose's stages, channel and sub-pixel chunking,
# KS*KS > 256 (several (channel, tap) sums per thread in grad_weight), 1x1 everything.
SR_SHAPES = [
    (1, 17, 4, 17, 13, 4, 9),
    (2, 3, 16, 8, 6, 8, 3),
    (2, 5, 8, 9, 11, 2, 7),
    (1, 2, 3, 6, 5, 8, 9),
    (1, 2, 7, 20, 18, 1, 31),
    (3, 2, 2, 5, 7, 3, 5),
    (1, 1, 1, 1, 1, 1, 1),
]


def sr_inputs(n, k, e, h, w, r, ks, dtype, seed=0, bias=True):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n, k * e, h, w, generator=gen)
    weight = torch.randn(k * r * r, e, ks, ks, generator=gen) / ks
    b = torch.randn(k * r * r, generator=gen) if bias else None
    return tuple(None if t is None else t.to(device=DEVICE, dtype=dtype) for t in (x, weight, b))


def sr_forward_and_grads(fn, x, weight, bias, r, grad_out):
    leaves = [t.detach().clone().requires_grad_() for t in (x, weight, bias) if t is not None]
    xx, ww = leaves[:2]
    bb = leaves[2] if bias is not None else None
    out = fn(xx, ww, bb, r)
    grads = torch.autograd.grad(out, leaves, grad_out)
    return out.detach(), grads


def assert_close_to_oracle(name, actual, lowp_ref, oracle):
    """fp32/fp64 against the float64 oracle; fp16/bf16 within twice the torch op's own error."""
    scale = oracle.abs().max().item() + 1e-30
    err = (actual.double() - oracle).abs().max().item()
    if actual.dtype == torch.float64:
        assert err <= 1e-12 * scale, f"{name}: fp64 error {err:.3g} (scale {scale:.3g})"
    elif actual.dtype == torch.float32:
        assert err <= 1e-5 * scale, f"{name}: fp32 error {err:.3g} (scale {scale:.3g})"
    else:  # the kernel rounds its fp32 result once: <= 0.5 ulp
        assert_within_twice_torch_error(name, actual, lowp_ref, oracle, slack=torch.finfo(actual.dtype).eps * scale)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16, torch.float64])
@pytest.mark.parametrize("shape", SR_SHAPES, ids=lambda s: "x".join(map(str, s)))
def test_sr_head_forward_and_gradients(shape, dtype):
    n, k, e, h, w, r, ks = shape
    x, weight, bias = sr_inputs(*shape, dtype, seed=sum(shape))
    grad_out = torch.randn(n, k, r * h, r * w, generator=torch.Generator().manual_seed(1)).to(DEVICE, dtype)
    poison_cuda_cache()
    out, grads = sr_forward_and_grads(lambda *a: sr_head(*a, backend="cuda"), x, weight, bias, r, grad_out)
    oracle, oracle_grads = sr_forward_and_grads(sr_head_reference, x.double(), weight.double(), bias.double(), r,
                                                grad_out.double())
    ref, ref_grads = sr_forward_and_grads(sr_head_reference, x, weight, bias, r, grad_out)
    assert out.dtype == dtype and out.shape == (n, k, r * h, r * w) and out.is_contiguous()
    assert_close_to_oracle("out", out, ref, oracle)
    for name, g, rg, og, leaf in zip(("grad_x", "grad_weight", "grad_bias"), grads, ref_grads, oracle_grads,
                                     (x, weight, bias)):
        assert g.dtype == dtype and g.shape == leaf.shape
        assert_close_to_oracle(name, g, rg, og)


def test_sr_head_gradcheck_fp64():
    x, weight, bias = sr_inputs(1, 2, 2, 3, 4, 2, 3, torch.float64, seed=6)
    inputs = tuple(t.detach().requires_grad_() for t in (x, weight, bias))
    assert torch.autograd.gradcheck(lambda a, b, c: sr_head(a, b, c, 2, backend="cuda"), inputs)


def test_sr_head_under_autocast():
    # bf16 training with fp32 parameters: the op runs in bf16 and the gradients reach the fp32 leaves
    x, weight, bias = sr_inputs(1, 3, 2, 5, 4, 2, 3, torch.float32, seed=11)
    leaves = [t.requires_grad_() for t in (x, weight, bias)]
    with torch.autocast(DEVICE.type, dtype=torch.bfloat16):
        out = sr_head(*leaves, 2, backend="cuda")
    assert out.dtype == torch.bfloat16
    assert torch.equal(out, ops().sr_head_cuda(x.detach().bfloat16(), weight.detach().bfloat16(),
                                          bias.detach().bfloat16(), 2))
    grads = torch.autograd.grad(out.float().sum(), leaves)
    assert all(g.dtype == torch.float32 and torch.isfinite(g).all() for g in grads)


def test_sr_head_bad_inputs():
    x, weight, bias = sr_inputs(1, 3, 2, 5, 4, 2, 3, torch.float32, seed=10)
    with pytest.raises(RuntimeError, match="must be a CUDA tensor"):
        ops().sr_head_cuda(x.cpu(), weight, bias, 2)
    with pytest.raises(RuntimeError, match="dtype"):
        ops().sr_head_cuda(x, weight.double(), bias, 2)
    with pytest.raises(RuntimeError, match="channels"):
        ops().sr_head_cuda(x[:, :5], weight, bias, 2)
    with pytest.raises(RuntimeError, match="multiple of upscale"):
        ops().sr_head_cuda(x, weight, bias, 3)
    with pytest.raises(RuntimeError, match="odd k"):
        ops().sr_head_cuda(x, weight[..., :2, :2], bias, 2)
    with pytest.raises(RuntimeError, match="bias must have shape"):
        ops().sr_head_cuda(x, weight, bias[:-1], 2)
    with pytest.raises(RuntimeError, match="grad_out must have shape"):
        ops().sr_head_backward_cuda(torch.zeros(1, 3, 10, 7, device=DEVICE), x, weight, 2)


# --- decode (what every backend does is tested in tests/ops/test_decode.py) -------------------------------

def test_decode_bad_inputs():
    maps = dev(gaussian_maps(1, 5, 9, 7, seed=62))
    with pytest.raises(RuntimeError, match="must be a CUDA tensor"):
        ops().decode_heatmaps_cuda(maps.cpu(), None, None, True, "shift", 11, None, None)
    with pytest.raises(RuntimeError, match="method must be one of"):
        ops().decode_heatmaps_cuda(maps, None, None, True, "median", 11, None, None)
    with pytest.raises(RuntimeError, match="flip_indices"):
        ops().decode_heatmaps_cuda(maps, maps, None, True, "shift", 11, None, None)
    with pytest.raises(RuntimeError, match="dtype"):
        ops().decode_heatmaps_cuda(maps, maps.half(), torch.arange(5, device=DEVICE), True, "shift", 11, None, None)
    with pytest.raises(RuntimeError, match="center and scale"):
        ops().decode_heatmaps_cuda(maps, None, None, True, "shift", 11, torch.zeros(1, 2, device=DEVICE), None)
    with pytest.raises(RuntimeError, match="at least 2x2"):
        ops().decode_heatmaps_cuda(maps[..., :1], None, None, True, "dark_udp", 11, torch.zeros(1, 2, device=DEVICE),
                              torch.ones(1, 2, device=DEVICE))


# --- heatmap-free decode -----------------------------------------------------------------------------

# (N, K, E, h, w, R, KS)
SRD_SHAPES = [(2, 17, 4, 8, 6, 4, 9), (1, 5, 3, 5, 4, 3, 5), (2, 3, 2, 4, 5, 2, 3), (1, 2, 40, 3, 3, 1, 31)]


def sr_decode_ref_maps(emb, weight, bias, r, flipped_emb):
    """The float64 heatmaps the torch reference decodes (and those of the flipped image)."""
    maps = sr_head_reference(emb.double(), weight.double(), None if bias is None else bias.double(), r)
    fmaps = None if flipped_emb is None else sr_head_reference(flipped_emb.double(), weight.double(),
                                                               None if bias is None else bias.double(), r)
    return maps, fmaps


def check_sr_head_decode(emb, weight, bias, r, *, flipped_emb=None, flip_indices=None, flip_shift=True,
                         method="shift", blur_kernel=11, center=None, scale=None):
    index = None if flipped_emb is None else torch.tensor(flip_indices, device=DEVICE)
    poison_cuda_cache()
    keypoints, scores = ops().sr_head_decode_cuda(emb, weight, bias, r, flipped_emb, index, flip_shift, method,
                                             blur_kernel, center, scale)
    # 1. the same as decoding the cuda SR head's heatmaps computed in the same precision (16-bit values upcast
    #    exactly to float32; float64 stays float64) and rounded to float32: the same sums in the same order
    wide_emb, wide_weight, wide_bias = (t if t is None or t.dtype == torch.float64 else t.float()
                                        for t in (emb, weight, bias))
    maps = ops().sr_head_cuda(wide_emb, wide_weight, wide_bias, r).float()
    fmaps = None if flipped_emb is None else ops().sr_head_cuda(
        flipped_emb if flipped_emb.dtype == torch.float64 else flipped_emb.float(), wide_weight, wide_bias, r).float()
    want_kp, want_scores = ops().decode_heatmaps_cuda(maps, fmaps, index, flip_shift, method, blur_kernel, center, scale)
    torch.testing.assert_close(scores, want_scores, rtol=0, atol=0, equal_nan=True)
    atol = 0.0 if method in ("argmax", "shift") else 1e-5 * (1.0 if center is None else 200.0)
    torch.testing.assert_close(keypoints, want_kp, rtol=0, atol=atol, equal_nan=True)
    # 2. against the float64 reference heatmaps where the maximum is unambiguous
    maps64, fmaps64 = sr_decode_ref_maps(emb, weight, bias, r, flipped_emb)
    merged = maps64 if fmaps64 is None else flip_merge(maps64, fmaps64, flip_indices, shift=flip_shift).double()
    top2 = merged.flatten(2).topk(2 if merged[0, 0].numel() > 1 else 1, dim=2).values
    gap = (top2[..., 0] - top2[..., -1]) if top2.shape[-1] > 1 else torch.full_like(top2[..., 0], float("inf"))
    clear = gap > 1e-4 * merged.abs().amax(dim=(2, 3))
    torch.testing.assert_close(scores.double(), top2[..., 0].clamp_min(0), rtol=1e-5, atol=1e-5)
    if method in ("argmax", "shift"):  # DARK's Newton step on random conv maps can amplify float32 rounding
        ref_kp, _ = decode_heatmaps(merged.float().cpu(), method=method, center=None if center is None else center.cpu(),
                                    scale=None if scale is None else scale.cpu(), backend="torch")
        tol = 1e-5 * (1.0 if center is None else 400.0)
        close = ((keypoints.cpu() - ref_kp).abs() <= tol).all(-1) | ~clear.cpu()
        assert close.all(), f"{int((~close).sum())} keypoints differ from the float64 reference"
    return keypoints, scores


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("shape", SRD_SHAPES, ids=lambda s: "x".join(map(str, s)))
def test_sr_head_decode_plain_and_flip(shape, method):
    n, k, e, h, w, r, ks = shape
    emb, weight, bias = sr_inputs(*shape, torch.float32, seed=sum(shape))
    femb, _, _ = sr_inputs(*shape, torch.float32, seed=sum(shape) + 1)
    flip = list(range(k))[::-1]
    center, scale = (dev(t) for t in boxes(n))
    check_sr_head_decode(emb, weight, bias, r, method=method)
    for flip_shift in (True, False):
        check_sr_head_decode(emb, weight, bias, r, flipped_emb=femb, flip_indices=flip, flip_shift=flip_shift,
                             method=method, center=center, scale=scale)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float64])
def test_sr_head_decode_dtypes_and_no_bias(dtype):
    emb, weight, _ = sr_inputs(2, 5, 3, 5, 4, 4, 5, dtype, seed=70, bias=False)
    femb, _, _ = sr_inputs(2, 5, 3, 5, 4, 4, 5, dtype, seed=71)
    for method in METHODS:
        check_sr_head_decode(emb, weight, None, 4, flipped_emb=femb, flip_indices=K5_FLIP, method=method)


def test_sr_head_decode_special_maps():
    # zero embeddings and bias 0 -> constant 0 maps: score 0, keypoint (0, 0); negative bias -> all negative
    emb, weight, _ = sr_inputs(1, 3, 2, 4, 3, 2, 3, torch.float32, seed=72)
    emb = torch.zeros_like(emb)
    bias = torch.tensor([0.0] * 4 + [-1.0] * 4 + [float("nan")] * 4, device=DEVICE)
    for method in METHODS:
        keypoints, scores = ops().sr_head_decode_cuda(emb, weight, bias, 2, None, None, True, method, 11, None, None)
        assert scores[0, 0] == 0 and keypoints[0, 0].tolist() == [0.0, 0.0]
        assert scores[0, 1] == 0 and keypoints[0, 1].tolist() == [0.0, 0.0]
        assert torch.isnan(scores[0, 2]) and torch.isnan(keypoints[0, 2]).all()


# --- multi-stage loss --------------------------------------------------------------------------------

SMALL_SIZES = [(4, 3), (8, 6), (32, 24)]
SRPOSE_SIZES = [(8, 6), (64, 48), (64, 48), (64, 48), (256, 192)]


def make_preds(n, k, sizes, dtype=torch.float32, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return [torch.rand(n, k, h, w, generator=gen).mul(0.5).to(device=DEVICE, dtype=dtype) for h, w in sizes]


def loss_keypoints(n, k, height, width, seed=0):
    """Keypoints all over the map, at its edges, on block boundaries and outside it; some invisible."""
    gen = torch.Generator().manual_seed(seed)
    kp = torch.rand(n, k, 2, generator=gen) * torch.tensor([width * 1.4, height * 1.4]) - torch.tensor(
        [width * 0.2, height * 0.2])
    kp[0, 0] = torch.tensor([0.0, 0.0])
    kp[0, 1] = torch.tensor([width - 1.0, height - 1.0])
    kp[-1, -1] = torch.tensor([-30.0, 5.0])          # window wholly outside: weight 0
    if k > 2:
        kp[0, 2] = torch.tensor([7.5, 3.49999])      # half-pixel rounding
    weight = (torch.rand(n, k, generator=gen) > 0.2).float()
    return kp.to(DEVICE), weight.to(DEVICE)


def loss_and_grads(preds, keypoints, weight, **kwargs):
    leaves = [p.detach().clone().requires_grad_() for p in preds]
    loss = multi_stage_loss(leaves, keypoints, weight, **kwargs)
    return loss.detach(), torch.autograd.grad(loss, leaves)


def check_loss(preds, keypoints, weight, **kwargs):
    poison_cuda_cache()
    loss, grads = loss_and_grads(preds, keypoints, weight, backend="cuda", **kwargs)
    ref_loss, ref_grads = loss_and_grads([p.float() for p in preds], keypoints, weight, backend="torch", **kwargs)
    assert loss.dtype == torch.float32 and loss.shape == ()
    torch.testing.assert_close(loss, ref_loss, rtol=1e-5, atol=1e-5 * ref_loss.abs().item() + 1e-30)
    for i, (g, r) in enumerate(zip(grads, ref_grads)):
        assert g.dtype == preds[i].dtype and g.shape == preds[i].shape
        scale = r.abs().max().item() + 1e-30
        if g.dtype in LOW:  # the kernel rounds its fp32 gradient to 16 bits: one ulp (or subnormal step) off
            finfo = torch.finfo(g.dtype)
            atol = finfo.eps * scale + finfo.eps * finfo.smallest_normal
        else:
            atol = 1e-5 * scale
        torch.testing.assert_close(g.float(), r.float(), rtol=1e-5, atol=atol, msg=lambda m: f"grad {i}: {m}")


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float64])
def test_loss_dtypes(dtype):
    preds = make_preds(2, 3, SMALL_SIZES, dtype=dtype, seed=3)
    kp, weight = loss_keypoints(2, 3, 32, 24, seed=4)
    check_loss(preds, kp, weight, sigma=2.0, stage_weights=(1e-4, 1.0, 1.0))


def test_loss_empty_and_bad_inputs():
    kp, weight = loss_keypoints(2, 3, 32, 24, seed=11)
    empty = torch.zeros(0, 3, 8, 6, device=DEVICE)
    assert torch.isnan(ops().heatmap_mse_loss_cuda(empty, kp[:0], weight[:0], 2.0, 32, 24, "msra"))
    pred = make_preds(2, 3, [(8, 6)], seed=12)[0]
    with pytest.raises(RuntimeError, match="whole multiple"):
        ops().heatmap_mse_loss_cuda(pred, kp, weight, 2.0, 30, 24, "msra")
    with pytest.raises(RuntimeError, match="method must be one of"):
        ops().heatmap_mse_loss_cuda(pred, kp, weight, 2.0, 32, 24, "gauss")
    with pytest.raises(RuntimeError, match="keypoints must be"):
        ops().heatmap_mse_loss_cuda(pred, kp[:, :2], weight, 2.0, 32, 24, "msra")
    with pytest.raises(RuntimeError, match="sigma"):
        ops().heatmap_mse_loss_cuda(pred, kp, weight, 0.0, 32, 24, "msra")
