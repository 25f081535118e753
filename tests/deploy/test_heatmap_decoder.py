"""The portable C++ decoder (srpose_fast.deploy.HeatmapDecoder) against the torch reference
`srpose_fast.ops.decode.decode_heatmaps(..., backend="torch")`.

Tolerances:
- argmax, scores, "argmax" and "shift" keypoints: exact. Both sides take the same float32 merged map,
  the same argmax and the same float32 comparisons.
- "dark" / "dark_udp" on Gaussian maps: 1e-4 heatmap px. The C++ side blurs and differentiates in
  float64, the reference in float32; at a well-conditioned peak the difference is ~1e-5 px.
- "dark" / "dark_udp" on noise maps: 1e-4 + 20 * spread px, spread = how far the reference's own keypoint
  moves when its input is perturbed by 1e-5 relative (the max over two perturbations). On noise the
  Hessian at the argmax is often nearly singular; the float32 reference then amplifies its own rounding,
  and the spread measures that amplification without re-deriving the formulas. Observed: error / spread
  <= ~6 over 50k noise keypoints; a wrong formula misses by O(0.1-1) px with a tiny spread.
  DARK-UDP points whose 3x3 window touches the clip to [1e-3, 50] are left out of that comparison:
  there some log values are the same constant and the float32 reference's step can be a rounding
  residue divided by eps (e.g. exactly +-0.5 px where the exact step is 0, the same for every
  perturbation). Their argmax and score are still compared, and the clip itself is tested on
  Gaussian peaks in `test_dark_udp_clip_matches_the_reference`, where the reference is well-defined.
- image coordinates: the heatmap-pixel tolerance times the image pixels per heatmap pixel, plus 1e-4
  for float32 rounding of coordinates below ~1000 px.
"""
from __future__ import annotations

import subprocess
import sys
import threading

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from srpose_fast.codecs.decoders import gaussian_blur, heatmap_argmax
from srpose_fast.codecs.flip import flip_merge
from srpose_fast.keypoint_sets import COCO
from srpose_fast.deploy import COCO_FLIP_INDICES, DECODE_METHODS, HeatmapDecoder, decoder_available
from srpose_fast.ops.decode import decode_heatmaps

pytestmark = pytest.mark.skipif(
    not decoder_available(),
    reason="srpose_fast.deploy._decoder is not built (pip install pybind11 && pip install -e . --no-build-isolation)")

EXACT_METHODS = ("argmax", "shift")
SETTINGS = settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# ------------------------------------------------------------------------------------------ inputs

def gaussian_maps(rng: np.random.Generator, n: int, k: int, h: int, w: int) -> np.ndarray:
    """One Gaussian bump per map (sub-pixel centre, possibly on or just past the border) plus noise."""
    ys, xs = np.mgrid[0:h, 0:w]
    cx = rng.uniform(-1.0, w, (n, k, 1, 1))
    cy = rng.uniform(-1.0, h, (n, k, 1, 1))
    sigma = rng.uniform(1.5, 3.0, (n, k, 1, 1))
    peak = rng.uniform(0.3, 1.0, (n, k, 1, 1))
    maps = peak * np.exp(-((xs - cx) ** 2 + (ys - cy) ** 2) / (2 * sigma ** 2))
    return (maps + rng.normal(0.0, 0.003, maps.shape)).astype(np.float32)


def noise_maps(rng: np.random.Generator, n: int, k: int, h: int, w: int, signed: bool) -> np.ndarray:
    maps = rng.random((n, k, h, w), dtype=np.float32)
    return maps * 2 - 1 if signed else maps


def random_flip_indices(rng: np.random.Generator, k: int) -> list[int] | None:
    return None if k == 17 else [int(i) for i in rng.permutation(k)]


