"""srpose_fast.ops.decode, backend="triton" (kernels/decode.py) against the torch reference backend.

Without a GPU the kernel runs under TRITON_INTERPRET=1 on CPU tensors (tests/conftest.py sets it); with
one, the same tests run the compiled kernel on CUDA tensors.

Tolerances: argmax, scores and "shift" must be bit-identical (the kernel merges, compares and differences
the same float32 values as the reference). "dark"/"dark_udp" blur in another summation order and use
Triton's log, so L differs in its last bits; DARK's Newton step divides by its Hessian and so amplifies
such differences where the Hessian is ill-conditioned. Their keypoints are held to 1e-4 px plus 8x the
reference's own change when its input is perturbed by 1e-6 relative (its conditioning, measured): on
Gaussian maps that is ~1e-4 px; on random maps it admits what the reference itself cannot resolve.
"""
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from srpose_fast.codecs.flip import flip_merge
from srpose_fast.keypoint_sets import COCO
from srpose_fast.ops.decode import SUPPORTED_BACKENDS, decode_heatmaps

from keypoint_checks import assert_keypoints_close, boxes, gaussian_maps, in_image_pixels, reference_tolerance

from tolerances import exact_fp32_reference  # noqa: F401,E402  (a fixture: the torch reference without TF32)

pytest.importorskip("triton")
from srpose_fast.kernels import decode as decode_kernels  # noqa: E402  (after conftest set the interpreter)
from srpose_fast.kernels import launch  # noqa: E402

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
METHODS = ("argmax", "shift", "dark", "dark_udp")
K5_FLIP = [0, 2, 1, 4, 3]


# every buffer the Triton launchers allocate starts as NaN (tests/conftest.py)
pytestmark = pytest.mark.usefixtures("poison_kernel_outputs", "exact_fp32_reference")


def check_against_reference(maps, *, method, flipped=None, flip_indices=None, flip_shift=None, center=None,
                            scale=None, blur_kernel=11):
    """Run both backends on the same inputs; compare as the module docstring says. Returns the triton outputs."""
    kwargs = dict(method=method, flipped=flipped, flip_indices=flip_indices, flip_shift=flip_shift, center=center,
                  scale=scale, blur_kernel=blur_kernel)
    moved = {k: (v.to(DEVICE) if isinstance(v, torch.Tensor) else v) for k, v in kwargs.items()}
    keypoints, scores = decode_heatmaps(maps.to(DEVICE), backend="triton", **moved)
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
    tol = reference_tolerance(merged, method, blur_kernel)[..., None].expand_as(keypoints)
    if center is not None:
        tol = in_image_pixels(tol, ref_keypoints, method, maps.shape[-2:], scale)
    assert_keypoints_close(keypoints, ref_keypoints, tol, f"decode {method}")
    return keypoints, scores


def test_triton_is_a_supported_backend():
    assert "triton" in SUPPORTED_BACKENDS


# --- Gaussian maps: every method, with and without flip and transform ---------------------------

@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("flip", [False, True], ids=["plain", "flip"])
@pytest.mark.parametrize("transform", [False, True], ids=["heatmap_px", "image_px"])
def test_gaussian_maps_coco(method, flip, transform):
    n, k, h, w = 1, 17, 17, 13
    maps = gaussian_maps(n, k, h, w, seed=10)
    flipped = gaussian_maps(n, k, h, w, seed=11) if flip else None
    center, scale = boxes(n) if transform else (None, None)
    keypoints, _ = check_against_reference(maps, method=method, flipped=flipped, center=center, scale=scale)
    assert torch.isfinite(keypoints).all()


@pytest.mark.parametrize("method", METHODS)
def test_odd_shape_batch3_k5_flip_transform(method):
    n, k, h, w = 3, 5, 9, 7
    maps = gaussian_maps(n, k, h, w, seed=20, sigma=1.0)
    flipped = gaussian_maps(n, k, h, w, seed=21, sigma=1.0)
    center, scale = boxes(n, seed=22)
    check_against_reference(maps, method=method, flipped=flipped, flip_indices=K5_FLIP, center=center, scale=scale)


@pytest.mark.parametrize("flip_shift", [True, False])
def test_flip_shift_override(flip_shift):
    maps = gaussian_maps(2, 5, 9, 7, seed=23)
    flipped = gaussian_maps(2, 5, 9, 7, seed=24)
    for method in ("shift", "dark_udp"):
        check_against_reference(maps, method=method, flipped=flipped, flip_indices=K5_FLIP, flip_shift=flip_shift)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
@pytest.mark.parametrize("method", METHODS)
def test_low_precision_inputs(dtype, method):
    # Both backends upcast the same 16-bit values to float32, so the same tolerances hold as for fp32.
    maps = gaussian_maps(1, 5, 17, 13, seed=30).to(dtype)
    flipped = gaussian_maps(1, 5, 17, 13, seed=31).to(dtype)
    center, scale = boxes(1, seed=32)
    check_against_reference(maps, method=method, flipped=flipped, flip_indices=K5_FLIP, center=center, scale=scale)


