"""srpose_fast.ops.sr_head_decode: each fused backend (triton, cuda: tests/ops/conftest.py; heatmaps never in
memory) against the torch backend (sr_head_reference on both images, then decode_heatmaps_reference); the
registered ops; input validation.

Without a GPU the Triton kernels run under TRITON_INTERPRET=1 on CPU tensors (tests/conftest.py sets it);
with one, the same tests run the compiled kernels on CUDA tensors, and the CUDA C++ kernels too.

Tolerances: the kernels' heatmap values are fp32 sums in another order than the reference conv's, so
scores agree to ~1e-6 of the map's magnitude (held to 1e-5). Argmax and "shift" positions must be equal
(a near-tie within that rounding would be needed to move them; the seeds have none). DARK keypoints are
held to 1e-4 px plus 8x the reference's own change under 1e-6 relative noise on its heatmaps (see
test_decode.py).
"""

import functools

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch.utils._python_dispatch import TorchDispatchMode

from srpose_fast.codecs.flip import flip_merge
from srpose_fast.keypoint_sets import COCO
from srpose_fast.ops.decode import MAX_BLUR_KERNEL
from srpose_fast.ops.sr_head import sr_head_reference
from srpose_fast.ops.registry import fused_op
from srpose_fast.ops.sr_head_decode import sr_head_decode

from backends import DEVICES
from keypoint_checks import assert_decoded_close, boxes

from tolerances import exact_fp32_reference  # noqa: F401,E402  (a fixture: the torch reference without TF32)

pytest.importorskip("triton")
from srpose_fast.kernels import launch  # noqa: E402

METHODS = ("argmax", "shift", "dark", "dark_udp")
K5_FLIP = [0, 2, 1, 4, 3]


# every buffer the Triton launchers allocate starts as NaN (tests/conftest.py)
pytestmark = pytest.mark.usefixtures("poison_kernel_outputs", "exact_fp32_reference")


def smooth_inputs(n, joints, e, ks, r, h, w, seed):
    """Inputs whose heatmaps are single smooth peaks, like a trained head's: channel 0 of each joint holds a
    low-resolution Gaussian bump, the weights bilinearly upsample it by r, small noise everywhere."""
    gen = torch.Generator().manual_seed(seed)
    centre = torch.rand(n, joints, 2, 1, 1, generator=gen) * torch.tensor([w - 1.0, h - 1.0]).view(2, 1, 1)
    ys, xs = torch.arange(h, dtype=torch.float32).view(h, 1), torch.arange(w, dtype=torch.float32).view(1, w)
    bump = torch.exp(-((xs - centre[:, :, 0]) ** 2 + (ys - centre[:, :, 1]) ** 2) / (2 * 0.8 ** 2))
    emb = 0.01 * torch.randn(n, joints, e, h, w, generator=gen)
    emb[:, :, 0] += bump
    weight = 0.01 * torch.randn(joints, r, r, e, ks, ks, generator=gen)
    pad = ks // 2

    def taps(frac):
        t = torch.zeros(ks)
        if ks == 1:
            t[0] = 1.0
        elif frac >= 0:
            t[pad], t[pad + 1] = 1 - frac, frac
        else:
            t[pad], t[pad - 1] = 1 + frac, -frac
        return t

    for dy in range(r):
        for dx in range(r):
            weight[:, dy, dx, 0] += torch.outer(taps((dy + 0.5) / r - 0.5), taps((dx + 0.5) / r - 0.5))
    bias = 0.001 * torch.randn(joints * r * r, generator=gen)
    return emb.reshape(n, joints * e, h, w), weight.reshape(joints * r * r, e, ks, ks), bias


def random_inputs(n, joints, e, ks, r, h, w, seed):
    gen = torch.Generator().manual_seed(seed)
    return (torch.randn(n, joints * e, h, w, generator=gen), torch.randn(joints * r * r, e, ks, ks, generator=gen),
            torch.randn(joints * r * r, generator=gen))


