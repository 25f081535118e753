"""srpose_fast.ops.decode: each backend of `decode_heatmaps` (triton, cuda, cpp: tests/ops/conftest.py)
against the torch reference, the registered ops, and the public entry point (order of steps, I/O types,
errors). The deployment decoder's own API (HeatmapDecoder) is tested in tests/deploy.

Without a GPU the Triton kernels run under TRITON_INTERPRET=1 on CPU tensors (tests/conftest.py sets it);
with one, the same tests run the compiled kernels on CUDA tensors, and the CUDA C++ kernel too.

Tolerances: argmax, scores and "shift" must be bit-identical (every backend merges, compares and differences
the same float32 values as the reference). "dark"/"dark_udp" blur in another summation order and use
Triton's log, so L differs in its last bits; DARK's Newton step divides by its Hessian and so amplifies
such differences where the Hessian is ill-conditioned. Their keypoints are held to 1e-4 px plus 8x the
reference's own change when its input is perturbed by 1e-6 relative (its conditioning, measured): on
Gaussian maps that is ~1e-4 px; on random maps it admits what the reference itself cannot resolve.
"""
import functools

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import srpose_fast
from srpose_fast.codecs.decoders import decode_locations
from srpose_fast.codecs.flip import flip_merge
from srpose_fast.codecs.targets import encode_heatmaps
from srpose_fast.codecs.transforms import heatmap_to_image
from srpose_fast.keypoint_sets import COCO, MPII
from srpose_fast.ops.decode import MAX_BLUR_KERNEL, SUPPORTED_BACKENDS, decode_heatmaps
from srpose_fast.ops.registry import fused_op

from backends import DEVICES
from keypoint_checks import assert_decoded_close, boxes, gaussian_maps

from tolerances import exact_fp32_reference  # noqa: F401,E402  (a fixture: the torch reference without TF32)

pytest.importorskip("triton")
from srpose_fast.kernels import decode as decode_kernels  # noqa: E402  (after conftest set the interpreter)
from srpose_fast.kernels import launch  # noqa: E402

METHODS = ("argmax", "shift", "dark", "dark_udp")
K5_FLIP = [0, 2, 1, 4, 3]


# every buffer the Triton launchers allocate starts as NaN (tests/conftest.py)
pytestmark = pytest.mark.usefixtures("poison_kernel_outputs", "exact_fp32_reference")


def check_against_reference(backend, poison, maps, *, method, flipped=None, flip_indices=None, flip_shift=None,
                            center=None, scale=None, blur_kernel=11):
    """Run `backend` and the reference on the same inputs; compare as the module docstring says. Returns the
    backend's outputs (on the CPU)."""
    kwargs = dict(method=method, flipped=flipped, flip_indices=flip_indices, flip_shift=flip_shift, center=center,
                  scale=scale, blur_kernel=blur_kernel)
    device = DEVICES[backend]
    moved = {k: (v.to(device) if isinstance(v, torch.Tensor) else v) for k, v in kwargs.items()}
    poison()
    keypoints, scores = decode_heatmaps(maps.to(device), backend=backend, **moved)
    ref_keypoints, ref_scores = decode_heatmaps(maps, backend="torch", **kwargs)
    keypoints, scores = keypoints.cpu(), scores.cpu()
    assert keypoints.dtype == torch.float32 and scores.dtype == torch.float32
    assert keypoints.shape == ref_keypoints.shape and scores.shape == ref_scores.shape
    torch.testing.assert_close(scores, ref_scores, rtol=0, atol=0, equal_nan=True)

    shift = (method != "dark_udp") if flip_shift is None else flip_shift
    if flipped is None:
        merged = maps.float()
    else:
        merged = flip_merge(maps, flipped, COCO.flip_indices if flip_indices is None else flip_indices, shift=shift)
    # the CUDA kernel rounds the transform's products and sums as torch does
    assert_decoded_close(keypoints, ref_keypoints, merged, method, blur_kernel, scale, f"decode {method} ({backend})",
                         keep_exact=backend == "cuda")
    return keypoints, scores