@pytest.mark.parametrize("blur_kernel", [3, 17])
def test_other_blur_kernels(blur_kernel):
    maps = gaussian_maps(1, 5, 23, 19, seed=40, sigma=2.5)
    for method in ("dark", "dark_udp"):
        check_against_reference(maps, method=method, blur_kernel=blur_kernel)


def test_large_map_several_tiles():
    # 48x40 = 1920 values: two argmax tiles of 1024 (one lane sees flat indices i and i + 1024).
    maps = gaussian_maps(1, 5, 48, 40, seed=41, sigma=2.0)
    ties = {2: (100, 1124), 3: (1500, 700), 4: (1919, 1023)}  # equal maxima: same lane, two lanes, tile edges
    for j, flats in ties.items():
        maps[0, j] *= 0.5
        for flat in flats:
            maps[0, j].view(-1)[flat] = 4.0
    for method in METHODS:
        check_against_reference(maps, method=method)
    keypoints, _ = decode_heatmaps(maps.to(DEVICE), method="argmax", backend="triton")
    for j, flats in ties.items():
        assert keypoints[0, j].tolist() == [min(flats) % 40, min(flats) // 40]


def test_non_contiguous_inputs():
    maps = gaussian_maps(2, 5, 9, 7, seed=42).transpose(2, 3).contiguous().transpose(2, 3)  # column-major planes
    flipped = gaussian_maps(5, 2, 9, 7, seed=43).transpose(0, 1)  # batch and joint strides swapped
    assert not maps.is_contiguous() and not flipped.is_contiguous()
    for method in ("shift", "dark"):
        check_against_reference(maps, method=method, flipped=flipped, flip_indices=K5_FLIP)


# --- random maps (the reference's conditioning sets the DARK tolerance) -----------------------------

@settings(max_examples=8, deadline=None, derandomize=True)
@given(
    n=st.integers(1, 2), k=st.integers(1, 3), h=st.integers(1, 12), w=st.integers(1, 12),
    method=st.sampled_from(METHODS), flip=st.booleans(), transform=st.booleans(),
    kind=st.sampled_from(["uniform", "normal", "sparse"]), seed=st.integers(0, 2**16),
)
def test_random_maps(n, k, h, w, method, flip, transform, kind, seed):
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
    check_against_reference(maps, method=method, flipped=flipped, flip_indices=list(range(k))[::-1] if flip else None,
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
def test_special_cases(method):
    maps, expected = special_maps()
    keypoints, scores = check_against_reference(maps, method=method, flip_indices=None)
    argmax_kp, argmax_scores = decode_heatmaps(maps.to(DEVICE), method="argmax", backend="triton")
    for j, (x, y, score) in expected.items():
        got = (argmax_kp[0, j, 0].item(), argmax_kp[0, j, 1].item(), argmax_scores[0, j].item())
        torch.testing.assert_close(torch.tensor(got), torch.tensor((x, y, score)), rtol=0, atol=0, equal_nan=True,
                                   msg=lambda m: f"joint {j}: {m}")
    for j in (0, 1, 2):  # NaN, all-zero, all-negative maps are never refined
        torch.testing.assert_close(keypoints[0, j], argmax_kp[0, j].cpu(), rtol=0, atol=0, equal_nan=True)


def test_nan_in_the_flipped_map_only():
    maps = gaussian_maps(1, 5, 9, 7, seed=51)
    flipped = gaussian_maps(1, 5, 9, 7, seed=52)
    flipped[0, 2, 4, 4] = float("nan")  # joint 2's map comes from flipped joint K5_FLIP[2] = 1
    for method in ("shift", "dark"):
        keypoints, scores = check_against_reference(maps, method=method, flipped=flipped, flip_indices=K5_FLIP)
        assert torch.isnan(scores[0, 1]) and torch.isnan(keypoints[0, 1]).all()
        assert torch.isfinite(scores[0, [0, 2, 3, 4]]).all()


def test_maps_split_across_programs_keep_the_reference_semantics():
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
        keypoints, scores = check_against_reference(maps, method=method)
        assert scores[0, 0] == 3.0 and scores[0, 1] == 3.0 and torch.isnan(scores[0, 2]) and scores[0, 3] == 0.0
    argmax_kp, _ = decode_heatmaps(maps.to(DEVICE), method="argmax", backend="triton")
    assert argmax_kp[0, :2].cpu().tolist() == [[1500 % w, 1500 // w], [300 % w, 300 // w]]
    assert argmax_kp[0, 3].cpu().tolist() == [1200 % w, 1200 // w]


def test_empty_batch():
    for method in METHODS:
        keypoints, scores = decode_heatmaps(torch.zeros(0, 17, 9, 7, device=DEVICE), method=method, backend="triton",
                                            flipped=torch.zeros(0, 17, 9, 7, device=DEVICE))
        assert keypoints.shape == (0, 17, 2) and scores.shape == (0, 17)


def test_integer_heatmaps_are_decoded_as_float():
    maps = (gaussian_maps(1, 5, 9, 7, seed=53) * 100).to(torch.int32)
    for method in ("argmax", "shift"):
        check_against_reference(maps, method=method)


# --- DARK's rescale: where the clamp acts, the kernel computes the exact blurred maximum ------------

def test_dark_clamp_acts_on_negative_surroundings():
    # A narrow positive peak on a negative floor: the blurred map is negative around the peak, so
    # the 1e-10 clamp acts at stencil points and the rescale factor (map max / blurred max, here even
    # negative when the blurred maximum is) decides the result.
    maps = gaussian_maps(1, 5, 17, 13, seed=60, sigma=1.0, noise=0.2) * 3.0 - 1.0
    check_against_reference(maps, method="dark")
    check_against_reference(maps, method="dark_udp")


def test_dark_udp_upper_clip_acts_on_large_maps():
    # Maximum 100: the reference clips the rescaled blurred map at 50 around the peak.
    maps = gaussian_maps(1, 5, 17, 13, seed=61, sigma=2.0) * 100.0
    check_against_reference(maps, method="dark_udp")
    # and a sparse map whose blurred stencil falls under 1e-3 (the lower clip)
    sparse = torch.zeros(1, 2, 17, 13)
    sparse[0, 0, 8, 6], sparse[0, 0, 8, 7] = 1e-3, 5e-4
    sparse[0, 1, 2, 2] = 1.0
    check_against_reference(sparse, method="dark_udp")
    check_against_reference(sparse, method="dark")


# --- the registered op -------------------------------------------------------------------------------

# Under the interpreter, triton_op's functional decomposition (used by AOTAutograd, hence by opcheck's
# test_aot_dispatch_* and torch.compile's aot backends) would hand fake tensors to the interpreted kernel,
# which reads real memory; so on CPU opcheck runs the checks that do not trace into the kernel.
CPU_OPCHECK_UTILS = ("test_schema", "test_autograd_registration", "test_faketensor")


def test_opcheck():
    maps = gaussian_maps(2, 5, 9, 7, seed=70).to(DEVICE)
    flipped = gaussian_maps(2, 5, 9, 7, seed=71).to(DEVICE)
    center, scale = (t.to(DEVICE) for t in boxes(2))
    index = torch.tensor(K5_FLIP, device=DEVICE)
    utils = CPU_OPCHECK_UTILS if DEVICE == "cpu" else CPU_OPCHECK_UTILS + ("test_aot_dispatch_dynamic",)
    for args in ((maps, flipped, index, True, "dark", 11, center, scale),
                 (maps.half(), None, None, False, "shift", 11, None, None)):
        torch.library.opcheck(torch.ops.srpose_fast.decode_heatmaps_triton.default, args, test_utils=utils)


def test_compile_fullgraph_smoke():
    # backend="eager": Dynamo traces decode_heatmaps into one graph (no break) through the registered
    # fake; the inductor backend needs real kernels (see above) and is tested on CUDA.
    maps = gaussian_maps(1, 5, 9, 7, seed=72).to(DEVICE)
    fn = torch.compile(lambda m: decode_heatmaps(m, method="shift", backend="triton"), fullgraph=True, backend="eager")
    keypoints, scores = fn(maps)
    ref_keypoints, ref_scores = decode_heatmaps(maps.cpu(), method="shift", backend="torch")
    assert torch.equal(keypoints.cpu(), ref_keypoints) and torch.equal(scores.cpu(), ref_scores)


@pytest.mark.cuda
def test_compile_fullgraph_inductor_cuda():
    maps = gaussian_maps(4, 17, 64, 48, seed=73).cuda()
    fn = torch.compile(lambda m: decode_heatmaps(m, method="dark", backend="triton"), fullgraph=True)
    keypoints, scores = fn(maps)
    ref_keypoints, ref_scores = decode_heatmaps(maps, method="dark", backend="torch")
    assert torch.equal(scores, ref_scores)
    torch.testing.assert_close(keypoints, ref_keypoints, rtol=0, atol=1e-3)


@pytest.mark.cuda
@pytest.mark.parametrize("method", METHODS)
def test_model_size_maps_cuda(method):
    # SRPose's 256x192 final maps, batch 8, flip test and transform: 48 argmax tiles per map.
    maps = gaussian_maps(8, 17, 256, 192, seed=74, sigma=8.0)
    flipped = gaussian_maps(8, 17, 256, 192, seed=75, sigma=8.0)
    center, scale = boxes(8)
    check_against_reference(maps, method=method, flipped=flipped, center=center, scale=scale)


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
