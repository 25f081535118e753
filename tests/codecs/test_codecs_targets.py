"""encode_heatmaps / pooled_target: exact values, bounds, quirks, dtypes, validation."""
import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from srpose_fast.codecs.targets import encode_heatmaps, pooled_target
from srpose_fast.reference.targets import generate_target


def encode_one(x, y, size, sigma, method="msra", weight=1.0):
    kp = torch.tensor([[[x, y]]], dtype=torch.float32)
    heatmaps, weights = encode_heatmaps(kp, torch.tensor([[weight]]), size, sigma, method=method)
    return heatmaps[0, 0], float(weights[0, 0])


@pytest.mark.parametrize("method", ["msra", "unbiased", "udp"])
@pytest.mark.parametrize("sigma", [1.0, 2.0, 8.0])
def test_peak_and_one_pixel_away(method, sigma):
    size = (64, 48) if sigma < 8 else (256, 192)
    hm, weight = encode_one(20.0, 30.0, size, sigma, method)
    assert weight == 1.0
    assert hm.dtype == torch.float32 and hm.shape == size
    assert hm[30, 20].item() == 1.0
    one_away = math.exp(-1 / (2 * sigma ** 2))
    for y, x in ((30, 21), (30, 19), (31, 20), (29, 20)):
        assert hm[y, x].item() == pytest.approx(one_away, abs=1e-6)
    assert hm[31, 21].item() == pytest.approx(math.exp(-2 / (2 * sigma ** 2)), abs=1e-6)
    assert hm.max().item() == 1.0 and int(hm.argmax()) == 30 * size[1] + 20


def test_msra_rounds_to_the_nearest_pixel_and_truncates_the_window():
    hm, _ = encode_one(9.6, 5.4, (20, 20), 1.0)  # mu = (10, 5)
    assert hm[5, 10].item() == 1.0
    assert hm[5, 13].item() == pytest.approx(math.exp(-4.5), abs=1e-7)  # |dx| = 3 = 3 sigma: inside
    assert hm[5, 14].item() == 0.0 and hm[5, 6].item() == 0.0          # |dx| = 4: outside the window
    assert hm[5, 7].item() > 0 and hm[9, 10].item() == 0.0 and hm[8, 10].item() > 0


def test_msra_truncation_toward_zero_for_negative_coordinates():
    # x = -0.7: int(-0.2) = 0, so mu_x = 0 (floor would give -1); x = -1.7: int(-1.2) = -1.
    hm, _ = encode_one(-0.7, 4.0, (9, 9), 1.0)
    assert hm[4, 0].item() == 1.0
    hm, _ = encode_one(-1.7, 4.0, (9, 9), 1.0)
    assert hm[4, 0].item() == pytest.approx(math.exp(-0.5), abs=1e-7)
    assert hm[4, 2].item() == pytest.approx(math.exp(-4.5), abs=1e-7)
    assert hm[4, 3].item() == 0.0


def test_fractional_three_sigma_offset_quirk():
    # sigma = 1.5: tmp = 4.5, window size 10, centre index 5. mu = 10: ul = int(5.5) = 5, so the
    # centre is at 10 and the window [5, 15) is lopsided; mu = 2: ul = int(-2.5) = -2 (toward zero),
    # so the drawn centre moves to -2 + 5 = 3.
    hm, _ = encode_one(10.0, 10.0, (30, 30), 1.5)
    row = hm[10]
    assert row[10].item() == 1.0 and row[5].item() > 0 and row[4].item() == 0 and row[15].item() == 0
    assert row[14].item() > 0
    hm, _ = encode_one(2.0, 10.0, (30, 30), 1.5)
    assert int(hm[10].argmax()) == 3 and hm[10, 3].item() == 1.0 and hm[10, 2].item() < 1.0


def test_unbiased_and_udp_peak_at_the_float_position():
    sigma = 2.0
    hm, _ = encode_one(20.3, 30.6, (64, 48), sigma, "unbiased")
    expected = math.exp(-((20 - 20.3) ** 2 + (31 - 30.6) ** 2) / (2 * sigma ** 2))
    assert hm[31, 20].item() == pytest.approx(expected, abs=1e-6)
    assert hm[31, 30].item() > 0  # no window: |dx| = 9.7 > 3 sigma still drawn
    hm, _ = encode_one(20.3, 30.6, (64, 48), sigma, "udp")
    assert hm[31, 20].item() == pytest.approx(expected, abs=1e-6)
    assert hm[31, 20 + 7].item() == 0.0 and hm[31, 20 + 6].item() > 0  # window around mu = (20, 31)


