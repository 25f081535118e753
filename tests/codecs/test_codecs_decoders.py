"""Argmax, shift, DARK, DARK-UDP: special cases, accuracy on synthetic Gaussians, loop oracles."""
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import ndimage

from srpose_fast.codecs.decoders import (decode_locations, gaussian_blur, heatmap_argmax, refine_dark,
                                         refine_dark_udp, refine_shift)
from srpose_fast.codecs.targets import encode_heatmaps


def gaussian_maps(centres, size=(64, 48), sigma=2.0, method="unbiased"):
    kp = torch.as_tensor(centres, dtype=torch.float32)[None]
    heatmaps, _ = encode_heatmaps(kp, torch.ones(kp.shape[:2]), size, sigma, method=method)
    return heatmaps, kp


def sub_pixel_centres(seed, count=64, size=(64, 48), margin=8):
    rng = np.random.default_rng(seed)
    xs = rng.uniform(margin, size[1] - 1 - margin, count)
    ys = rng.uniform(margin, size[0] - 1 - margin, count)
    return np.stack((xs, ys), axis=-1)


# ---------------------------------------------------------------- argmax and its special cases

def test_argmax_exact_on_integer_centres():
    centres = np.array([[3, 5], [20, 30], [47, 63], [0, 0], [10, 2]], dtype=np.float32)
    heatmaps, kp = gaussian_maps(centres)
    locs, scores = heatmap_argmax(heatmaps)
    assert torch.equal(locs, kp) and torch.equal(scores, torch.ones(1, 5))
    for method in ("argmax", "shift", "dark", "dark_udp"):
        locs, _ = decode_locations(heatmaps, method)
        if method in ("argmax", "shift"):  # a symmetric peak: zero gradient, no shift
            assert torch.equal(locs, kp), method


def test_ties_go_to_the_lowest_flat_index():
    h = torch.zeros(1, 3, 5, 7)
    h[0, 0, 3, 1] = h[0, 0, 1, 4] = 2.0      # flat 22 vs 11: (4, 1) wins
    h[0, 1, 2, 6] = h[0, 1, 2, 0] = 1.0      # same row: the left one
    h[0, 2] = 0.5                            # a constant map: (0, 0)
    locs, scores = heatmap_argmax(h)
    assert locs[0].tolist() == [[4.0, 1.0], [0.0, 2.0], [0.0, 0.0]]
    assert scores[0].tolist() == [2.0, 1.0, 0.5]


def test_nan_map_gives_nan_everywhere_and_other_maps_are_untouched():
    h, _ = gaussian_maps([[20.3, 30.6], [10.2, 11.7]])
    h[0, 0, 5, 5] = float("nan")
    for method in ("argmax", "shift", "dark", "dark_udp"):
        locs, scores = decode_locations(h, method)
        assert torch.isnan(locs[0, 0]).all() and torch.isnan(scores[0, 0]), method
        assert torch.isfinite(locs[0, 1]).all() and scores[0, 1] > 0.5, method


@pytest.mark.parametrize("fill", [0.0, -1.0])
def test_non_positive_maximum_scores_zero_and_is_not_refined(fill):
    h = torch.full((1, 2, 16, 12), fill)
    h[0, 1] = -torch.rand(16, 12) - 0.1
    h[0, 1, 7, 5] = -0.01  # the maximum is negative and interior with a lopsided neighbourhood
    h[0, 1, 7, 6] = -0.02
    for method in ("argmax", "shift", "dark", "dark_udp"):
        locs, scores = decode_locations(h, method)
        assert scores.tolist() == [[0.0, 0.0]], method
        assert locs[0].tolist() == [[0.0, 0.0], [5.0, 7.0]], method


