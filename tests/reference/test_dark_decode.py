"""The mmpose-style DARK baseline computes what the project's decoders compute (it only does it the slow way)."""
import numpy as np
import pytest

from srpose_fast.ops.decode import decode_heatmaps
from srpose_fast.reference.dark_decode import mmpose_dark_decode


def _maps(rng, n, k, height, width):
    """Blurry peaks at random sub-pixel spots (some on the border), noise, one map <= 0 everywhere."""
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    cx = rng.uniform(-0.5, width - 0.5, (n, k, 1, 1))
    cy = rng.uniform(-0.5, height - 0.5, (n, k, 1, 1))
    maps = np.exp(-((xs - cx) ** 2 + (ys - cy) ** 2) / (2 * rng.uniform(1.0, 3.0, (n, k, 1, 1)) ** 2))
    maps = (maps + rng.normal(0.0, 0.01, maps.shape)).astype(np.float32)
    maps[0, 0] = -np.abs(maps[0, 0])
    return maps


@pytest.mark.parametrize("method", ["dark", "dark_udp"])
@pytest.mark.parametrize("shape,kernel", [((3, 5, 13, 9), 11), ((2, 4, 20, 17), 5), ((1, 3, 6, 7), 3)])
def test_matches_the_torch_reference_decoder(method, shape, kernel):
    rng = np.random.default_rng(sum(shape) + kernel)
    n = shape[0]
    maps = _maps(rng, *shape)
    center = rng.uniform(50, 400, (n, 2)).astype(np.float32)
    scale = rng.uniform(0.5, 2.0, (n, 2)).astype(np.float32)
    keypoints, scores = mmpose_dark_decode(maps, center, scale, method=method, blur_kernel=kernel)
    expected_kp, expected_scores = decode_heatmaps(maps, method=method, blur_kernel=kernel, center=center,
                                                   scale=scale, backend="torch")
    # Both refine in float32 from the same blurred maps; OpenCV's and torch's blurs round differently.
    pixel = float((scale * 200 / np.array([shape[3], shape[2]])).max())
    np.testing.assert_allclose(keypoints, expected_kp, atol=1e-3 * pixel, rtol=0)
    np.testing.assert_array_equal(scores, expected_scores)
    assert scores[0, 0] == 0  # the map that is <= 0 everywhere


def test_rejects_an_unknown_method():
    with pytest.raises(ValueError, match="dark_udp"):
        mmpose_dark_decode(np.zeros((1, 1, 8, 8), np.float32), np.zeros((1, 2)), np.ones((1, 2)), method="shift")