@pytest.fixture
def check(decode_backend, poison_kernel_outputs):
    """`check_against_reference` on each backend, with poisoned outputs."""
    return functools.partial(check_against_reference, decode_backend, poison_kernel_outputs)


# --- Gaussian maps: every method, with and without flip and transform ---------------------------

@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("flip", [False, True], ids=["plain", "flip"])
@pytest.mark.parametrize("transform", [False, True], ids=["heatmap_px", "image_px"])
def test_gaussian_maps_coco(check, method, flip, transform):
    n, k, h, w = 1, 17, 17, 13
    maps = gaussian_maps(n, k, h, w, seed=10)
    flipped = gaussian_maps(n, k, h, w, seed=11) if flip else None
    center, scale = boxes(n) if transform else (None, None)
    keypoints, _ = check(maps, method=method, flipped=flipped,
                         center=center, scale=scale)
    assert torch.isfinite(keypoints).all()


@pytest.mark.parametrize("method", METHODS)
def test_odd_shape_batch3_k5_flip_transform(check, method):
    n, k, h, w = 3, 5, 9, 7
    maps = gaussian_maps(n, k, h, w, seed=20, sigma=1.0)
    flipped = gaussian_maps(n, k, h, w, seed=21, sigma=1.0)
    center, scale = boxes(n, seed=22)
    check(maps, method=method, flipped=flipped,
          flip_indices=K5_FLIP, center=center, scale=scale)


@pytest.mark.parametrize("flip_shift", [True, False])
def test_flip_shift_override(check, flip_shift):
    maps = gaussian_maps(2, 5, 9, 7, seed=23)
    flipped = gaussian_maps(2, 5, 9, 7, seed=24)
    for method in ("shift", "dark_udp"):
        check(maps, method=method, flipped=flipped,
              flip_indices=K5_FLIP, flip_shift=flip_shift)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16, torch.float64])
@pytest.mark.parametrize("method", METHODS)
def test_other_dtypes(check, dtype, method):
    # Every backend decodes the same values in float32 (16-bit ones upcast exactly, float64 rounded first, as
    # the reference does), so the same tolerances hold as for fp32.
    maps = gaussian_maps(1, 5, 17, 13, seed=30).to(dtype)
    flipped = gaussian_maps(1, 5, 17, 13, seed=31).to(dtype)
    center, scale = boxes(1, seed=32)
    check(maps, method=method, flipped=flipped,
          flip_indices=K5_FLIP, center=center, scale=scale)


@pytest.mark.parametrize("blur_kernel", [1, 3, MAX_BLUR_KERNEL])
def test_other_blur_kernels(check, blur_kernel):
    maps = gaussian_maps(1, 5, 23, 19, seed=40, sigma=2.5)
    for method in ("dark", "dark_udp"):
        check(maps, method=method, blur_kernel=blur_kernel)