def test_maximum_on_the_border_is_not_shifted_and_dark_leaves_the_margin_alone():
    size = (16, 12)
    outside_shift = ((0, 5), (11, 5), (5, 0), (5, 15), (1, 5), (5, 1))
    outside_dark = outside_shift + ((10, 5), (5, 14))
    for method, points in (("shift", outside_shift), ("dark", outside_dark)):
        for x, y in points:
            h, kp = gaussian_maps([[x + 0.3, y + 0.3]], size=size, sigma=1.0)
            locs, _ = decode_locations(h, method)
            assert torch.equal(locs, kp.round()), (x, y, method)
    # shift's interior is 1 < x < W-1: x = W-2 is shifted, dark's 1 < x < W-2 excludes it
    h, kp = gaussian_maps([[10.3, 7.3]], size=size, sigma=1.0)
    assert decode_locations(h, "shift")[0][0, 0].tolist() == [10.25, 7.25]
    assert decode_locations(h, "dark")[0][0, 0].tolist() == [10.0, 7.0]
    # dark_udp refines border points too
    h, kp = gaussian_maps([[0.3, 7.3]], size=size, sigma=1.0, method="udp")
    assert decode_locations(h, "dark_udp")[0][0, 0, 0] != 0.0


# ---------------------------------------------------------------- accuracy on synthetic Gaussians

def test_dark_is_accurate_on_unbiased_gaussians():
    centres = sub_pixel_centres(0)
    h, kp = gaussian_maps(centres, sigma=2.0)
    locs, scores = decode_locations(h, "dark")
    assert (locs - kp).abs().max() < 0.05
    assert (scores > 0.88).all()  # the maximum of a sampled unit Gaussian with |d| <= 0.5 per axis


def test_shift_is_within_a_quarter_pixel_per_axis():
    # argmax = nearest pixel, so d = c - x lies in [-0.5, 0.5]; the shift moves 0.25 toward c
    # (or not at all when the neighbours are equal, i.e. d == 0 up to rounding), leaving
    # |error| = |d - 0.25 sign(d)| <= 0.25 per axis. Values near d = +-0.5 may round the argmax
    # either way; the bound holds on both sides.
    centres = sub_pixel_centres(1, count=256)
    centres[:4] = [[10.5, 10.0], [10.0, 10.5], [20.25, 20.75], [15.0, 15.0]]
    h, kp = gaussian_maps(centres, sigma=2.0)
    locs, _ = decode_locations(h, "shift")
    assert (locs - kp).abs().max() <= 0.25 + 1e-5
    argmax, _ = decode_locations(h, "argmax")
    assert (argmax - kp).abs().max() <= 0.5 + 1e-5
    assert ((locs - kp).abs() <= (argmax - kp).abs() + 1e-6).float().mean() > 0.7


def test_dark_udp_is_accurate_on_udp_gaussians():
    centres = sub_pixel_centres(2)
    for sigma in (1.0, 2.0, 3.0):
        h, kp = gaussian_maps(centres, sigma=sigma, method="udp")
        locs, _ = decode_locations(h, "dark_udp")
        assert (locs - kp).abs().max() < 0.01, sigma


# ---------------------------------------------------------------- independent oracles

def numpy_blur(maps, kernel):
    """Zero-padded Gaussian blur with scipy, rescaled to the original maximum, per map."""
    sigma = 0.3 * ((kernel - 1) * 0.5 - 1) + 0.8
    r = (kernel - 1) // 2
    g = np.exp(-((np.arange(kernel) - r) ** 2) / (2 * sigma ** 2))
    g2 = np.outer(g, g) / g.sum() ** 2
    out = np.empty_like(maps, dtype=np.float64)
    for idx in np.ndindex(maps.shape[:2]):
        b = ndimage.convolve(maps[idx].astype(np.float64), g2, mode="constant", cval=0.0)
        out[idx] = b * (maps[idx].max() / b.max())
    return out