def check_against_torch(backend, poison, emb, weight, bias, r, *, method, flipped_emb=None, flip_indices=None,
                        flip_shift=None, center=None, scale=None, blur_kernel=11):
    kwargs = dict(flipped_emb=flipped_emb, flip_indices=flip_indices, flip_shift=flip_shift, method=method,
                  blur_kernel=blur_kernel, center=center, scale=scale)
    device = DEVICES[backend]
    on_device = {k: (v.to(device) if isinstance(v, torch.Tensor) else v) for k, v in kwargs.items()}
    poison()
    keypoints, scores = sr_head_decode(emb.to(device), weight.to(device), None if bias is None else bias.to(device),
                                       r, backend=backend, **on_device)
    ref_keypoints, ref_scores = sr_head_decode(emb, weight, bias, r, backend="torch", **kwargs)
    keypoints, scores = keypoints.cpu(), scores.cpu()
    assert keypoints.dtype == torch.float32 and scores.dtype == torch.float32
    assert keypoints.shape == ref_keypoints.shape and scores.shape == ref_scores.shape

    # the reference's (merged) float32 heatmaps, for the score scale and DARK's conditioning
    up = [None if t is None else t.float() for t in (emb, weight, bias, flipped_emb)]
    maps = sr_head_reference(up[0], up[1], up[2], r)
    if flipped_emb is not None:
        shift = (method != "dark_udp") if flip_shift is None else flip_shift
        indices = COCO.flip_indices if flip_indices is None else flip_indices
        maps = flip_merge(maps, sr_head_reference(up[3], up[1], up[2], r), indices, shift=shift)
    magnitude = maps.abs().flatten(2).nan_to_num(0.0).amax(-1)
    score_err = torch.where(torch.isnan(scores) & torch.isnan(ref_scores), 0.0, (scores - ref_scores).abs())
    assert (score_err <= 1e-5 * magnitude + 1e-30).all(), f"scores differ by {score_err.max().item()}"

    assert_decoded_close(keypoints, ref_keypoints, maps, method, blur_kernel, scale, f"sr_head_decode {method}")
    return keypoints, scores


@pytest.fixture
def check(fused_backend, poison_kernel_outputs):
    """`check_against_torch` on each backend, with poisoned outputs."""
    return functools.partial(check_against_torch, fused_backend, poison_kernel_outputs)


# --- SRPose's final stage (k=9, e=4, r=4) at tiny size: emb 5x4 -> 20x16 heatmaps ------------------

@pytest.mark.parametrize("method", METHODS)
def test_final_stage_config_coco_flip(check, method):
    # K = 17 with COCO's default flip indices, and the transform to the image
    n, joints, e, ks, r, h, w = 1, 17, 4, 9, 4, 5, 4
    emb, weight, bias = smooth_inputs(n, joints, e, ks, r, h, w, seed=1)
    flipped_emb = smooth_inputs(n, joints, e, ks, r, h, w, seed=2)[0]
    center, scale = boxes(n)
    keypoints, _ = check(emb, weight, bias, r, method=method, flipped_emb=flipped_emb,
                         center=center, scale=scale)
    assert torch.isfinite(keypoints).all()


@pytest.mark.parametrize("method", METHODS)
def test_final_stage_config_batch3_k5(check, method):
    n, joints, e, ks, r, h, w = 3, 5, 4, 9, 4, 5, 4
    emb, weight, bias = smooth_inputs(n, joints, e, ks, r, h, w, seed=24)
    keypoints, _ = check(emb, weight, bias, r, method=method)
    assert torch.isfinite(keypoints).all()


@pytest.mark.parametrize("method", METHODS)
def test_first_stage_config_batch3_k5(check, method):
    # converge[0]'s configuration (k=3, e=16, r=8), emb 3x2 -> 24x16 heatmaps; flip and transform
    n, joints, e, ks, r, h, w = 3, 5, 16, 3, 8, 3, 2
    emb, weight, bias = smooth_inputs(n, joints, e, ks, r, h, w, seed=3)
    flipped_emb = smooth_inputs(n, joints, e, ks, r, h, w, seed=4)[0]
    center, scale = boxes(n, seed=5)
    check(emb, weight, bias, r, method=method, flipped_emb=flipped_emb, flip_indices=K5_FLIP,
          center=center, scale=scale)


@pytest.mark.parametrize("flip_shift", [True, False])
@pytest.mark.parametrize("method", ["shift", "dark_udp"])
def test_odd_config_flip_shift(check, method, flip_shift):
    # k=5, e=3, r=3, emb 3x5 -> 9x15 heatmaps, no bias; the shifted and unshifted flip merges
    n, joints, e, ks, r, h, w = 2, 5, 3, 5, 3, 3, 5
    emb, weight, _ = smooth_inputs(n, joints, e, ks, r, h, w, seed=6)
    flipped_emb = smooth_inputs(n, joints, e, ks, r, h, w, seed=7)[0]
    check(emb, weight, None, r, method=method, flipped_emb=flipped_emb, flip_indices=K5_FLIP,
          flip_shift=flip_shift)


