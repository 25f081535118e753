"""The CUDA C++ ops of srpose_fast._C (torch.ops.srpose_fast.<job>_cuda) against the torch references.

Every test needs a GPU (marked `cuda`; tests/conftest.py skips them elsewhere). On a GPU they fail, not
skip, when the extension is missing: build it with `pip install -e . --no-build-isolation --no-deps`
(see csrc/README.md), then run `pytest -m cuda`.

Tolerances, and why:
- SR head, fp32: max error against the float64 reference on the same inputs <= 1e-5 x the reference's
  largest magnitude (fp32 accumulation of at most a few thousand products; cuDNN's own error is similar).
  fp64: 1e-12. fp16/bf16, judged as flash-attention does: the kernel's max error against that float64
  oracle is at most twice the error of the torch reference run in the same low precision, plus one ulp at
  the output's largest magnitude (the kernel rounds its fp32 result once, <= 0.5 ulp, so a torch result
  that happens to be exact does not demand an exact kernel).
- decode: argmax, scores and "shift" bit-identical to the reference (the kernel merges, compares and
  differences the same float32 values; the transform rounds each product and sum as torch does).
  "dark"/"dark_udp" blur in another order, so L differs in its last bits and the Newton step amplifies that
  where the Hessian is ill-conditioned: 1e-4 px + 8x the reference's own change under 1e-6 relative noise.
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
from srpose_fast.keypoint_sets import COCO
from srpose_fast.ops.decode import MAX_BLUR_KERNEL, decode_heatmaps
from srpose_fast.ops.multi_stage_loss import multi_stage_loss
from srpose_fast.ops.sr_head import sr_head, sr_head_reference

from keypoint_checks import assert_keypoints_close, boxes, gaussian_maps, in_image_pixels, reference_tolerance

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


def poison_cache(nbytes: int = 1 << 22) -> None:
    """Leave the CUDA caching allocator only NaN-filled free blocks (0xFF bytes: NaN in every float type),
    which the op's outputs then reuse, so an element a kernel never writes stays NaN.

    Small pool (requests up to 1 MB): every free fragment is taken 512 bytes at a time until the pool has to
    grow, then two more MB. Large pool: one block of `nbytes`. Everything is freed again at the end; the
    allocator serves later requests from these blocks (best fit, from the start of a block)."""
    if DEVICE.type != "cuda":
        return
    torch.cuda.synchronize()
    torch.cuda.empty_cache()
    held = []
    reserved = torch.cuda.memory_reserved(DEVICE)
    while len(held) < 200_000 and torch.cuda.memory_reserved(DEVICE) == reserved:
        held.append(torch.full((512,), 255, dtype=torch.uint8, device=DEVICE))
    held += [torch.full((1 << 20,), 255, dtype=torch.uint8, device=DEVICE) for _ in range(2)]
    held.append(torch.full((max(nbytes, 1 << 22),), 255, dtype=torch.uint8, device=DEVICE))
    del held


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
        poison_cache(16 << 20)
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
SR_REALISTIC = (2, 17, 4, 64, 48, 4, 9)  # SRPose's last stage at batch 2


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
    else:
        ref_err = (lowp_ref.double() - oracle).abs().max().item()
        one_ulp = torch.finfo(actual.dtype).eps * scale  # the kernel rounds its fp32 result once: <= 0.5 ulp
        assert err <= 2 * ref_err + one_ulp, f"{name}: {actual.dtype} error {err:.3g} vs torch's {ref_err:.3g}"


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16, torch.float64])
@pytest.mark.parametrize("shape", SR_SHAPES, ids=lambda s: "x".join(map(str, s)))
def test_sr_head_forward_and_gradients(shape, dtype):
    n, k, e, h, w, r, ks = shape
    x, weight, bias = sr_inputs(*shape, dtype, seed=sum(shape))
    grad_out = torch.randn(n, k, r * h, r * w, generator=torch.Generator().manual_seed(1)).to(DEVICE, dtype)
    poison_cache()
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


def test_sr_head_realistic_size():
    n, k, e, h, w, r, ks = SR_REALISTIC
    x, weight, bias = sr_inputs(*SR_REALISTIC, torch.float32, seed=3)
    grad_out = torch.randn(n, k, r * h, r * w, generator=torch.Generator().manual_seed(4)).to(DEVICE)
    poison_cache(64 << 20)
    out, grads = sr_forward_and_grads(lambda *a: sr_head(*a, backend="cuda"), x, weight, bias, r, grad_out)
    oracle, oracle_grads = sr_forward_and_grads(sr_head_reference, x.double(), weight.double(), bias.double(), r,
                                                grad_out.double())
    assert_close_to_oracle("out", out, None, oracle)
    for name, g, og in zip(("grad_x", "grad_weight", "grad_bias"), grads, oracle_grads):
        assert_close_to_oracle(name, g, None, og)


def test_sr_head_without_bias_and_strided_inputs():
    n, k, e, h, w, r, ks = 2, 3, 4, 9, 7, 2, 5
    x, weight, _ = sr_inputs(n, k, e, h, w, r, ks, torch.float32, seed=5, bias=False)
    x_cl = x.to(memory_format=torch.channels_last)  # NHWC strides
    x_t = x.transpose(2, 3).contiguous().transpose(2, 3)  # column-major planes
    oracle = sr_head_reference(x.double(), weight.double(), None, r)
    for xs in (x, x_cl, x_t):
        out = sr_head(xs, weight, None, r, backend="cuda")
        assert_close_to_oracle("out", out, None, oracle)
    # grad_out with stride 0 everywhere (out.sum()'s gradient) and grad_x of a strided input
    xr = x_cl.detach().clone().requires_grad_()
    wr = weight.detach().clone().requires_grad_()
    gx, gw = torch.autograd.grad(sr_head(xr, wr, None, r, backend="cuda").sum(), (xr, wr))
    xo = x.double().requires_grad_()
    wo = weight.double().requires_grad_()
    ogx, ogw = torch.autograd.grad(sr_head_reference(xo, wo, None, r).sum(), (xo, wo))
    assert_close_to_oracle("grad_x", gx, None, ogx)
    assert_close_to_oracle("grad_weight", gw, None, ogw)


def test_sr_head_gradcheck_fp64():
    x, weight, bias = sr_inputs(1, 2, 2, 3, 4, 2, 3, torch.float64, seed=6)
    inputs = tuple(t.detach().requires_grad_() for t in (x, weight, bias))
    assert torch.autograd.gradcheck(lambda a, b, c: sr_head(a, b, c, 2, backend="cuda"), inputs)


def test_sr_head_opcheck():
    x, weight, bias = sr_inputs(2, 3, 2, 5, 4, 2, 3, torch.float32, seed=7)
    args = tuple(t.requires_grad_() for t in (x, weight, bias)) + (2,)
    torch.library.opcheck(ops().sr_head_cuda.default, args)
    grad_out = torch.randn(2, 3, 10, 8, device=DEVICE)
    torch.library.opcheck(ops().sr_head_backward_cuda.default, (grad_out, x.detach(), weight.detach(), 2))


def test_sr_head_compile_fullgraph():
    x, weight, bias = sr_inputs(2, 3, 2, 5, 4, 2, 3, torch.float32, seed=8)
    fn = torch.compile(lambda a, b, c: torch.ops.srpose_fast.sr_head_cuda(a, b, c, 2) * 2.0, fullgraph=True)
    ops()
    torch.testing.assert_close(fn(x, weight, bias), 2.0 * ops().sr_head_cuda(x, weight, bias, 2))


def test_sr_head_public_function_compiles_fullgraph():
    x, weight, bias = sr_inputs(2, 3, 2, 5, 4, 2, 3, torch.float32, seed=8)
    fn = torch.compile(lambda a, b, c: sr_head(a, b, c, 2, backend="cuda"), fullgraph=True, backend="eager")
    torch.testing.assert_close(fn(x, weight, bias), ops().sr_head_cuda(x, weight, bias, 2))


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


# --- decode ------------------------------------------------------------------------------------------

def check_decode(maps, *, method, flipped=None, flip_indices=None, flip_shift=None, center=None, scale=None,
                 blur_kernel=11):
    """decode_heatmaps(backend="cuda") on the GPU against the torch reference on the CPU."""
    kwargs = dict(method=method, flipped=flipped, flip_indices=flip_indices, flip_shift=flip_shift, center=center,
                  scale=scale, blur_kernel=blur_kernel)
    on_device = {key: dev(v) if isinstance(v, torch.Tensor) else v for key, v in kwargs.items()}
    poison_cache()
    keypoints, scores = decode_heatmaps(dev(maps), backend="cuda", **on_device)
    ref_keypoints, ref_scores = decode_heatmaps(maps, backend="torch", **kwargs)
    keypoints, scores = keypoints.cpu(), scores.cpu()
    assert keypoints.dtype == torch.float32 and keypoints.shape == ref_keypoints.shape
    assert scores.dtype == torch.float32 and scores.shape == ref_scores.shape
    torch.testing.assert_close(scores, ref_scores, rtol=0, atol=0, equal_nan=True)
    shift = (method != "dark_udp") if flip_shift is None else flip_shift
    indices = COCO.flip_indices if flip_indices is None else flip_indices
    merged = maps.float() if flipped is None else flip_merge(maps, flipped, indices, shift=shift)
    tol = reference_tolerance(merged, method, blur_kernel)[..., None].expand_as(keypoints)
    if center is not None:
        tol = in_image_pixels(tol, ref_keypoints, method, maps.shape[-2:], scale, keep_exact=True)
    assert_keypoints_close(keypoints, ref_keypoints, tol, f"decode {method}")
    return keypoints, scores


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("flip", [False, True], ids=["plain", "flip"])
@pytest.mark.parametrize("transform", [False, True], ids=["heatmap_px", "image_px"])
def test_decode_gaussian_maps_coco(method, flip, transform):
    n, k, h, w = 2, 17, 17, 13
    maps = gaussian_maps(n, k, h, w, seed=10)
    flipped = gaussian_maps(n, k, h, w, seed=11) if flip else None
    center, scale = boxes(n) if transform else (None, None)
    keypoints, _ = check_decode(maps, method=method, flipped=flipped, center=center, scale=scale)
    assert torch.isfinite(keypoints).all()


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float64])
@pytest.mark.parametrize("method", METHODS)
def test_decode_dtypes_k5_flip_transform(dtype, method):
    maps = gaussian_maps(3, 5, 9, 7, seed=20, sigma=1.0).to(dtype)
    flipped = gaussian_maps(3, 5, 9, 7, seed=21, sigma=1.0).to(dtype)
    center, scale = boxes(3, seed=22)
    check_decode(maps, method=method, flipped=flipped, flip_indices=K5_FLIP, center=center, scale=scale)


@pytest.mark.parametrize("flip_shift", [True, False])
def test_decode_flip_shift_override(flip_shift):
    maps = gaussian_maps(2, 5, 9, 7, seed=23)
    flipped = gaussian_maps(2, 5, 9, 7, seed=24)
    for method in METHODS:
        check_decode(maps, method=method, flipped=flipped, flip_indices=K5_FLIP, flip_shift=flip_shift)


@pytest.mark.parametrize("blur_kernel", [1, 3, MAX_BLUR_KERNEL])
def test_decode_blur_kernels(blur_kernel):
    maps = gaussian_maps(1, 5, 23, 19, seed=40, sigma=2.5)
    for method in ("dark", "dark_udp"):
        check_decode(maps, method=method, blur_kernel=blur_kernel)


def test_decode_blur_kernel_limit():
    with pytest.raises(ValueError, match=f"at most MAX_BLUR_KERNEL = {MAX_BLUR_KERNEL}"):
        decode_heatmaps(dev(gaussian_maps(1, 2, 9, 9, seed=1)), method="dark", blur_kernel=MAX_BLUR_KERNEL + 2,
                        backend="cuda")


def test_decode_ties_and_large_maps():
    maps = gaussian_maps(1, 5, 48, 40, seed=41, sigma=2.0)
    ties = {2: (100, 1124), 3: (1500, 700), 4: (1919, 256)}  # equal maxima: lowest flat index wins
    for j, flats in ties.items():
        maps[0, j] *= 0.5
        for flat in flats:
            maps[0, j].view(-1)[flat] = 4.0
    for method in METHODS:
        check_decode(maps, method=method)
    keypoints, _ = decode_heatmaps(dev(maps), method="argmax", backend="cuda")
    for j, flats in ties.items():
        assert keypoints[0, j].tolist() == [min(flats) % 40, min(flats) // 40]


def test_decode_special_maps():
    h, w = 11, 9
    maps = gaussian_maps(1, 8, h, w, seed=50)
    maps[0, 0] = 0.0                                  # constant 0: score 0, argmax (0, 0), unrefined
    maps[0, 1] = -maps[0, 1]                          # all negative: score 0, unrefined argmax
    maps[0, 2, 3, 4] = float("nan")                   # NaN anywhere: NaN score and keypoint
    maps[0, 3] = float("-inf")                        # all -inf
    maps[0, 4, 0, 0] = float("inf")                   # +inf maximum at the corner (never refined there)
    maps[0, 5] = 0.0
    maps[0, 5, 5, 4] = 1e-20                          # tiny peak: dark's exact rescale path
    maps[0, 6] = maps[0, 6] * 60.0                    # max > 49: dark_udp's exact rescale path
    maps[0, 7] = maps[0, 7] - 0.9                     # mostly negative: blurred maximum below 0
    for method in METHODS:
        keypoints, scores = check_decode(maps, method=method)
        assert scores[0, 0] == 0 and keypoints[0, 0].tolist() == [0.0, 0.0]
        assert torch.isnan(scores[0, 2]) and torch.isnan(keypoints[0, 2]).all()


def test_decode_tiny_maps_and_empty_batch():
    for h, w in ((1, 1), (1, 7), (2, 2), (3, 2), (5, 6)):
        maps = gaussian_maps(2, 3, h, w, seed=h * 10 + w, sigma=0.7)
        flipped = gaussian_maps(2, 3, h, w, seed=h * 10 + w + 1, sigma=0.7)
        center, scale = boxes(2, seed=3)
        for method in METHODS:
            if method == "dark_udp" and (h < 2 or w < 2):
                continue
            check_decode(maps, method=method, flipped=flipped, flip_indices=[2, 1, 0], center=center, scale=scale)
    keypoints, scores = decode_heatmaps(torch.zeros(0, 17, 8, 6, device=DEVICE), backend="cuda")
    assert keypoints.shape == (0, 17, 2) and scores.shape == (0, 17)


def test_decode_non_contiguous_inputs():
    maps = gaussian_maps(2, 5, 9, 7, seed=42).transpose(2, 3).contiguous().transpose(2, 3)
    flipped = gaussian_maps(5, 2, 9, 7, seed=43).transpose(0, 1)
    for method in ("shift", "dark"):
        check_decode(maps, method=method, flipped=flipped, flip_indices=K5_FLIP)


@pytest.mark.parametrize("seed", range(6))
def test_decode_random_maps(seed):
    gen = torch.Generator().manual_seed(seed)
    n, k = 2, 3
    h, w = (int(v) for v in torch.randint(2, 14, (2,), generator=gen))
    kind = seed % 3
    def make():
        if kind == 0:
            return torch.rand(n, k, h, w, generator=gen)
        if kind == 1:
            return torch.randn(n, k, h, w, generator=gen)
        return torch.rand(n, k, h, w, generator=gen) * (torch.rand(n, k, h, w, generator=gen) < 0.2)
    maps, flipped = make(), make()
    center, scale = boxes(n, seed)
    for method in METHODS:
        check_decode(maps, method=method, flipped=flipped, flip_indices=[2, 1, 0], center=center, scale=scale)


def test_decode_opcheck_and_compile():
    maps = dev(gaussian_maps(2, 5, 9, 7, seed=60))
    flipped = dev(gaussian_maps(2, 5, 9, 7, seed=61))
    index = torch.tensor(K5_FLIP, device=DEVICE)
    center, scale = (dev(t) for t in boxes(2))
    for method in METHODS:
        args = (maps, flipped, index, method != "dark_udp", method, 11, center, scale)
        torch.library.opcheck(ops().decode_heatmaps_cuda.default, args)
    fn = torch.compile(lambda m, f: torch.ops.srpose_fast.decode_heatmaps_cuda(m, f, index, True, "dark", 11, None, None),
                       fullgraph=True)
    got = fn(maps, flipped)
    want = ops().decode_heatmaps_cuda(maps, flipped, index, True, "dark", 11, None, None)
    torch.testing.assert_close(got, want, rtol=0, atol=0)


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
    poison_cache()
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


def test_sr_head_decode_opcheck_and_empty():
    emb, weight, bias = sr_inputs(2, 3, 2, 4, 5, 2, 3, torch.float32, seed=73)
    index = torch.tensor([2, 1, 0], device=DEVICE)
    for method in METHODS:
        torch.library.opcheck(ops().sr_head_decode_cuda.default,
                              (emb, weight, bias, 2, emb.flip(0), index, True, method, 11, None, None))
    keypoints, scores = ops().sr_head_decode_cuda(emb[:0], weight, bias, 2, None, None, True, "shift", 11, None, None)
    assert keypoints.shape == (0, 3, 2) and scores.shape == (0, 3)


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
    poison_cache()
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


@pytest.mark.parametrize("method", ["msra", "unbiased", "udp"])
@pytest.mark.parametrize("sigma", [2.0, 1.3])  # 1.3: fractional 3 sigma moves the msra centre (kept quirk)
def test_loss_methods(method, sigma):
    preds = make_preds(2, 5, SMALL_SIZES, seed=1)
    kp, weight = loss_keypoints(2, 5, 32, 24, seed=2)
    check_loss(preds, kp, weight, sigma=sigma, stage_weights=(1e-4, 1.0, 1.0), target_method=method)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float64])
def test_loss_dtypes(dtype):
    preds = make_preds(2, 3, SMALL_SIZES, dtype=dtype, seed=3)
    kp, weight = loss_keypoints(2, 3, 32, 24, seed=4)
    check_loss(preds, kp, weight, sigma=2.0, stage_weights=(1e-4, 1.0, 1.0))


def test_loss_srpose_sizes():
    preds = make_preds(2, 17, SRPOSE_SIZES, seed=5)
    kp, weight = loss_keypoints(2, 17, 256, 192, seed=6)
    check_loss(preds, kp, weight)


def test_loss_strided_preds_and_float64_keypoints():
    preds = [p.transpose(2, 3).contiguous().transpose(2, 3) for p in make_preds(2, 3, SMALL_SIZES, seed=7)]
    kp, weight = loss_keypoints(2, 3, 32, 24, seed=8)
    check_loss(preds, kp.double(), weight, sigma=2.0, stage_weights=(0.5, 1.0, 2.0))


def test_loss_opcheck_and_compile():
    pred = make_preds(2, 3, [(8, 6)], seed=9)[0].requires_grad_()
    kp, weight = loss_keypoints(2, 3, 32, 24, seed=10)
    torch.library.opcheck(ops().heatmap_mse_loss_cuda.default, (pred, kp, weight, 2.0, 32, 24, "msra"))
    grad = torch.tensor(1.5, device=DEVICE)
    torch.library.opcheck(ops().heatmap_mse_loss_backward_cuda.default,
                          (grad, pred.detach(), kp, weight, 2.0, 32, 24, "udp"))
    fn = torch.compile(lambda p: torch.ops.srpose_fast.heatmap_mse_loss_cuda(p, kp, weight, 2.0, 32, 24, "msra"),
                       fullgraph=True)
    torch.testing.assert_close(fn(pred.detach()), ops().heatmap_mse_loss_cuda(pred.detach(), kp, weight, 2.0, 32, 24, "msra"))


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