def test_large_map_several_tiles(check, decode_backend):
    # 48x40 = 1920 values: two argmax tiles of 1024 (one lane sees flat indices i and i + 1024).
    maps = gaussian_maps(1, 5, 48, 40, seed=41, sigma=2.0)
    ties = {2: (100, 1124), 3: (1500, 700), 4: (1919, 1023)}  # equal maxima: same lane, two lanes, tile edges
    for j, flats in ties.items():
        maps[0, j] *= 0.5
        for flat in flats:
            maps[0, j].view(-1)[flat] = 4.0
    for method in METHODS:
        check(maps, method=method)
    keypoints, _ = decode_heatmaps(maps.to(DEVICES[decode_backend]), method="argmax", backend=decode_backend)
    for j, flats in ties.items():
        assert keypoints[0, j].tolist() == [min(flats) % 40, min(flats) // 40]


def test_non_contiguous_inputs_on_each_backend(check):
    maps = gaussian_maps(2, 5, 9, 7, seed=42).transpose(2, 3).contiguous().transpose(2, 3)  # column-major planes
    flipped = gaussian_maps(5, 2, 9, 7, seed=43).transpose(0, 1)  # batch and joint strides swapped
    assert not maps.is_contiguous() and not flipped.is_contiguous()
    for method in ("shift", "dark"):
        check(maps, method=method, flipped=flipped,
              flip_indices=K5_FLIP)


# --- random maps (the reference's conditioning sets the DARK tolerance) -----------------------------

@settings(max_examples=8, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    n=st.integers(1, 2), k=st.integers(1, 3), h=st.integers(1, 12), w=st.integers(1, 12),
    method=st.sampled_from(METHODS), flip=st.booleans(), transform=st.booleans(),
    kind=st.sampled_from(["uniform", "normal", "sparse"]), seed=st.integers(0, 2**16),
)
def test_random_maps(check, decode_backend, n, k, h, w, method, flip, transform, kind, seed):
    # The C++ decoder computes DARK in float64: where DARK-UDP's clip makes the float32 reference's step a
    # rounding residue divided by eps, no tolerance relates the two (tests/deploy compares those apart).
    assume(not (decode_backend == "cpp" and method == "dark_udp"))
    gen = torch.Generator().manual_seed(seed)

    def make():
        if kind == "uniform":
            return torch.rand(n, k, h, w, generator=gen)
        if kind == "normal":
            return torch.randn(n, k, h, w, generator=gen)
        return torch.rand(n, k, h, w, generator=gen) * (torch.rand(n, k, h, w, generator=gen) < 0.2)

    if method == "dark_udp" and transform and (h < 2 or w < 2):
        h, w = max(h, 2), max(w, 2)  # UDP's (W - 1, H - 1) scaling needs 2x2 (a ValueError otherwise)
    maps = make()
    flipped = make() if flip else None
    center, scale = boxes(n, seed) if transform else (None, None)
    check(maps, method=method, flipped=flipped,
          flip_indices=list(range(k))[::-1] if flip else None,
          center=center, scale=scale)


# --- special cases ----------------------------------------------------------------------------------

def special_maps():
    """One (1, 9, 9, 7) batch whose joints are the special cases, and what argmax must give for each."""
    h, w = 9, 7
    base = gaussian_maps(1, 9, h, w, seed=50)[0]
    maps = base.clone()
    expected = {}
    maps[0, 4, 3] = float("nan")
    expected[0] = (float("nan"), float("nan"), float("nan"))         # NaN anywhere -> NaN
    maps[1] = 0.0
    expected[1] = (0.0, 0.0, 0.0)                                    # all zero: score 0 at index 0
    maps[2] = -1.0 - base[2]
    x, y = divmod(int(maps[2].flatten().argmax()), w)[::-1]
    expected[2] = (float(x), float(y), 0.0)                          # all negative: score 0, argmax kept
    maps[3] = base[3] * 0.5
    maps[3, 0, 0] = 2.0
    expected[3] = (0.0, 0.0, 2.0)                                    # maximum at a corner
    maps[4] = base[4] * 0.5
    maps[4, 5, w - 1] = 2.0
    expected[4] = (w - 1.0, 5.0, 2.0)                                # maximum on the right border
    maps[5] = base[5] * 0.5
    maps[5, h - 1, 3] = 2.0
    expected[5] = (3.0, h - 1.0, 2.0)                                # maximum on the bottom border
    maps[6] = base[6] * 0.5
    maps[6, 6, 2] = 3.0
    maps[6, 2, 5] = 3.0
    expected[6] = (5.0, 2.0, 3.0)                                    # a tie: the lowest flat index wins
    maps[7] = 0.25
    expected[7] = (0.0, 0.0, 0.25)                                   # a constant map: index 0
    maps[8] = base[8] * 0.5
    maps[8, 3, 4] = float("inf")
    expected[8] = (4.0, 3.0, float("inf"))                           # +inf is the maximum (DARK: NaN)
    return maps[None], expected


@pytest.mark.parametrize("method", METHODS)
def test_special_cases(check, decode_backend, method):
    maps, expected = special_maps()
    keypoints, scores = check(maps, method=method,
                              flip_indices=None)
    argmax_kp, argmax_scores = decode_heatmaps(maps.to(DEVICES[decode_backend]), method="argmax",
                                               backend=decode_backend)
    for j, (x, y, score) in expected.items():
        got = (argmax_kp[0, j, 0].item(), argmax_kp[0, j, 1].item(), argmax_scores[0, j].item())
        torch.testing.assert_close(torch.tensor(got), torch.tensor((x, y, score)), rtol=0, atol=0, equal_nan=True,
                                   msg=lambda m: f"joint {j}: {m}")
    for j in (0, 1, 2):  # NaN, all-zero, all-negative maps are never refined
        torch.testing.assert_close(keypoints[0, j], argmax_kp[0, j].cpu(), rtol=0, atol=0, equal_nan=True)


def test_more_special_maps(check):
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
        keypoints, scores = check(maps, method=method)
        assert scores[0, 0] == 0 and keypoints[0, 0].tolist() == [0.0, 0.0]
        assert torch.isnan(scores[0, 2]) and torch.isnan(keypoints[0, 2]).all()


def test_tiny_maps(check):
    # (larger odd shapes: test_random_maps)
    for h, w in ((1, 1), (1, 7), (3, 2)):
        maps = gaussian_maps(2, 3, h, w, seed=h * 10 + w, sigma=0.7)
        flipped = gaussian_maps(2, 3, h, w, seed=h * 10 + w + 1, sigma=0.7)
        center, scale = boxes(2, seed=3)
        for method in METHODS:
            if method == "dark_udp" and (h < 2 or w < 2):
                continue  # UDP's (W - 1, H - 1) scaling needs 2x2 (a ValueError)
            check(maps, method=method, flipped=flipped,
                  flip_indices=[2, 1, 0], center=center, scale=scale)


def test_nan_in_the_flipped_map_only(check):
    maps = gaussian_maps(1, 5, 9, 7, seed=51)
    flipped = gaussian_maps(1, 5, 9, 7, seed=52)
    flipped[0, 2, 4, 4] = float("nan")  # joint 2's map comes from flipped joint K5_FLIP[2] = 1
    for method in ("shift", "dark"):
        keypoints, scores = check(maps, method=method,
                                  flipped=flipped, flip_indices=K5_FLIP)
        assert torch.isnan(scores[0, 1]) and torch.isnan(keypoints[0, 1]).all()
        assert torch.isfinite(scores[0, [0, 2, 3, 4]]).all()


def test_maps_split_across_programs_keep_the_reference_semantics(check, decode_backend):
    # 40x60 = 2400 values: tiles of 1024, so the argmax pass gives each map to 3 programs whose partials
    # the refinement reduces. Joint 0: equal maxima in the second and third tiles (the lower flat index
    # wins); joint 1: the maximum in the first tile, an equal one in the third; joint 2: NaN in the last
    # tile only; joint 3: a map <= 0 whose maximum lies in the middle tile.
    h, w = 40, 60
    maps = gaussian_maps(1, 5, h, w, seed=54, sigma=2.0) * 0.5
    flat = maps[0].view(5, -1)
    flat[0, 2100], flat[0, 1500] = 3.0, 3.0
    flat[1, 300], flat[1, 2300] = 3.0, 3.0
    flat[2, 2399] = float("nan")
    flat[3] = -1.0 - flat[3]
    flat[3, 1200] = -0.5
    for method in METHODS:
        keypoints, scores = check(maps, method=method)
        assert scores[0, 0] == 3.0 and scores[0, 1] == 3.0 and torch.isnan(scores[0, 2]) and scores[0, 3] == 0.0
    argmax_kp, _ = decode_heatmaps(maps.to(DEVICES[decode_backend]), method="argmax", backend=decode_backend)
    assert argmax_kp[0, :2].cpu().tolist() == [[1500 % w, 1500 // w], [300 % w, 300 // w]]
    assert argmax_kp[0, 3].cpu().tolist() == [1200 % w, 1200 // w]


def test_empty_batch(any_decode_backend):
    device = DEVICES[any_decode_backend]
    for method in METHODS:
        keypoints, scores = decode_heatmaps(torch.zeros(0, 17, 9, 7, device=device), method=method,
                                            backend=any_decode_backend, flipped=torch.zeros(0, 17, 9, 7, device=device),
                                            center=torch.zeros(0, 2, device=device),
                                            scale=torch.ones(0, 2, device=device))
        assert keypoints.shape == (0, 17, 2) and scores.shape == (0, 17)
    keypoints, scores = decode_heatmaps(np.zeros((0, 5, 8, 8), np.float32), method="dark", backend="torch")
    assert keypoints.shape == (0, 5, 2) and isinstance(keypoints, np.ndarray)


def test_integer_heatmaps_are_decoded_as_float(check):
    maps = (gaussian_maps(1, 5, 9, 7, seed=53) * 100).to(torch.int32)
    for method in ("argmax", "shift"):
        check(maps, method=method)


# --- DARK's rescale: where the clamp acts, the kernel computes the exact blurred maximum ------------

def test_dark_clamp_acts_on_negative_surroundings(check):
    # A narrow positive peak on a negative floor: the blurred map is negative around the peak, so
    # the 1e-10 clamp acts at stencil points and the rescale factor (map max / blurred max, here even
    # negative when the blurred maximum is) decides the result.
    maps = gaussian_maps(1, 5, 17, 13, seed=60, sigma=1.0, noise=0.2) * 3.0 - 1.0
    check(maps, method="dark")
    check(maps, method="dark_udp")


def test_dark_udp_upper_clip_acts_on_large_maps(check):
    # Maximum 100: the reference clips the rescaled blurred map at 50 around the peak.
    maps = gaussian_maps(1, 5, 17, 13, seed=61, sigma=2.0) * 100.0
    check(maps, method="dark_udp")
    # and a sparse map whose blurred stencil falls under 1e-3 (the lower clip)
    sparse = torch.zeros(1, 2, 17, 13)
    sparse[0, 0, 8, 6], sparse[0, 0, 8, 7] = 1e-3, 5e-4
    sparse[0, 1, 2, 2] = 1.0
    check(sparse, method="dark_udp")
    check(sparse, method="dark")


# --- the registered op -------------------------------------------------------------------------------

# Under the interpreter, triton_op's functional decomposition (used by AOTAutograd, hence by opcheck's
# test_aot_dispatch_* and torch.compile's aot backends) would hand fake tensors to the interpreted kernel,
# which reads real memory; so on CPU opcheck runs the checks that do not trace into the kernel.
CPU_OPCHECK_UTILS = ("test_schema", "test_autograd_registration", "test_faketensor")


def test_opcheck(fused_backend):
    device = DEVICES[fused_backend]
    maps = gaussian_maps(2, 5, 9, 7, seed=70).to(device)
    flipped = gaussian_maps(2, 5, 9, 7, seed=71).to(device)
    center, scale = (t.to(device) for t in boxes(2))
    index = torch.tensor(K5_FLIP, device=device)
    utils = CPU_OPCHECK_UTILS if device == "cpu" else CPU_OPCHECK_UTILS + ("test_aot_dispatch_dynamic",)
    for args in ((maps, flipped, index, True, "dark", 11, center, scale),
                 (maps.half(), None, None, False, "shift", 11, None, None)):
        torch.library.opcheck(fused_op("decode_heatmaps", fused_backend).default, args, test_utils=utils)


def test_compile_fullgraph_smoke(fused_backend):
    # backend="eager": Dynamo traces decode_heatmaps into one graph (no break) through the registered
    # fake; the inductor backend needs real kernels (see above) and is tested on CUDA.
    maps = gaussian_maps(1, 5, 9, 7, seed=72)
    flipped = gaussian_maps(1, 5, 9, 7, seed=73)
    device = DEVICES[fused_backend]
    fn = torch.compile(lambda m, f: decode_heatmaps(m, flipped=f, flip_indices=K5_FLIP, method="shift",
                                                    backend=fused_backend), fullgraph=True, backend="eager")
    keypoints, scores = fn(maps.to(device), flipped.to(device))
    ref_keypoints, ref_scores = decode_heatmaps(maps, flipped=flipped, flip_indices=K5_FLIP, method="shift",
                                                backend="torch")
    assert torch.equal(keypoints.cpu(), ref_keypoints) and torch.equal(scores.cpu(), ref_scores)


@pytest.mark.cuda
def test_compile_fullgraph_inductor_cuda(fused_backend):
    maps = gaussian_maps(4, 17, 64, 48, seed=73).cuda()
    fn = torch.compile(lambda m: decode_heatmaps(m, method="dark", backend=fused_backend), fullgraph=True)
    keypoints, scores = fn(maps)
    ref_keypoints, ref_scores = decode_heatmaps(maps, method="dark", backend="torch")
    assert torch.equal(scores, ref_scores)
    torch.testing.assert_close(keypoints, ref_keypoints, rtol=0, atol=1e-3)


@pytest.mark.cuda
@pytest.mark.parametrize("method", METHODS)
def test_model_size_maps_cuda(check, method):
    # SRPose's 256x192 final maps, batch 8, flip test and transform: 48 argmax tiles per map.
    maps = gaussian_maps(8, 17, 256, 192, seed=74, sigma=8.0)
    flipped = gaussian_maps(8, 17, 256, 192, seed=75, sigma=8.0)
    center, scale = boxes(8)
    check(maps, method=method, flipped=flipped, center=center,
          scale=scale)


@pytest.mark.cuda
def test_auto_picks_triton_on_cuda():
    from srpose_fast.ops.backend import resolve_backend
    assert resolve_backend("auto", torch.device("cuda"), op="decode_heatmaps",
                           supported=SUPPORTED_BACKENDS) in ("triton", "cuda")


def test_triton_needs_cuda_tensors_outside_the_interpreter():
    if launch.interpreted(decode_kernels._decode_argmax_kernel):
        pytest.skip("under TRITON_INTERPRET=1 CPU tensors are allowed")
    with pytest.raises(ValueError, match="CUDA"):
        decode_heatmaps(torch.rand(1, 2, 4, 4), backend="triton")


def test_flip_indices_and_blur_taps_are_made_once_per_device():
    # a tensor made from a list per call is a host-to-device copy and a sync on CUDA (illegal in graph capture)
    from srpose_fast.codecs.decoders import gaussian_taps
    from srpose_fast.kernels.refine import blur_taps
    from srpose_fast.ops.decode import flip_index_tensor

    cpu = torch.device("cpu")
    indices = flip_index_tensor(COCO.flip_indices, cpu)
    assert indices is flip_index_tensor(list(COCO.flip_indices), cpu)
    assert indices.dtype == torch.int32 and indices.tolist() == list(COCO.flip_indices)
    taps = blur_taps(11, cpu)
    assert taps is blur_taps(11, cpu) and torch.equal(taps, gaussian_taps(11, cpu))


# --- the public entry point (what every backend shares: steps, types, errors) ------------------------

def coco_maps(n=2, k=17, height=32, width=24, seed=0, method="unbiased"):
    rng = np.random.default_rng(seed)
    kp = rng.uniform(3, [width - 4, height - 4], (n, k, 2)).astype(np.float32)
    maps, _ = encode_heatmaps(torch.from_numpy(kp), torch.ones(n, k), (height, width), 1.5, method=method)
    return maps + 0.01 * torch.rand(maps.shape, generator=torch.Generator().manual_seed(seed)), torch.from_numpy(kp)


def test_exported_from_the_package():
    assert srpose_fast.decode_heatmaps is decode_heatmaps
    assert srpose_fast.ops.decode_heatmaps is decode_heatmaps


@pytest.mark.parametrize("method", METHODS)
def test_composes_flip_decode_transform_in_order(method):
    maps, _ = coco_maps(seed=2)
    flipped, _ = coco_maps(seed=3)
    center, scale = boxes(2)
    keypoints, scores = decode_heatmaps(maps, method=method, flipped=flipped, center=center, scale=scale,
                                        blur_kernel=5, backend="torch")
    merged = flip_merge(maps, flipped, COCO.flip_indices, shift=method != "dark_udp")
    locs, expected_scores = decode_locations(merged, method, 5)
    expected = heatmap_to_image(locs, center, scale, (32, 24), udp=method == "dark_udp")
    assert torch.equal(keypoints, expected) and torch.equal(scores, expected_scores)
    assert keypoints.dtype == torch.float32 and scores.dtype == torch.float32


def test_plain_decode_is_in_heatmap_pixels():
    maps, kp = coco_maps(seed=4)
    keypoints, scores = decode_heatmaps(maps, method="dark")
    assert (keypoints - kp).abs().max() < 0.1
    assert scores.shape == (2, 17)


def test_flip_shift_override_and_explicit_indices():
    maps, _ = coco_maps(k=16, seed=5)
    flipped, _ = coco_maps(k=16, seed=6)
    for shift in (True, False):
        out = decode_heatmaps(maps, method="argmax", flipped=flipped, flip_indices=MPII.flip_indices, flip_shift=shift)
        expected = decode_locations(flip_merge(maps, flipped, MPII.flip_indices, shift=shift), "argmax")
        assert torch.equal(out[0], expected[0]) and torch.equal(out[1], expected[1])
    with pytest.raises(ValueError, match="flip_indices is required"):
        decode_heatmaps(maps, flipped=flipped)


def test_numpy_in_numpy_out_and_torch_in_torch_out():
    maps, _ = coco_maps(seed=7)
    center, scale = boxes(2)
    kp_t, sc_t = decode_heatmaps(maps, center=center, scale=scale)
    kp_n, sc_n = decode_heatmaps(maps.numpy(), center=center.numpy(), scale=scale.numpy())
    assert isinstance(kp_n, np.ndarray) and isinstance(sc_n, np.ndarray)
    assert kp_n.dtype == np.float32 and sc_n.dtype == np.float32
    np.testing.assert_array_equal(kp_n, kp_t.numpy())
    np.testing.assert_array_equal(sc_n, sc_t.numpy())
    # mixed: numpy flipped/center with torch heatmaps, lists for center/scale
    kp_mixed, _ = decode_heatmaps(maps, flipped=maps.numpy(), center=center.tolist(), scale=scale.numpy())
    assert isinstance(kp_mixed, torch.Tensor)
    readonly = maps.numpy().copy()
    readonly.flags.writeable = False
    assert isinstance(decode_heatmaps(readonly)[0], np.ndarray)


def test_outputs_are_detached():
    maps, _ = coco_maps(seed=8)
    maps.requires_grad_(True)
    keypoints, scores = decode_heatmaps(maps)
    assert not keypoints.requires_grad and not scores.requires_grad


@pytest.mark.parametrize("method", METHODS)
def test_special_maps_through_the_whole_pipeline(method):
    maps, _ = coco_maps(n=1, k=4, seed=9)
    maps[0, 0, 4, 5] = float("nan")
    maps[0, 1] = 0.0
    maps[0, 2] = -torch.rand(32, 24) - 0.5
    maps[0, 2, 10, 7] = -0.1
    center, scale = boxes(1)
    keypoints, scores = decode_heatmaps(maps, method=method, center=center, scale=scale)
    assert torch.isnan(keypoints[0, 0]).all() and torch.isnan(scores[0, 0])
    assert scores[0, 1] == 0 and scores[0, 2] == 0 and scores[0, 3] > 0.9
    raw = torch.tensor([[[0.0, 0.0], [0.0, 0.0], [7.0, 10.0], [0.0, 0.0]]])
    expected = heatmap_to_image(raw, center, scale, (32, 24), udp=method == "dark_udp")
    assert torch.equal(keypoints[0, 1:3], expected[0, 1:3])


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float64])
def test_dtypes(dtype):
    maps, _ = coco_maps(seed=10)
    maps = maps.to(dtype)
    keypoints, scores = decode_heatmaps(maps, method="dark")
    expected = decode_heatmaps(maps.float(), method="dark")
    assert keypoints.dtype == torch.float32 and torch.equal(keypoints, expected[0]) and torch.equal(scores, expected[1])
    if dtype == torch.float16:
        out = decode_heatmaps(maps.numpy(), method="shift")
        assert out[0].dtype == np.float32


def test_non_contiguous_inputs_and_boxes_of_the_public_op():
    maps, _ = coco_maps(seed=11)
    view = maps.transpose(2, 3).contiguous().transpose(2, 3)
    center, scale = boxes(2)
    center_view = torch.cat([center, center], dim=1)[:, :2]
    assert not view.is_contiguous() and not center_view.is_contiguous()
    out = decode_heatmaps(view, flipped=view, center=center_view, scale=scale.t().contiguous().t())
    expected = decode_heatmaps(maps, flipped=maps, center=center, scale=scale)
    assert torch.equal(out[0], expected[0]) and torch.equal(out[1], expected[1])
    center1, scale1 = boxes(1)
    expanded = decode_heatmaps(maps, center=center1.expand(2, 2), scale=scale1.expand(2, 2))
    assert torch.equal(expanded[0], decode_heatmaps(maps, center=center1.repeat(2, 1), scale=scale1.repeat(2, 1))[0])


def test_ties_and_border_maxima():
    maps = torch.zeros(1, 2, 8, 8)
    maps[0, 0, 5, 1] = maps[0, 0, 2, 6] = 1.0  # flat 41 vs 22
    maps[0, 1, 0, 7] = 1.0
    maps[0, 1, 0, 6] = 0.5
    keypoints, scores = decode_heatmaps(maps, method="shift")
    assert keypoints[0].tolist() == [[6.0, 2.0], [7.0, 0.0]] and scores[0].tolist() == [1.0, 1.0]


@pytest.mark.parametrize("kwargs, match", [
    (dict(heatmaps=torch.zeros(17, 8, 8)), r"\(N, K, H, W\)"),
    (dict(heatmaps=np.zeros((1, 2, 3, 4, 5), np.float32)), r"\(N, K, H, W\)"),
    (dict(heatmaps=torch.zeros(1, 17, 0, 8)), "H, W >= 1"),
    (dict(heatmaps=torch.zeros(1, 17, 8, 8, dtype=torch.bool)), "real numbers"),
    (dict(flipped=torch.zeros(1, 16, 8, 8)), "flipped has shape"),
    (dict(flipped=torch.zeros(1, 17, 8, 8), flip_indices=list(range(16))), "K = 17"),
    (dict(flipped=torch.zeros(1, 17, 8, 8), flip_indices=[0] * 17), "permutation"),
    (dict(flip_indices=COCO.flip_indices), "without flipped"),
    (dict(method="soft_argmax"), "method"),
    (dict(blur_kernel=4), "blur_kernel"),
    (dict(blur_kernel=0), "blur_kernel"),
    (dict(blur_kernel=-3), "blur_kernel"),
    (dict(blur_kernel=3.0), "blur_kernel"),
    (dict(blur_kernel=MAX_BLUR_KERNEL + 2), f"at most MAX_BLUR_KERNEL = {MAX_BLUR_KERNEL}"),
    (dict(center=torch.zeros(1, 2)), "both center and scale"),
    (dict(scale=torch.zeros(1, 2)), "both center and scale"),
    (dict(center=torch.zeros(2, 2), scale=torch.ones(1, 2)), "center must be"),
    (dict(center=torch.zeros(1, 2), scale=torch.ones(2)), "scale must be"),
    (dict(center=torch.zeros(1, 3), scale=torch.ones(1, 2)), "center must be"),
    (dict(backend="opencl"), "backend must be one of"),
    (dict(backend="magic"), "backend must be one of"),
])
def test_bad_inputs(any_decode_backend, kwargs, match):
    # the validator refuses them before any backend runs, with the same message
    kwargs = dict(kwargs)  # the parameters are shared by every backend's run
    heatmaps = kwargs.pop("heatmaps", torch.rand(1, 17, 8, 8))
    kwargs.setdefault("backend", any_decode_backend)
    with pytest.raises(ValueError, match=match):
        decode_heatmaps(heatmaps, **kwargs)