@pytest.mark.parametrize("method", ["msra", "unbiased", "udp"])
def test_out_of_map_weight_is_zeroed(method):
    sigma = 2.0
    kp = torch.tensor([[[-7.6, 10.0], [10.0, 70.0], [47.0 + 7, 5.0], [10.0, 10.0], [-100.0, -100.0]]])
    vis = torch.tensor([[1.0, 1.0, 1.0, 0.0, 1.0]])
    heatmaps, weights = encode_heatmaps(kp, vis, (64, 48), sigma, method=method)
    assert weights[0, 1] == 0 and weights[0, 4] == 0 and weights[0, 3] == 0
    assert heatmaps[0, 1].abs().sum() == 0 and heatmaps[0, 3].abs().sum() == 0 and heatmaps[0, 4].abs().sum() == 0
    if method != "unbiased":
        # x = -7.6 -> mu = int(-7.1) = -7, br = int(-0) = 0: not < 0, so the weight stays (empty window)
        assert weights[0, 0] == 1 and heatmaps[0, 0].abs().sum() == 0
        # x = 54: ul = 48 >= W
        assert weights[0, 2] == 0


def test_weight_between_zero_and_half_is_kept_but_not_drawn():
    hm, weight = encode_one(10.0, 10.0, (20, 20), 1.0, weight=0.4)
    assert weight == pytest.approx(0.4) and hm.abs().sum() == 0
    hm, weight = encode_one(10.0, 10.0, (20, 20), 1.0, weight=2.0)
    assert weight == 2.0 and hm.max() == 1.0


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float64])
def test_input_dtypes_give_float32(dtype):
    kp = torch.tensor([[[10.0, 12.0], [3.0, 4.0]]], dtype=dtype)
    heatmaps, weights = encode_heatmaps(kp, torch.ones(1, 2, dtype=dtype), (16, 16), 1.0)
    ref, ref_w = encode_heatmaps(kp.float(), torch.ones(1, 2), (16, 16), 1.0)
    assert heatmaps.dtype == torch.float32 and weights.dtype == torch.float32
    torch.testing.assert_close(heatmaps, ref, rtol=0, atol=0)


def test_empty_batch():
    heatmaps, weights = encode_heatmaps(torch.zeros(0, 17, 2), torch.zeros(0, 17), (8, 6), 2.0)
    assert heatmaps.shape == (0, 17, 8, 6) and weights.shape == (0, 17)


@pytest.mark.parametrize("kwargs, match", [
    (dict(keypoints=torch.zeros(2, 3)), "keypoints"),
    (dict(keypoints=torch.zeros(1, 3, 3)), "keypoints"),
    (dict(weights=torch.zeros(1, 4)), "weights"),
    (dict(size=(8,)), "size"),
    (dict(size=(8, 0)), "size"),
    (dict(size=(8.5, 6)), "size"),
    (dict(sigma=0.0), "sigma"),
    (dict(sigma=-1.0), "sigma"),
    (dict(sigma=float("nan")), "sigma"),
    (dict(sigma="2"), "sigma"),
    (dict(method="gaussian"), "method"),
])
def test_bad_inputs(kwargs, match):
    args = dict(keypoints=torch.zeros(1, 3, 2), weights=torch.ones(1, 3), size=(8, 6), sigma=2.0)
    method = kwargs.pop("method", "msra")
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        encode_heatmaps(args["keypoints"], args["weights"], args["size"], args["sigma"], method=method)


def test_pooled_target():
    heatmaps, _ = encode_heatmaps(torch.tensor([[[100.0, 130.0]]]), torch.ones(1, 1), (256, 192), 8.0)
    for size in ((64, 48), (8, 6)):
        pooled = pooled_target(heatmaps, size)
        assert pooled.shape == (1, 1) + size
        block = 256 // size[0]
        expected = heatmaps.reshape(1, 1, size[0], block, size[1], block).mean(dim=(3, 5))
        torch.testing.assert_close(pooled, expected)


@settings(max_examples=25, deadline=None)
@given(height=st.integers(1, 24), width=st.integers(1, 24), joints=st.integers(1, 4),
       sigma=st.sampled_from([0.5, 1.0, 1.5, 2.0, 2.2, 1 / 3]),
       method=st.sampled_from(["msra", "unbiased", "udp"]), seed=st.integers(0, 2 ** 31 - 1))
def test_matches_the_numpy_reference(height, width, joints, sigma, method, seed):
    rng = np.random.default_rng(seed)
    kp = rng.uniform(-12, max(height, width) + 12, (2, joints, 2)).astype(np.float32)
    kp[0, 0] = np.round(kp[0, 0])  # integer and half-integer positions too
    kp[1, 0] = np.round(kp[1, 0]) + 0.5
    vis = rng.choice([0.0, 0.3, 1.0, 1.0], (2, joints)).astype(np.float32)
    heatmaps, weights = encode_heatmaps(torch.from_numpy(kp), torch.from_numpy(vis), (height, width), sigma,
                                        method=method)
    for n in range(2):
        target, target_weight = generate_target(kp[n], vis[n], (width, height), sigma, method)
        np.testing.assert_allclose(heatmaps[n].numpy(), target, rtol=0, atol=1e-6)
        np.testing.assert_array_equal(weights[n].numpy(), target_weight[:, 0])