@pytest.mark.parametrize("method", METHODS)
def test_random_weights_negative_maps(check, method):
    # Random weights: heatmaps with negative values around the peaks, where DARK's clamp acts and the
    # kernel recomputes the whole blurred map (from emb, in tiles) for the exact rescale.
    n, joints, e, ks, r, h, w = 2, 2, 2, 3, 2, 5, 4
    emb, weight, bias = random_inputs(n, joints, e, ks, r, h, w, seed=8)
    flipped_emb = random_inputs(n, joints, e, ks, r, h, w, seed=9)[0]
    check(emb, weight, bias, r, method=method, flipped_emb=flipped_emb, flip_indices=[1, 0])


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
@pytest.mark.parametrize("method", ["shift", "dark"])
def test_low_precision_inputs(check, dtype, method):
    # Both backends compute the heatmaps in float32 from the same 16-bit inputs: fp32 tolerances hold.
    n, joints, e, ks, r, h, w = 1, 5, 4, 9, 4, 5, 4
    emb, weight, bias = (t.to(dtype) for t in smooth_inputs(n, joints, e, ks, r, h, w, seed=10))
    flipped_emb = smooth_inputs(n, joints, e, ks, r, h, w, seed=11)[0].to(dtype)
    check(emb, weight, bias, r, method=method, flipped_emb=flipped_emb, flip_indices=K5_FLIP)


@pytest.mark.parametrize("flip_shift", [True, False])
def test_flip_merge_at_the_left_border(check, flip_shift):
    # The merged maximum in column 0, where the shifted flip reads the flipped map's last column (a
    # special case of the argmax pass's flipped GEMMs). A 1x1 conv copies emb into every sub-pixel;
    # the bias favours sub-pixel column 0.
    n, joints, e, ks, r, h, w = 1, 2, 1, 1, 2, 3, 4
    weight = torch.ones(joints * r * r, e, ks, ks)
    bias = torch.tensor([0.5, 0.0] * (joints * r))
    emb = torch.zeros(n, joints * e, h, w)
    flipped_emb = torch.zeros(n, joints * e, h, w)
    emb[0, :, 1, 0] = 2.0
    flipped_emb[0, :, 1, w - 1] = 1.0
    for method in ("argmax", "shift", "dark"):
        keypoints, scores = check(emb, weight, bias, r, method=method, flipped_emb=flipped_emb,
                                  flip_indices=[1, 0], flip_shift=flip_shift)
    assert keypoints[0, :, 0].tolist() == [0.0, 0.0]
    assert scores[0].tolist() == [1.75, 1.75]  # (2 + 0.5 + 1) / 2; unshifted, column 1 ties it


