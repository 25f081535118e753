"""flip_merge: channel swap + mirror + one-pixel shift, against hand-built maps."""
import pytest
import torch

from srpose_fast.codecs.flip import flip_merge
from srpose_fast.keypoint_sets import COCO


def test_hand_built_example():
    # K = 3 with joints 1 and 2 a left/right pair; 1 x 4 maps so every column is visible.
    heatmaps = torch.zeros(1, 3, 1, 4)
    flipped = torch.tensor([[[[1.0, 2.0, 3.0, 4.0]],      # joint 0 (midline)
                             [[10.0, 20.0, 30.0, 40.0]],  # joint 1 -> lands in channel 2
                             [[5.0, 6.0, 7.0, 8.0]]]])    # joint 2 -> lands in channel 1
    shifted = flip_merge(heatmaps, flipped, [0, 2, 1], shift=True)
    # mirrored: [4, 3, 2, 1]; shifted right, column 0 keeps its own value: [4, 4, 3, 2]; halved
    assert shifted[0, 0, 0].tolist() == [2.0, 2.0, 1.5, 1.0]
    assert shifted[0, 1, 0].tolist() == [4.0, 4.0, 3.5, 3.0]      # from channel 2 [8, 8, 7, 6] / 2
    assert shifted[0, 2, 0].tolist() == [20.0, 20.0, 15.0, 10.0]  # from channel 1 [40, 40, 30, 20] / 2
    plain = flip_merge(heatmaps, flipped, [0, 2, 1], shift=False)
    assert plain[0, 2, 0].tolist() == [20.0, 15.0, 10.0, 5.0]


def test_averages_with_the_plain_maps_and_keeps_rows():
    heatmaps = torch.arange(24.0).reshape(1, 2, 3, 4)
    flipped = torch.ones(1, 2, 3, 4) * 2
    flipped[0, 1, 2, 0] = 6.0  # bottom row, left column of joint 1 -> joint 0, rightmost column
    merged = flip_merge(heatmaps, flipped, [1, 0], shift=False)
    expected = (heatmaps + 2) / 2
    expected[0, 0, 2, 3] = (heatmaps[0, 0, 2, 3] + 6) / 2
    assert torch.equal(merged, expected)


def test_a_mirrored_peak_comes_back_one_pixel_right_of_its_mirror_image():
    # SRPose's convention: x in the flipped image maps back to W - 1 - x, then + 1 by the shift.
    width = 12
    flipped = torch.zeros(1, 17, 8, width)
    flipped[0, COCO.flip_indices[5], 3, 2] = 1.0  # left shoulder seen at x = 2 in the mirror
    merged = flip_merge(torch.zeros_like(flipped), flipped, COCO.flip_indices)
    assert merged[0, 5].nonzero().tolist() == [[3, width - 1 - 2 + 1]]


def test_flipping_twice_without_shift_is_the_identity():
    x = torch.randn(2, 17, 5, 7)
    once = flip_merge(torch.zeros_like(x), x, COCO.flip_indices, shift=False) * 2
    twice = flip_merge(torch.zeros_like(x), once, COCO.flip_indices, shift=False) * 2
    assert torch.equal(twice, x)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float64])
def test_computes_in_float32(dtype):
    x = torch.randn(1, 3, 4, 5).to(dtype)
    out = flip_merge(x, x, [0, 1, 2])
    assert out.dtype == torch.float32
    assert torch.equal(out, flip_merge(x.float(), x.float(), [0, 1, 2]))


def test_width_one_and_non_contiguous():
    x = torch.randn(1, 2, 3, 1)
    assert torch.equal(flip_merge(x, x, [1, 0]), (x + x[:, [1, 0]]) / 2)
    base = torch.randn(2, 4, 6, 5)
    view = base.transpose(2, 3)
    assert not view.is_contiguous()
    assert torch.equal(flip_merge(view, view, [0, 1, 2, 3]), flip_merge(view.contiguous(), view.contiguous(),
                                                                          [0, 1, 2, 3]))


@pytest.mark.parametrize("indices, match", [([0, 1], "K = 3"), ([0, 1, 1], "permutation"), ([0, 1, 3], "permutation")])
def test_bad_flip_indices(indices, match):
    with pytest.raises(ValueError, match=match):
        flip_merge(torch.zeros(1, 3, 2, 2), torch.zeros(1, 3, 2, 2), indices)


def test_shape_mismatch():
    with pytest.raises(ValueError, match="shape"):
        flip_merge(torch.zeros(1, 3, 2, 2), torch.zeros(1, 3, 2, 3), [0, 1, 2])
    with pytest.raises(ValueError, match="N, K, H, W"):
        flip_merge(torch.zeros(3, 2, 2), torch.zeros(3, 2, 2), [0, 1, 2])