def centre_scale(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    center = rng.uniform(50.0, 400.0, (n, 2)).astype(np.float32)
    scale = rng.uniform(0.5, 1.5, (n, 2)).astype(np.float32)
    return center, scale


def reference(maps, method, flipped=None, flip_indices=None, center=None, scale=None, blur_kernel=11):
    return decode_heatmaps(maps, method=method, blur_kernel=blur_kernel, flipped=flipped,
                           flip_indices=flip_indices, center=center, scale=scale, backend="torch")


def decoder(method, flip_indices=None, **kwargs) -> HeatmapDecoder:
    return HeatmapDecoder(method, flip_indices=flip_indices, **kwargs)


def merged_maps(maps, flipped, flip_indices, method) -> torch.Tensor:
    t = torch.from_numpy(maps)
    if flipped is None:
        return t.float()
    indices = COCO.flip_indices if flip_indices is None else flip_indices
    return flip_merge(t, torch.from_numpy(flipped), indices, shift=method != "dark_udp")


def udp_clipped(merged: torch.Tensor, locs: torch.Tensor, blur_kernel: int = 11) -> np.ndarray:
    """(N, K) True where the reference's blurred, rescaled map leaves [1e-3, 50] in the 3x3 window."""
    blurred = gaussian_blur(merged, blur_kernel)
    height, width = blurred.shape[-2:]
    safe = torch.nan_to_num(locs, nan=0.0).long()
    out = torch.zeros(locs.shape[:2], dtype=torch.bool)
    for oy in (-1, 0, 1):
        for ox in (-1, 0, 1):
            x = (safe[..., 0] + ox).clamp(0, width - 1)
            y = (safe[..., 1] + oy).clamp(0, height - 1)
            v = blurred.flatten(2).gather(2, (y * width + x)[..., None])[..., 0]
            out |= (v < 1e-3 * 1.001) | (v > 50.0 / 1.001)
    return out.numpy()


def reference_spread(maps, flipped, flip_indices, method, rkp_hm) -> np.ndarray:
    """(N, K) max over two 1e-5 relative perturbations of the input of |reference keypoint change|."""
    rng = np.random.default_rng(0)
    spread = np.zeros(rkp_hm.shape[:2])
    for _ in range(2):
        def perturb(a):
            return None if a is None else (a * (1 + 1e-5 * rng.standard_normal(a.shape))).astype(np.float32)
        moved, _ = reference(perturb(maps), method, perturb(flipped), flip_indices)
        spread = np.maximum(spread, np.abs(moved - rkp_hm).max(axis=-1))
    return spread


def assert_matches(method, maps, flipped=None, flip_indices=None, center=None, scale=None, noise=False):
    dec = decoder(method, flip_indices)
    kp, sc = dec.decode(maps, flipped=flipped, center=center, scale=scale)
    rkp, rsc = reference(maps, method, flipped, flip_indices, center, scale)
    assert kp.dtype == np.float32 and sc.dtype == np.float32
    assert kp.shape == rkp.shape and sc.shape == rsc.shape
    np.testing.assert_array_equal(sc, rsc)  # NaN == NaN here
    np.testing.assert_array_equal(np.isnan(kp), np.isnan(rkp))
    if center is None:
        kp_hm, rkp_hm = kp, rkp
    else:  # heatmap pixels first, then the transform on top
        kp_hm, _ = dec.decode(maps, flipped=flipped)
        rkp_hm, _ = reference(maps, method, flipped, flip_indices)

    merged = merged_maps(maps, flipped, flip_indices, method)
    base, _ = heatmap_argmax(merged)
    step = np.linalg.norm(rkp_hm - base.numpy(), axis=-1)  # the reference's refinement, (N, K)
    keep = np.isfinite(step)
    if method in EXACT_METHODS:
        tol = np.zeros_like(step)
    elif not noise:
        tol = np.full_like(step, 1e-4)
    else:  # see the module docstring
        tol = 1e-4 + 20 * reference_spread(maps, flipped, flip_indices, method, rkp_hm)
        if method == "dark_udp":
            keep &= ~udp_clipped(merged, base)
    err = np.abs(kp_hm - rkp_hm).max(axis=-1)
    bad = keep & ~(err <= tol)
    assert not bad.any(), f"{method}: {bad.sum()} keypoints off: err {err[bad][:5]}, step {step[bad][:5]}"
    if center is not None:
        height, width = maps.shape[-2:]
        cells = np.array([width - 1, height - 1] if method == "dark_udp" else [width, height], dtype=np.float64)
        pixel = scale.astype(np.float64) * 200.0 / cells  # image px per heatmap px, (N, 2)
        tol_img = tol[..., None] * pixel[:, None, :] + 1e-4  # + float32 rounding of coordinates < 1000 px
        err_img = np.abs(kp.astype(np.float64) - rkp)
        bad = keep[..., None] & ~(err_img <= tol_img)
        assert not bad.any(), f"{method}: image coordinates off by {err_img[bad][:5]}"


shapes = st.tuples(st.integers(1, 3), st.sampled_from([1, 3, 17]), st.integers(5, 40), st.integers(5, 33))


# ------------------------------------------------------------------------------ against the reference

@SETTINGS
@given(method=st.sampled_from(DECODE_METHODS), shape=shapes, flip=st.booleans(), transform=st.booleans(),
       seed=st.integers(0, 2 ** 32 - 1))
def test_gaussian_maps_match_the_reference(method, shape, flip, transform, seed):
    rng = np.random.default_rng(seed)
    n, k, h, w = shape
    maps = gaussian_maps(rng, n, k, h, w)
    flipped = gaussian_maps(rng, n, k, h, w) if flip else None
    flip_indices = random_flip_indices(rng, k) if flip else None
    center, scale = centre_scale(rng, n) if transform else (None, None)
    assert_matches(method, maps, flipped, flip_indices, center, scale)


@SETTINGS
@given(method=st.sampled_from(DECODE_METHODS), shape=shapes, flip=st.booleans(), transform=st.booleans(),
       signed=st.booleans(), seed=st.integers(0, 2 ** 32 - 1))
def test_noise_maps_match_the_reference(method, shape, flip, transform, signed, seed):
    rng = np.random.default_rng(seed)
    n, k, h, w = shape
    maps = noise_maps(rng, n, k, h, w, signed)
    flipped = noise_maps(rng, n, k, h, w, signed) if flip else None
    flip_indices = random_flip_indices(rng, k) if flip else None
    center, scale = centre_scale(rng, n) if transform else (None, None)
    assert_matches(method, maps, flipped, flip_indices, center, scale, noise=True)


@SETTINGS
@given(peak=st.floats(50.5, 55.0), sigma=st.floats(1.5, 2.5), seed=st.integers(0, 2 ** 32 - 1))
def test_dark_udp_clip_matches_the_reference(peak, sigma, seed):
    """Maxima just above 50: the clip flattens the centre of each window but not its neighbours, so the
    step depends on the reference's rescale to the map's maximum (the C++ side's exact fallback path).
    Flattening the centre can make the Hessian nearly singular; those points get the spread tolerance
    of the noise test, and at least one point per example must be well-conditioned (most are)."""
    rng = np.random.default_rng(seed)
    h, w = 24, 20
    ys, xs = np.mgrid[0:h, 0:w]
    cx = rng.uniform(6.0, w - 7.0, (1, 8, 1, 1))
    cy = rng.uniform(6.0, h - 7.0, (1, 8, 1, 1))
    maps = np.exp(-((xs - cx) ** 2 + (ys - cy) ** 2) / (2 * sigma ** 2))
    maps = (peak * maps / maps.max(axis=(2, 3), keepdims=True)).astype(np.float32)
    merged = torch.from_numpy(maps)
    base, _ = heatmap_argmax(merged)
    assert udp_clipped(merged, base).all()  # the clip is active in every window
    kp, sc = HeatmapDecoder("dark_udp").decode(maps)
    rkp, rsc = reference(maps, "dark_udp")
    np.testing.assert_array_equal(sc, rsc)
    spread = reference_spread(maps, None, None, "dark_udp", rkp)
    assert (spread < 1e-3).any()
    err = np.abs(kp - rkp).max(axis=-1)
    assert (err <= 1e-4 + 20 * spread).all(), f"err {err}, spread {spread}"


@pytest.mark.parametrize("method", DECODE_METHODS)
def test_full_size_coco_batch_with_flip_and_transform(method):
    rng = np.random.default_rng(7)
    maps = gaussian_maps(rng, 2, 17, 64, 48)
    flipped = gaussian_maps(rng, 2, 17, 64, 48)
    center, scale = centre_scale(rng, 2)
    assert_matches(method, maps, flipped, None, center, scale)
    assert_matches(method, maps, flipped)


@pytest.mark.parametrize("method", ("dark", "dark_udp"))
@pytest.mark.parametrize("blur_kernel", (1, 3, 7, 17))
def test_blur_kernel_sizes(method, blur_kernel):
    maps = gaussian_maps(np.random.default_rng(blur_kernel), 1, 5, 30, 26)
    kp, sc = HeatmapDecoder(method, blur_kernel=blur_kernel).decode(maps)
    rkp, rsc = reference(maps, method, blur_kernel=blur_kernel)
    np.testing.assert_array_equal(sc, rsc)
    np.testing.assert_allclose(kp, rkp, rtol=0, atol=1e-4)


def test_flip_shift_override():
    rng = np.random.default_rng(3)
    maps, flipped = gaussian_maps(rng, 2, 3, 20, 16), gaussian_maps(rng, 2, 3, 20, 16)
    for method, shift in (("dark", False), ("dark_udp", True), ("argmax", False)):
        kp, sc = HeatmapDecoder(method, flip_indices=[2, 1, 0], flip_shift=shift).decode(maps, flipped)
        rkp, rsc = decode_heatmaps(maps, method=method, flipped=flipped, flip_indices=[2, 1, 0], flip_shift=shift,
                                   backend="torch")
        np.testing.assert_array_equal(sc, rsc)
        np.testing.assert_allclose(kp, rkp, rtol=0, atol=1e-4)
    assert HeatmapDecoder("dark_udp").flip_shift is False and HeatmapDecoder("dark").flip_shift is True


# ------------------------------------------------------------------------------------- special maps

@pytest.mark.parametrize("method", DECODE_METHODS)
def test_special_maps(method):
    h, w = 12, 10
    maps = np.full((1, 6, h, w), 0.1, dtype=np.float32)
    maps[0, 0, 4, 6] = np.nan                       # NaN: score and keypoint NaN
    maps[0, 1] = 0.0                                # all zero: score 0 at index 0, not refined
    maps[0, 2] = -np.arange(h * w, dtype=np.float32).reshape(h, w) - 1
    maps[0, 2, 7, 3] = -0.25                        # all negative: score 0 at the maximum, not refined
    maps[0, 3, 5, 7] = maps[0, 3, 2, 8] = 0.9       # a tie: the lower flat index (x 8, y 2)
    maps[0, 4, 0, w - 1] = 2.0                      # maximum in a corner
    maps[0, 5, h - 1, 4] = 2.0                      # maximum on the bottom edge
    kp, sc = HeatmapDecoder(method).decode(maps)
    assert np.isnan(sc[0, 0]) and np.isnan(kp[0, 0]).all()
    assert sc[0, 1] == 0 and kp[0, 1].tolist() == [0.0, 0.0]
    assert sc[0, 2] == 0 and kp[0, 2].tolist() == [3.0, 7.0]
    assert sc[0, 3] == np.float32(0.9) and sc[0, 4] == 2.0 and sc[0, 5] == 2.0
    if method in EXACT_METHODS:
        assert kp[0, 3].tolist() == [8.0, 2.0]
        assert kp[0, 4].tolist() == [w - 1.0, 0.0] and kp[0, 5].tolist() == [4.0, h - 1.0]
    rkp, rsc = reference(maps, method)
    np.testing.assert_array_equal(sc, rsc)
    np.testing.assert_allclose(kp, rkp, rtol=0, atol=1e-4)


def test_dark_udp_regularises_a_flat_direction():
    """Columns constant in y, identity blur: the y derivatives vanish exactly (log(1) = 0 keeps every sum
    exact), so the Hessian is singular without DARK-UDP's eps; with it the x step is -dx / (dxx + eps)."""
    g = np.array([0.2, 0.5, 0.8, 1.0, 0.6, 0.3, 0.1], dtype=np.float32)
    maps = np.broadcast_to(g, (1, 1, 5, 7)).copy()
    kp, sc = HeatmapDecoder("dark_udp", blur_kernel=1).decode(maps)
    rkp, rsc = reference(maps, "dark_udp", blur_kernel=1)
    lg = np.log(g.astype(np.float64))
    dx, dxx = 0.5 * (lg[4] - lg[2]), lg[4] - 2 * lg[3] + lg[2]
    expected = 3 - dx / (dxx + np.finfo(np.float32).eps)
    assert sc[0, 0] == rsc[0, 0] == 1.0
    assert kp[0, 0, 1] == 0.0 and rkp[0, 0, 1] == 0.0
    np.testing.assert_allclose([kp[0, 0, 0], rkp[0, 0, 0]], [expected, expected], rtol=0, atol=1e-5)
    assert abs(expected - 3) > 0.05


def test_nan_stays_nan_after_the_transform():
    maps = np.zeros((2, 1, 8, 8), dtype=np.float32)
    maps[0, 0, 3, 3] = np.nan
    maps[1, 0, 3, 3] = 1.0
    kp, sc = HeatmapDecoder("shift").decode(maps, center=np.ones((2, 2)), scale=np.ones((2, 2)))
    assert np.isnan(kp[0]).all() and np.isfinite(kp[1]).all() and np.isnan(sc[0, 0]) and sc[1, 0] == 1.0


# ------------------------------------------------------------------------------- dtypes and layout

@pytest.mark.parametrize("method", DECODE_METHODS)
def test_float16_input(method):
    rng = np.random.default_rng(11)
    maps16 = gaussian_maps(rng, 2, 17, 32, 24).astype(np.float16)
    flipped16 = gaussian_maps(rng, 2, 17, 32, 24).astype(np.float16)
    dec = HeatmapDecoder(method)
    for flipped in (None, flipped16):
        kp, sc = dec.decode(maps16, flipped)
        # widening half to float is exact, so the float32 path must give the very same bits
        kp32, sc32 = dec.decode(maps16.astype(np.float32), None if flipped is None else flipped.astype(np.float32))
        np.testing.assert_array_equal(kp, kp32)
        np.testing.assert_array_equal(sc, sc32)
        rkp, rsc = reference(torch.from_numpy(maps16), method,
                             None if flipped is None else torch.from_numpy(flipped))
        np.testing.assert_array_equal(sc, rsc.numpy())
        np.testing.assert_allclose(kp, rkp.numpy(), rtol=0, atol=1e-4)
    # mixed dtypes: both decoded as float32
    kp_mixed, _ = dec.decode(maps16, flipped16.astype(np.float32))
    kp_ref, _ = dec.decode(maps16, flipped16)
    np.testing.assert_array_equal(kp_mixed, kp_ref)


def test_other_dtypes_are_converted_to_float32():
    rng = np.random.default_rng(5)
    maps = gaussian_maps(rng, 2, 3, 16, 12)
    dec = HeatmapDecoder("dark")
    kp32, sc32 = dec.decode(maps)
    kp64, sc64 = dec.decode(maps.astype(np.float64))
    np.testing.assert_array_equal(kp32, kp64)
    np.testing.assert_array_equal(sc32, sc64)
    ints = (maps * 1000).astype(np.int32)
    kpi, sci = dec.decode(ints)
    kpf, scf = dec.decode(ints.astype(np.float32))
    np.testing.assert_array_equal(kpi, kpf)
    np.testing.assert_array_equal(sci, scf)
    with pytest.raises(TypeError, match="real numbers"):
        dec.decode(maps.astype(np.complex64))
    with pytest.raises(TypeError, match="real numbers"):
        dec.decode(maps > 0.5)


def test_non_contiguous_input():
    rng = np.random.default_rng(6)
    big = gaussian_maps(rng, 3, 4, 20, 30)
    view = big.transpose(0, 1, 3, 2)[:, ::2]  # (3, 2, 30, 20), strided
    assert not view.flags.c_contiguous
    dec = HeatmapDecoder("dark", flip_indices=[1, 0])
    center = np.arange(12, dtype=np.float32).reshape(3, 4)[:, ::2]  # strided (3, 2)
    assert not center.flags.c_contiguous
    kp, sc = dec.decode(view, flipped=view[:, ::-1], center=center, scale=np.ones((3, 2)))
    kpc, scc = dec.decode(np.ascontiguousarray(view), flipped=np.ascontiguousarray(view[:, ::-1]),
                          center=np.ascontiguousarray(center), scale=np.ones((3, 2)))
    np.testing.assert_array_equal(kp, kpc)
    np.testing.assert_array_equal(sc, scc)


def test_accepts_cpu_torch_tensors():
    maps = gaussian_maps(np.random.default_rng(8), 1, 2, 10, 10)
    kp, sc = HeatmapDecoder("shift").decode(torch.from_numpy(maps))
    kpn, scn = HeatmapDecoder("shift").decode(maps)
    np.testing.assert_array_equal(kp, kpn)
    np.testing.assert_array_equal(sc, scn)


# ----------------------------------------------------------------------------- threads and batches

@pytest.mark.parametrize("method", DECODE_METHODS)
def test_thread_count_does_not_change_results(method):
    rng = np.random.default_rng(12)
    maps = noise_maps(rng, 6, 17, 40, 30, signed=True)
    maps[2, 5, 3, 3] = np.nan
    flipped = noise_maps(rng, 6, 17, 40, 30, signed=True)
    results = [HeatmapDecoder(method, num_threads=t).decode(maps, flipped) for t in (1, 2, 7, None)]
    for kp, sc in results[1:]:
        np.testing.assert_array_equal(kp, results[0][0])
        np.testing.assert_array_equal(sc, results[0][1])


def test_concurrent_calls_from_python_threads():
    rng = np.random.default_rng(13)
    batches = [gaussian_maps(rng, 4, 17, 32, 24) for _ in range(4)]
    dec = HeatmapDecoder("dark", num_threads=2)
    expected = [dec.decode(b) for b in batches]
    got = [None] * len(batches)

    def work(i):
        got[i] = dec.decode(batches[i])

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(batches))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for (kp, sc), (ekp, esc) in zip(got, expected):
        np.testing.assert_array_equal(kp, ekp)
        np.testing.assert_array_equal(sc, esc)


