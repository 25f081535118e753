"""The SRPose-style reference targets and decode agree with the fast codecs."""
import numpy as np
import pytest
import torch

from srpose_fast.codecs.targets import encode_heatmaps
from srpose_fast.ops.decode import decode_heatmaps
from srpose_fast.reference.decode import srpose_decode, transform_preds
from srpose_fast.reference.targets import generate_target


@pytest.mark.parametrize("method", ["msra", "unbiased", "udp"])
@pytest.mark.parametrize("sigma", [2.0, 1.5, 8.0 / 3, 8.0])
def test_generate_target_equals_encode_heatmaps(method, sigma):
    rng = np.random.default_rng(int(sigma * 10))
    height, width = (64, 48) if sigma < 8 else (256, 192)
    kp = rng.uniform(-30, [width + 30, height + 30], (3, 17, 2)).astype(np.float32)
    kp[0, :4] = [[-3.7, 10.0], [10.0, -0.6], [width + 3 * sigma - 0.2, 5.0], [5.5, 7.5]]
    vis = rng.choice([0.0, 1.0], (3, 17)).astype(np.float32)
    heatmaps, weights = encode_heatmaps(torch.from_numpy(kp), torch.from_numpy(vis), (height, width), sigma,
                                        method=method)
    for n in range(3):
        target, target_weight = generate_target(kp[n], vis[n], (width, height), sigma, method)
        assert target.dtype == np.float32 and target.shape == (17, height, width)
        assert target_weight.dtype == np.float32 and target_weight.shape == (17, 1)
        np.testing.assert_allclose(heatmaps[n].numpy(), target, rtol=0, atol=1e-6)
        np.testing.assert_array_equal(weights[n].numpy(), target_weight[:, 0])


def test_generate_target_rejects_unknown_methods():
    with pytest.raises(ValueError, match="method"):
        generate_target(np.zeros((1, 2)), np.ones(1), (8, 8), 2.0, "megvii")


def tie_free_maps(n, k, height, width, seed):
    """Random maps with positive maxima and no repeated maximum (a permutation of distinct values)."""
    g = torch.Generator().manual_seed(seed)
    values = torch.randperm(n * k * height * width, generator=g).float() / (n * k * height * width) + 0.01
    return values.reshape(n, k, height, width)


@pytest.mark.parametrize("height, width", [(64, 48), (256, 192)])
def test_srpose_decode_equals_the_shift_decoder(height, width):
    n, k = 3, 17
    heatmaps = tie_free_maps(n, k, height, width, seed=height)
    # put some maxima on and next to the border, where the shift rule switches off
    heatmaps[0, 0, 0, 5] = heatmaps[0, 1, 7, width - 1] = heatmaps[0, 2, 1, 1] = heatmaps[0, 3, height - 2, 9] = 2.0
    rng = np.random.default_rng(0)
    center = rng.uniform(0, 640, (n, 2))
    scale = rng.uniform(0.3, 3.0, (n, 2))
    preds, maxvals = srpose_decode(heatmaps, center, scale)
    keypoints, scores = decode_heatmaps(heatmaps, method="shift", center=center, scale=scale)
    assert preds.shape == (n, k, 2) and maxvals.shape == (n, k, 1)
    np.testing.assert_array_equal(maxvals[..., 0], scores.numpy())
    # float32 in both; the reference multiplies by the float64 step, the fast path in float32
    np.testing.assert_allclose(preds, keypoints.numpy(), rtol=0, atol=1e-3)
    heatmap_px = decode_heatmaps(heatmaps[:1], method="shift")[0].numpy()[0]
    identity = transform_preds(heatmap_px, np.array([width / 2, height / 2]),
                               np.array([width / 200, height / 200]), (width, height))
    np.testing.assert_allclose(identity, heatmap_px, atol=1e-4)  # a crop the size of the map


def test_srpose_decode_uses_the_true_block_argmax_for_non_positive_maps():
    heatmaps = -tie_free_maps(1, 2, 32, 32, seed=1) - 1.0
    preds, maxvals = srpose_decode(heatmaps, np.array([[16.0, 16.0]]), np.array([[32 / 200, 32 / 200]]))
    flat = heatmaps.reshape(1, 2, -1).argmax(-1)
    x, y = (flat % 32).numpy(), (flat // 32).numpy()
    for j in range(2):  # within the shift of the true argmax, not in the last block
        assert abs(preds[0, j, 0] - x[0, j]) <= 0.25 and abs(preds[0, j, 1] - y[0, j]) <= 0.25
    np.testing.assert_array_equal(maxvals[0, :, 0], heatmaps.reshape(1, 2, -1).max(-1).values.numpy()[0])