def numpy_dark(maps, locs, kernel):
    """float64 loop; also returns each point's sensitivity ||H^-1|| (1 + |step|) (0 where unrefined)."""
    logs = np.log(np.maximum(numpy_blur(maps, kernel), 1e-10))
    out = locs.copy()
    sensitivity = np.zeros(maps.shape[:2])
    n_, k_, height, width = maps.shape
    for n in range(n_):
        for k in range(k_):
            x, y = int(locs[n, k, 0]), int(locs[n, k, 1])
            L = logs[n, k]
            if 1 < x < width - 2 and 1 < y < height - 2:
                g = np.array([L[y, x + 1] - L[y, x - 1], L[y + 1, x] - L[y - 1, x]]) * 0.5
                dxx = 0.25 * (L[y, x + 2] - 2 * L[y, x] + L[y, x - 2])
                dyy = 0.25 * (L[y + 2, x] - 2 * L[y, x] + L[y - 2, x])
                dxy = 0.25 * (L[y + 1, x + 1] - L[y - 1, x + 1] - L[y + 1, x - 1] + L[y - 1, x - 1])
                hess = np.array([[dxx, dxy], [dxy, dyy]])
                if dxx * dyy - dxy ** 2 != 0:
                    out[n, k] -= np.linalg.inv(hess) @ g
                    sensitivity[n, k] = np.linalg.norm(np.linalg.inv(hess), 2) * (1 + np.linalg.norm(out[n, k] - locs[n, k]))
    return out, sensitivity


def numpy_dark_udp(maps, locs, kernel):
    logs = np.log(np.clip(numpy_blur(maps, kernel), 1e-3, 50.0))
    out = locs.copy()
    sensitivity = np.zeros(maps.shape[:2])
    eps = np.finfo(np.float32).eps
    for n, k in np.ndindex(maps.shape[:2]):
        L = np.pad(logs[n, k], 1, mode="edge")
        x, y = int(locs[n, k, 0]) + 1, int(locs[n, k, 1]) + 1
        i = L[y, x]
        dx, dy = 0.5 * (L[y, x + 1] - L[y, x - 1]), 0.5 * (L[y + 1, x] - L[y - 1, x])
        dxx = L[y, x + 1] - 2 * i + L[y, x - 1]
        dyy = L[y + 1, x] - 2 * i + L[y - 1, x]
        dxy = 0.5 * (L[y + 1, x + 1] - L[y, x + 1] - L[y + 1, x] + 2 * i - L[y, x - 1] - L[y - 1, x] + L[y - 1, x - 1])
        hess = np.array([[dxx, dxy], [dxy, dyy]]) + eps * np.eye(2)
        out[n, k] -= np.linalg.inv(hess) @ np.array([dx, dy])
        sensitivity[n, k] = np.linalg.norm(np.linalg.inv(hess), 2) * (1 + np.linalg.norm(out[n, k] - locs[n, k]))
    return out, sensitivity


def assert_close_to_oracle(actual, expected, sensitivity):
    """float32 against the float64 oracle. A Newton step o = -H^-1 g moves by about
    ||H^-1|| (|dg| + |dH| |o|) when g and H carry errors dg, dH; float32 blur and log leave
    errors near 1e-6 in L, so the tolerance is 1e-5 + 1e-5 * ||H^-1|| (1 + |o|) per point
    (measured worst ratio |error| / sensitivity over 3000 random points: 4.3e-7)."""
    tol = 1e-5 + 1e-5 * sensitivity
    error = np.abs(actual - expected).max(-1)
    assert (error <= tol).all(), (error.max(), tol.ravel()[error.argmax()])


@pytest.mark.parametrize("kernel", [1, 3, 11, 17])
def test_gaussian_blur_matches_scipy(kernel):
    maps = torch.rand(2, 3, 13, 9, generator=torch.Generator().manual_seed(kernel))
    np.testing.assert_allclose(gaussian_blur(maps, kernel).numpy(), numpy_blur(maps.numpy(), kernel),
                               rtol=1e-5, atol=1e-6)


def test_gaussian_blur_guards_a_zero_blurred_maximum():
    maps = torch.zeros(1, 2, 8, 8)
    maps[0, 1, 4, 4] = 3.0
    out = gaussian_blur(maps, 5)
    assert torch.equal(out[0, 0], maps[0, 0]) and out[0, 1].max().item() == pytest.approx(3.0)


@pytest.mark.parametrize("bad", [0, 2, -3, 4.0, None])
def test_gaussian_blur_rejects_bad_kernels(bad):
    with pytest.raises(ValueError, match="kernel"):
        gaussian_blur(torch.rand(1, 1, 8, 8), bad)