@pytest.mark.parametrize("method", DECODE_METHODS)
def test_empty_batch(method):
    dec = HeatmapDecoder(method)
    empty = np.zeros((0, 17, 16, 12), dtype=np.float32)
    kp, sc = dec.decode(empty, flipped=empty, center=np.zeros((0, 2)), scale=np.zeros((0, 2)))
    assert kp.shape == (0, 17, 2) and sc.shape == (0, 17)
    assert kp.dtype == np.float32 and sc.dtype == np.float32


# --------------------------------------------------------------------------------------- bad input

def test_bad_constructor_arguments():
    with pytest.raises(ValueError, match="method"):
        HeatmapDecoder("udp")
    for kernel in (0, 4, -3, 2.0, True):
        with pytest.raises(ValueError, match="blur_kernel"):
            HeatmapDecoder("dark", blur_kernel=kernel)
    with pytest.raises(ValueError, match="permutation"):
        HeatmapDecoder(flip_indices=[0, 0, 1])
    with pytest.raises(ValueError, match="permutation"):
        HeatmapDecoder(flip_indices=[1, 2, 3])
    with pytest.raises(ValueError, match="num_threads"):
        HeatmapDecoder(num_threads=0)


def test_bad_decode_arguments():
    maps = np.random.default_rng(0).random((2, 5, 8, 6), dtype=np.float32)
    dec = HeatmapDecoder("dark")
    with pytest.raises(ValueError, match=r"\(N, K, H, W\)"):
        dec.decode(maps[0])
    with pytest.raises(ValueError, match=r"\(N, K, H, W\)"):
        dec.decode(maps[None])
    with pytest.raises(ValueError, match="at least 1x1"):
        dec.decode(np.zeros((1, 2, 0, 4), dtype=np.float32))
    with pytest.raises(ValueError, match="flipped has shape"):
        HeatmapDecoder(flip_indices=range(5)).decode(maps, flipped=maps[:, :, :, :5])
    with pytest.raises(ValueError, match="flip_indices is required"):
        dec.decode(maps, flipped=maps)  # K = 5: no COCO default
    with pytest.raises(ValueError, match="flip_indices has 3 entries"):
        HeatmapDecoder(flip_indices=[0, 2, 1]).decode(maps, flipped=maps)
    with pytest.raises(ValueError, match="both center and scale"):
        dec.decode(maps, center=np.zeros((2, 2)))
    with pytest.raises(ValueError, match="both center and scale"):
        dec.decode(maps, scale=np.ones((2, 2)))
    with pytest.raises(ValueError, match=r"center must have shape \(N, 2\)"):
        dec.decode(maps, center=np.zeros((3, 2)), scale=np.ones((2, 2)))
    with pytest.raises(ValueError, match=r"scale must have shape \(N, 2\)"):
        dec.decode(maps, center=np.zeros((2, 2)), scale=np.ones(2))
    with pytest.raises(ValueError, match="2x2"):
        HeatmapDecoder("dark_udp").decode(maps[:, :, :1], center=np.zeros((2, 2)), scale=np.ones((2, 2)))


