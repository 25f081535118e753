"""srpose_fast.ops.decode.decode_heatmaps: the public entry point (order of steps, I/O types, errors)."""
import numpy as np
import pytest
import torch

import srpose_fast
from srpose_fast.codecs.decoders import decode_locations
from srpose_fast.codecs.flip import flip_merge
from srpose_fast.codecs.targets import encode_heatmaps
from srpose_fast.codecs.transforms import heatmap_to_image
from srpose_fast.keypoint_sets import COCO, MPII
from srpose_fast.ops.decode import decode_heatmaps

METHODS = ("argmax", "shift", "dark", "dark_udp")


def random_maps(n=2, k=17, height=32, width=24, seed=0, method="unbiased"):
    rng = np.random.default_rng(seed)
    kp = rng.uniform(3, [width - 4, height - 4], (n, k, 2)).astype(np.float32)
    maps, _ = encode_heatmaps(torch.from_numpy(kp), torch.ones(n, k), (height, width), 1.5, method=method)
    return maps + 0.01 * torch.rand(maps.shape, generator=torch.Generator().manual_seed(seed)), torch.from_numpy(kp)


def boxes(n, seed=1):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 2, generator=g) * 500, torch.rand(n, 2, generator=g) + 0.5


def test_exported_from_the_package():
    assert srpose_fast.decode_heatmaps is decode_heatmaps
    assert srpose_fast.ops.decode_heatmaps is decode_heatmaps


@pytest.mark.parametrize("method", METHODS)
def test_composes_flip_decode_transform_in_order(method):
    maps, _ = random_maps(seed=2)
    flipped, _ = random_maps(seed=3)
    center, scale = boxes(2)
    keypoints, scores = decode_heatmaps(maps, method=method, flipped=flipped, center=center, scale=scale,
                                        blur_kernel=5, backend="torch")
    merged = flip_merge(maps, flipped, COCO.flip_indices, shift=method != "dark_udp")
    locs, expected_scores = decode_locations(merged, method, 5)
    expected = heatmap_to_image(locs, center, scale, (32, 24), udp=method == "dark_udp")
    assert torch.equal(keypoints, expected) and torch.equal(scores, expected_scores)
    assert keypoints.dtype == torch.float32 and scores.dtype == torch.float32


def test_plain_decode_is_in_heatmap_pixels():
    maps, kp = random_maps(seed=4)
    keypoints, scores = decode_heatmaps(maps, method="dark")
    assert (keypoints - kp).abs().max() < 0.1
    assert scores.shape == (2, 17)


def test_flip_shift_override_and_explicit_indices():
    maps, _ = random_maps(k=16, seed=5)
    flipped, _ = random_maps(k=16, seed=6)
    for shift in (True, False):
        out = decode_heatmaps(maps, method="argmax", flipped=flipped, flip_indices=MPII.flip_indices, flip_shift=shift)
        expected = decode_locations(flip_merge(maps, flipped, MPII.flip_indices, shift=shift), "argmax")
        assert torch.equal(out[0], expected[0]) and torch.equal(out[1], expected[1])
    with pytest.raises(ValueError, match="flip_indices is required"):
        decode_heatmaps(maps, flipped=flipped)


def test_numpy_in_numpy_out_and_torch_in_torch_out():
    maps, _ = random_maps(seed=7)
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
    maps, _ = random_maps(seed=8)
    maps.requires_grad_(True)
    keypoints, scores = decode_heatmaps(maps)
    assert not keypoints.requires_grad and not scores.requires_grad


@pytest.mark.parametrize("method", METHODS)
def test_empty_batch(method):
    keypoints, scores = decode_heatmaps(torch.zeros(0, 17, 16, 12), method=method, flipped=torch.zeros(0, 17, 16, 12),
                                        center=torch.zeros(0, 2), scale=torch.ones(0, 2))
    assert keypoints.shape == (0, 17, 2) and scores.shape == (0, 17)
    keypoints, scores = decode_heatmaps(np.zeros((0, 5, 8, 8), np.float32), method=method)
    assert keypoints.shape == (0, 5, 2) and isinstance(keypoints, np.ndarray)


@pytest.mark.parametrize("method", METHODS)
def test_special_maps_through_the_whole_pipeline(method):
    maps, _ = random_maps(n=1, k=4, seed=9)
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
    maps, _ = random_maps(seed=10)
    maps = maps.to(dtype)
    keypoints, scores = decode_heatmaps(maps, method="dark")
    expected = decode_heatmaps(maps.float(), method="dark")
    assert keypoints.dtype == torch.float32 and torch.equal(keypoints, expected[0]) and torch.equal(scores, expected[1])
    if dtype == torch.float16:
        out = decode_heatmaps(maps.numpy(), method="shift")
        assert out[0].dtype == np.float32


def test_non_contiguous_inputs():
    maps, _ = random_maps(seed=11)
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
    (dict(center=torch.zeros(1, 2)), "both center and scale"),
    (dict(scale=torch.zeros(1, 2)), "both center and scale"),
    (dict(center=torch.zeros(2, 2), scale=torch.ones(1, 2)), "center must be"),
    (dict(center=torch.zeros(1, 2), scale=torch.ones(2)), "scale must be"),
    (dict(center=torch.zeros(1, 3), scale=torch.ones(1, 2)), "center must be"),
    (dict(backend="opencl"), "backend must be one of"),
    (dict(backend="magic"), "backend must be one of"),
])
def test_bad_inputs(kwargs, match):
    heatmaps = kwargs.pop("heatmaps", torch.rand(1, 17, 8, 8))
    with pytest.raises(ValueError, match=match):
        decode_heatmaps(heatmaps, **kwargs)