def smooth_random_maps(seed, n, k, height, width):
    """Random positive blobs: several Gaussians per map, so argmaxes sit anywhere, border included."""
    rng = np.random.default_rng(seed)
    centres = rng.uniform(-1, [width, height], (n, k * 3, 2)).astype(np.float32)
    maps, _ = encode_heatmaps(torch.from_numpy(centres), torch.ones(n, k * 3), (height, width),
                              float(rng.uniform(0.8, 2.5)), method="unbiased")
    amps = torch.from_numpy(rng.uniform(0.2, 1.0, (n, k * 3, 1, 1)).astype(np.float32))
    return (maps * amps).reshape(n, k, 3, height, width).sum(2)


@settings(max_examples=15, deadline=None)
@given(n=st.integers(1, 3), k=st.integers(1, 5), height=st.integers(5, 21), width=st.integers(5, 21),
       kernel=st.sampled_from([3, 5, 11]), seed=st.integers(0, 2 ** 31 - 1))
def test_refinements_match_numpy_loops(n, k, height, width, kernel, seed):
    maps = smooth_random_maps(seed, n, k, height, width)
    locs, scores = heatmap_argmax(maps)
    np_maps, np_locs = maps.numpy(), locs.numpy().astype(np.float64)
    dark = refine_dark(maps, locs, scores, kernel).numpy()
    assert_close_to_oracle(dark, *numpy_dark(np_maps, np_locs, kernel))
    udp = refine_dark_udp(maps, locs, scores, kernel).numpy()
    assert_close_to_oracle(udp, *numpy_dark_udp(np_maps, np_locs, kernel))
    shift = refine_shift(maps, locs, scores).numpy()
    for i, j in np.ndindex(n, k):
        x, y = int(np_locs[i, j, 0]), int(np_locs[i, j, 1])
        expected = np_locs[i, j].copy()
        if 1 < x < width - 1 and 1 < y < height - 1:
            h = np_maps[i, j]
            expected += 0.25 * np.sign([h[y, x + 1] - h[y, x - 1], h[y + 1, x] - h[y - 1, x]])
        np.testing.assert_array_equal(shift[i, j], expected)


@settings(max_examples=20, deadline=None)
@given(n=st.integers(0, 3), k=st.integers(1, 4), height=st.integers(1, 9), width=st.integers(1, 9),
       seed=st.integers(0, 2 ** 31 - 1))
def test_argmax_matches_numpy(n, k, height, width, seed):
    rng = np.random.default_rng(seed)
    maps = rng.integers(-3, 4, (n, k, height, width)).astype(np.float32)  # plenty of ties
    locs, scores = heatmap_argmax(torch.from_numpy(maps))
    flat = maps.reshape(n, k, height * width)
    index = flat.argmax(-1)
    np.testing.assert_array_equal(locs[..., 0].numpy(), index % width)
    np.testing.assert_array_equal(locs[..., 1].numpy(), index // width)
    np.testing.assert_array_equal(scores.numpy(), np.maximum(flat.max(-1, initial=-np.inf), 0))


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float64])
@pytest.mark.parametrize("method", ["argmax", "shift", "dark", "dark_udp"])
def test_low_and_high_precision_inputs_compute_in_float32(dtype, method):
    h, _ = gaussian_maps(sub_pixel_centres(3, count=8), sigma=2.0)
    h = h.to(dtype)
    locs, scores = decode_locations(h, method)
    ref_locs, ref_scores = decode_locations(h.float(), method)
    assert locs.dtype == torch.float32 and scores.dtype == torch.float32
    torch.testing.assert_close(locs, ref_locs, rtol=0, atol=0)
    torch.testing.assert_close(scores, ref_scores, rtol=0, atol=0)


def test_non_contiguous_input():
    h, kp = gaussian_maps(sub_pixel_centres(4, count=6), size=(48, 64))
    transposed = h.transpose(2, 3).contiguous().transpose(2, 3)  # same values, other strides
    wide = torch.zeros(1, 12, 48, 64)[:, ::2]
    wide.copy_(h)
    for method in ("argmax", "shift", "dark", "dark_udp"):
        ref = decode_locations(h, method)
        for view in (transposed, wide):
            assert not view.is_contiguous()
            out = decode_locations(view, method)
            assert torch.equal(out[0], ref[0]) and torch.equal(out[1], ref[1])