@settings(max_examples=6, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    ks=st.sampled_from([1, 3, 5]), e=st.integers(1, 3), r=st.integers(1, 3), joints=st.integers(1, 3),
    n=st.integers(1, 2), h=st.integers(1, 4), w=st.integers(1, 4), with_bias=st.booleans(),
    method=st.sampled_from(METHODS), flip=st.booleans(), transform=st.booleans(), smooth=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_random_shapes(check, ks, e, r, joints, n, h, w, with_bias, method, flip, transform, smooth, seed):
    if method == "dark_udp" and transform:
        h, w = max(h, 2), max(w, 2)  # UDP's (W - 1, H - 1) scaling needs 2x2 heatmaps (r*h, r*w)
    make = smooth_inputs if smooth else random_inputs
    emb, weight, bias = make(n, joints, e, ks, r, h, w, seed)
    flipped_emb = make(n, joints, e, ks, r, h, w, seed + 1)[0] if flip else None
    center, scale = boxes(n, seed) if transform else (None, None)
    check(emb, weight, bias if with_bias else None, r, method=method, flipped_emb=flipped_emb,
          flip_indices=list(range(joints))[::-1] if flip else None, center=center, scale=scale)


# --- special cases ---------------------------------------------------------------------------------

def test_special_cases(check):
    # (1, 6 joints) with e=2, k=3, r=4, emb 5x4 -> 20x16 maps over two argmax tiles and splits.
    n, joints, e, ks, r, h, w = 1, 6, 2, 3, 4, 5, 4
    emb, weight, bias = smooth_inputs(n, joints, e, ks, r, h, w, seed=12)
    emb, weight, bias = emb.clone(), weight.clone(), bias.clone()
    rr = r * r
    emb[0, 0 * e, 2, 1] = float("nan")                         # joint 0: NaN -> NaN score and keypoint
    weight[1 * rr:2 * rr] = 0.0
    bias[1 * rr:2 * rr] = 0.0                                  # joint 1: all zero -> score 0 at (0, 0)
    weight[2 * rr:3 * rr] = 0.0
    bias[2 * rr:3 * rr] = -torch.arange(1.0, rr + 1)           # joint 2: all negative -> score 0, argmax (0, 0)
    weight[3 * rr:4 * rr] = 0.0
    bias[3 * rr:4 * rr] = 0.0
    bias[3 * rr + 1 * r + 2] = 1.0                             # joint 3: sub-pixel (1, 2) everywhere: ties -> (2, 1)
    emb[0, 4 * e:5 * e] = 0.0
    emb[0, 4 * e, h - 1, w - 1] = 5.0                          # joint 4: peak at the bottom-right border
    weight[5 * rr:6 * rr] = 0.0
    bias[5 * rr:6 * rr] = 0.0
    bias[5 * rr + rr - 1] = 2.0                                # joint 5: ties at every (r-1, r-1) sub-pixel
    expected = {0: (float("nan"),) * 3, 1: (0.0, 0.0, 0.0), 2: (0.0, 0.0, 0.0), 3: (2.0, 1.0, 1.0),
                5: (r - 1.0, r - 1.0, 2.0)}
    for method in METHODS:
        keypoints, scores = check(emb, weight, bias, r, method=method)
        if method == "argmax":
            for j, (x, y, s) in expected.items():
                got = torch.tensor([keypoints[0, j, 0], keypoints[0, j, 1], scores[0, j]])
                torch.testing.assert_close(got, torch.tensor([x, y, s]), rtol=0, atol=0, equal_nan=True,
                                           msg=lambda m: f"joint {j}: {m}")
            assert keypoints[0, 4, 0] >= w * r - 3 and keypoints[0, 4, 1] >= h * r - 3
        assert torch.isnan(keypoints[0, 0]).all() and torch.isnan(scores[0, 0])
        for j in (1, 2):  # max <= 0: never refined
            assert keypoints[0, j].tolist() == [0.0, 0.0] and scores[0, j].item() == 0.0


def test_ties_across_splits_go_to_the_lowest_flat_index(check, monkeypatch):
    # One split per tile of 64 pixels; equal maxima in the second and third tiles, none in the first:
    # the partials' reduction must keep the lowest flat index, whichever split holds it.
    monkeypatch.setattr(launch, "TARGET_PROGRAMS", 10**6)
    n, joints, e, ks, r, h, w = 1, 1, 1, 1, 2, 12, 12  # 144 pixels: 3 tiles -> 3 splits
    weight = torch.zeros(r * r, e, ks, ks)
    weight[3, 0, 0, 0] = 1.0  # sub-pixel (1, 1) = emb
    emb = torch.rand(n, joints * e, h, w, generator=torch.Generator().manual_seed(23))
    emb[0, 0].view(-1)[140] = 3.0  # tile 2: heatmap (x, y) = (17, 23)
    emb[0, 0].view(-1)[70] = 3.0   # tile 1: heatmap (x, y) = (21, 11), the lower flat index
    keypoints, scores = check(emb, weight, None, r, method="argmax")
    assert keypoints[0, 0].tolist() == [21.0, 11.0] and scores[0, 0].item() == 3.0


def test_empty_batch(any_backend):
    emb, weight, bias = (t.to(DEVICES[any_backend]) for t in smooth_inputs(1, 17, 4, 9, 4, 5, 4, seed=13))
    for method in METHODS:
        keypoints, scores = sr_head_decode(emb[:0], weight, bias, 4, method=method, flipped_emb=emb[:0],
                                           backend=any_backend)
        assert keypoints.shape == (0, 17, 2) and scores.shape == (0, 17)


class LargestAllocation(TorchDispatchMode):
    def __init__(self):
        super().__init__()
        self.largest = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in out if isinstance(out, (tuple, list)) else (out,):
            if isinstance(t, torch.Tensor) and t.device.type != "meta":  # meta: a shape, no memory
                self.largest = max(self.largest, t.numel())
        return out


def test_heatmaps_are_never_made(fused_backend):
    # No tensor the size of the heatmaps is made (only copies of the inputs, under the interpreter).
    n, joints, e, ks, r, h, w = 1, 5, 4, 3, 4, 8, 6
    emb, weight, bias = (t.to(DEVICES[fused_backend]) for t in smooth_inputs(n, joints, e, ks, r, h, w, seed=14))
    heatmap_numel = n * joints * (r * h) * (r * w)
    largest_input = max(t.numel() for t in (emb, weight, bias))
    assert largest_input < heatmap_numel
    with LargestAllocation() as mode:
        sr_head_decode(emb, weight, bias, r, flipped_emb=emb, flip_indices=K5_FLIP, method="dark",
                       backend=fused_backend)
    assert 0 < mode.largest <= largest_input
    with LargestAllocation() as mode:  # the control: the torch backend does make them
        sr_head_decode(emb, weight, bias, r, method="dark", backend="torch")
    assert mode.largest >= heatmap_numel


# --- input validation (the same errors from every backend) -----------------------------------------

def bad_input_cases():
    emb, weight, bias = smooth_inputs(1, 17, 2, 3, 2, 4, 3, seed=15)
    center, scale = boxes(1)
    return [
        ("emb rank", (emb[0], weight, bias, 2), {}, "sr_head_decode: x must be"),
        ("channels", (emb[:, :5], weight, bias, 2), {}, "channels"),
        ("even k", (emb, weight[..., :2, :2], bias, 2), {}, "odd k"),
        ("upscale", (emb, weight, bias, 3), {}, "upscale"),
        ("bias", (emb, weight, bias[:-1], 2), {}, "bias"),
        ("integer emb", (emb.long(), weight, bias, 2), {}, "floating-point"),
        ("flipped shape", (emb, weight, bias, 2), dict(flipped_emb=emb[:, :, :2]), "flipped_emb has shape"),
        ("flip indices length", (emb, weight, bias, 2), dict(flipped_emb=emb, flip_indices=[0, 1]), "K = 17"),
        ("flip indices perm", (emb, weight, bias, 2), dict(flipped_emb=emb, flip_indices=[0] * 17), "permutation"),
        ("indices without flip", (emb, weight, bias, 2), dict(flip_indices=COCO.flip_indices), "without flipped"),
        ("method", (emb, weight, bias, 2), dict(method="soft"), "method"),
        ("blur kernel", (emb, weight, bias, 2), dict(blur_kernel=4), "blur_kernel"),
        ("blur kernel bound", (emb, weight, bias, 2), dict(blur_kernel=MAX_BLUR_KERNEL + 2),
         f"sr_head_decode: blur_kernel must be at most MAX_BLUR_KERNEL = {MAX_BLUR_KERNEL}"),
        ("center only", (emb, weight, bias, 2), dict(center=center), "both center and scale"),
        ("center shape", (emb, weight, bias, 2), dict(center=center[:, :1], scale=scale), "center must be"),
        ("backend", (emb, weight, bias, 2), dict(backend="magic"), "backend must be one of"),
    ]


@pytest.mark.parametrize("case", bad_input_cases(), ids=lambda c: c[0])
def test_bad_inputs_raise_value_error(any_backend, case):
    _, args, kwargs, message = case
    kwargs = {"backend": any_backend, **kwargs}
    with pytest.raises(ValueError, match=message):
        sr_head_decode(*args, **kwargs)


def test_flip_indices_required_for_other_k():
    emb, weight, bias = smooth_inputs(1, 5, 2, 3, 2, 4, 3, seed=16)
    with pytest.raises(ValueError, match="flip_indices is required"):
        sr_head_decode(emb, weight, bias, 2, flipped_emb=emb)


def test_triton_rejects_float64_and_mixed_dtypes():
    emb, weight, bias = smooth_inputs(1, 2, 2, 3, 2, 4, 3, seed=17)
    with pytest.raises(ValueError, match="dtype"):
        sr_head_decode(emb.double(), weight.double(), bias.double(), 2, backend="triton")
    with pytest.raises(ValueError, match="dtype"):
        sr_head_decode(emb, weight.half(), bias, 2, backend="triton")


# --- the registered op -----------------------------------------------------------------------------

# As for decode_heatmaps: under the interpreter only the checks that do not trace into the kernels.
CPU_OPCHECK_UTILS = ("test_schema", "test_autograd_registration", "test_faketensor")


def test_opcheck(fused_backend):
    device = DEVICES[fused_backend]
    emb, weight, bias = (t.to(device) for t in smooth_inputs(2, 5, 4, 3, 2, 4, 3, seed=18))
    center, scale = (t.to(device) for t in boxes(2))
    index = torch.tensor(K5_FLIP, device=device)
    utils = CPU_OPCHECK_UTILS if device == "cpu" else CPU_OPCHECK_UTILS + ("test_aot_dispatch_dynamic",)
    for args in ((emb, weight, bias, 2, emb.flip(-1), index, True, "dark", 11, center, scale),
                 (emb.half(), weight.half(), None, 2, None, None, False, "shift", 11, None, None)):
        torch.library.opcheck(fused_op("sr_head_decode", fused_backend).default, args, test_utils=utils)


def test_compile_fullgraph_smoke(fused_backend):
    # backend="eager": Dynamo traces sr_head_decode into one graph through the registered fake.
    emb, weight, bias = smooth_inputs(1, 5, 4, 3, 2, 4, 3, seed=19)
    device = DEVICES[fused_backend]
    fn = torch.compile(lambda a, b, c: sr_head_decode(a, b, c, 2, flipped_emb=a, flip_indices=K5_FLIP,
                                                      backend=fused_backend), fullgraph=True, backend="eager")
    keypoints, scores = fn(emb.to(device), weight.to(device), bias.to(device))
    ref_keypoints, _ = sr_head_decode(emb, weight, bias, 2, flipped_emb=emb, flip_indices=K5_FLIP, backend="torch")
    assert torch.equal(keypoints.cpu(), ref_keypoints) and scores.shape == (1, 5)


@pytest.mark.cuda
def test_compile_fullgraph_inductor_cuda(fused_backend):
    emb, weight, bias = (t.cuda() for t in smooth_inputs(2, 17, 4, 9, 4, 16, 12, seed=20))
    fn = torch.compile(lambda a, b, c: sr_head_decode(a, b, c, 4, flipped_emb=a, method="dark",
                                                      backend=fused_backend), fullgraph=True)
    keypoints, _ = fn(emb, weight, bias)
    ref_keypoints, _ = sr_head_decode(emb, weight, bias, 4, flipped_emb=emb, method="dark", backend="torch")
    torch.testing.assert_close(keypoints, ref_keypoints, rtol=0, atol=1e-3)


@pytest.mark.cuda
@pytest.mark.parametrize("method", METHODS)
def test_model_size_cuda(check, method):
    # SRPose's final stage at full size: emb 64x48 -> 256x192 heatmaps, batch 4, flip test and transform.
    emb, weight, bias = smooth_inputs(4, 17, 4, 9, 4, 64, 48, seed=21)
    flipped_emb = smooth_inputs(4, 17, 4, 9, 4, 64, 48, seed=22)[0]
    center, scale = boxes(4)
    check(emb, weight, bias, 4, method=method, flipped_emb=flipped_emb, center=center, scale=scale)


def test_import_and_torch_backend_without_triton(run_without_triton):
    """`import srpose_fast.ops` neither imports nor needs triton when it is absent; backend="triton" then
    says what is missing. Run in a fresh interpreter where importing triton fails."""
    run_without_triton("""
        import sys
        import torch
        from srpose_fast.ops import decode_heatmaps
        from srpose_fast.ops.sr_head_decode import sr_head_decode
        emb, w = torch.randn(1, 4, 3, 3), torch.randn(8, 2, 3, 3)
        assert sr_head_decode(emb, w, None, 2)[0].shape == (1, 2, 2)
        assert decode_heatmaps(torch.rand(1, 2, 4, 4))[0].shape == (1, 2, 2)
        assert "triton" not in sys.modules
        assert not hasattr(torch.ops.srpose_fast, "sr_head_decode_triton")
        assert not hasattr(torch.ops.srpose_fast, "decode_heatmaps_triton")
        for call in (lambda: sr_head_decode(emb, w, None, 2, backend="triton"),
                     lambda: decode_heatmaps(torch.rand(1, 2, 4, 4), backend="triton")):
            try:
                call()
            except RuntimeError as err:
                assert "triton" in str(err)
            else:
                raise AssertionError("backend='triton' without triton did not raise")
    """)