def test_extension_rejects_what_the_front_would_convert():
    from srpose_fast.deploy import _decoder

    maps = np.zeros((1, 2, 4, 4), dtype=np.float32)
    with pytest.raises(ValueError, match="float32 or float16"):
        _decoder.decode(maps.astype(np.float64))
    with pytest.raises(ValueError, match="C-contiguous"):
        _decoder.decode(maps.transpose(0, 1, 3, 2))
    with pytest.raises(ValueError, match="permutation"):
        _decoder.decode(maps, maps, flip_indices=[1, 1])
    with pytest.raises(ValueError, match="method"):
        _decoder.decode(maps, method="udp")


def test_coco_flip_indices_agree_with_the_keypoint_set():
    from srpose_fast.deploy import _decoder

    assert list(COCO_FLIP_INDICES) == list(COCO.flip_indices) == _decoder.coco_flip_indices()


# ---------------------------------------------------------------------------- packaging and import

def test_import_does_not_import_torch():
    code = ("import sys, numpy as np\n"
            "from srpose_fast.deploy import HeatmapDecoder\n"
            "kp, sc = HeatmapDecoder('dark').decode(np.random.rand(1, 17, 16, 12).astype(np.float32))\n"
            "assert kp.shape == (1, 17, 2)\n"
            "loaded = sorted(m for m in sys.modules if m == 'torch' or m.startswith('torch.'))\n"
            "print(loaded)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", f"importing srpose_fast.deploy loaded torch: {out.stdout.strip()[:200]}"


def test_missing_extension_raises_import_error_with_build_hint(monkeypatch):
    import srpose_fast.deploy as deploy

    monkeypatch.setitem(sys.modules, "srpose_fast.deploy._decoder", None)  # makes the import fail
    monkeypatch.delattr(deploy, "_decoder", raising=False)
    with pytest.raises(ImportError, match="pip install -e . --no-build-isolation"):
        HeatmapDecoder("dark")
