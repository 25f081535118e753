"""Bottom-up maps (codecs.bottomup_maps): flip merge, project2image, NMS and top-k on maps worked by hand."""
import pytest
import torch

from srpose_fast.codecs.bottomup_maps import merge_heatmaps, merge_tags, nms, top_k

# A 5x5 map; NMS with a 3x3 window (padding 1, -inf outside). Survivors (value = window maximum):
#   (x1, y1) 0.9; (x4, y1) 0.5 (its window: 0.0 0.0 / 0.0 0.5 / 0.0 0.4); (x0, y4) and (x1, y4), a 0.7 plateau:
#   both equal their window's maximum; (x4, y4) 0.6 (window 0 0 / 0 0.6). (x4, y2) 0.4 < 0.5 and every other
#   non-zero pixel lies next to a larger one; the zeros all see a positive neighbour.
MAP = torch.tensor([[0.1, 0.2, 0.1, 0.0, 0.0],
                    [0.2, 0.9, 0.3, 0.0, 0.5],
                    [0.1, 0.3, 0.2, 0.0, 0.4],
                    [0.0, 0.0, 0.1, 0.0, 0.0],
                    [0.7, 0.7, 0.0, 0.0, 0.6]])
SURVIVORS = torch.zeros(5, 5)
SURVIVORS[1, 1], SURVIVORS[1, 4], SURVIVORS[4, 0], SURVIVORS[4, 1], SURVIVORS[4, 4] = 0.9, 0.5, 0.7, 0.7, 0.6


def test_nms_keeps_window_maxima_and_plateaus():
    assert torch.equal(nms(MAP[None, None], 3, 1)[0, 0], SURVIVORS)


def test_top_k_orders_by_value_then_lowest_flat_index():
    tags = [torch.arange(25.0).reshape(1, 1, 5, 5) * 10]  # tag = 10 * flat index
    values, locations, tag_k = top_k(nms(MAP[None, None], 3, 1), tags, 7)
    # 0.9 (flat 6), the tie 0.7 at flat 20 then 21, 0.6 (24), 0.5 (9), then zeros from flat 0 and 1
    assert torch.equal(values[0, 0], torch.tensor([0.9, 0.7, 0.7, 0.6, 0.5, 0.0, 0.0]))
    assert locations[0, 0].tolist() == [[1, 1], [0, 4], [1, 4], [4, 4], [4, 1], [0, 0], [1, 0]]
    assert tag_k[0, 0, :, 0].tolist() == [60, 200, 210, 240, 90, 0, 10]
    # k = 2 cuts the 0.7 tie: the lower flat index (20) is taken
    assert top_k(nms(MAP[None, None], 3, 1), tags, 2)[1][0, 0].tolist() == [[1, 1], [0, 4]]
    with pytest.raises(ValueError, match="at least 26 pixels"):
        top_k(MAP[None, None], tags, 26)
    with pytest.raises(ValueError, match="hold NaN"):
        top_k(torch.where(MAP == 0.9, float("nan"), MAP)[None, None], tags, 3)


def test_nms_window_size():
    # 5x5 window (padding 2): the same survivors (0.5 at x4 sees columns 2-4 only; the 0.7s and 0.6 see rows 2-4).
    assert torch.equal(nms(MAP[None, None], 5, 2)[0, 0], SURVIVORS)
    # 7x7 (padding 3): every other positive pixel's window reaches the 0.9 at (x1, y1).
    assert nms(MAP[None, None], 7, 3)[0, 0].nonzero().tolist() == [[1, 1]]


def test_flip_merge_reorders_mirrors_and_averages():
    # K = 2 joints that swap under flip; maps 1x3. Heatmaps h0 = 1 2 3, h1 = 4 5 6; flipped image f0 = 10 20 30,
    # f1 = 40 50 60. Joint 0 gets f1 mirrored: 60 50 40, merged (1 + 60) / 2 = 30.5, (2 + 50) / 2 = 26,
    # (3 + 40) / 2 = 21.5. Tags (channels 2, 3) are stacked: plain first, then the flipped-back one.
    outputs = torch.tensor([[1., 2, 3], [4, 5, 6], [0.1, 0.2, 0.3], [0.4, 0.5, 0.6]])[None, :, None, :]
    flipped = torch.tensor([[10., 20, 30], [40, 50, 60], [1., 2, 3], [4, 5, 6]])[None, :, None, :]
    heatmaps = merge_heatmaps(outputs, flipped, (1, 0), (1, 3))
    assert heatmaps[0, :, 0].tolist() == [[30.5, 26.0, 21.5], [(4 + 30) / 2, (5 + 20) / 2, (6 + 10) / 2]]
    tags = merge_tags(outputs, flipped, (1, 0), (1, 3))
    assert tags.shape == (1, 2, 1, 3, 2)
    assert torch.equal(tags[0, 0, 0, :, 0], torch.tensor([0.1, 0.2, 0.3]))
    assert tags[0, 0, 0, :, 1].tolist() == [6.0, 5.0, 4.0]
    assert merge_tags(outputs, None, (1, 0), (1, 3)).shape == (1, 2, 1, 3, 1)
    assert torch.equal(merge_heatmaps(outputs, None, (1, 0), (1, 3)), outputs[:, :2])


def test_project2image_resizes_before_merging():
    # A 2x2 map to 4x4, bilinear, align_corners False: source x = (x + 0.5) / 2 - 0.5, clamped at 0:
    # row 0 of [[0, 1], [2, 3]] -> 0, 0.25, 0.75, 1.
    outputs = torch.tensor([[0., 1], [2, 3]]).expand(1, 2, 2, 2).clone()
    heatmaps = merge_heatmaps(outputs, None, (0,), (4, 4))
    assert heatmaps[0, 0, 0].tolist() == [0.0, 0.25, 0.75, 1.0]
    # with flip: the flipped maps are mirrored back at 2x2, then resized, then averaged
    flipped = torch.tensor([[1., 0], [3, 2]]).expand(1, 2, 2, 2).clone()  # the mirror of the plain maps
    assert torch.equal(merge_heatmaps(outputs, flipped, (0,), (4, 4)), heatmaps)


def test_merge_checks_shapes():
    with pytest.raises(ValueError, match=r"\(N, 2K, h, w\)"):
        merge_heatmaps(torch.zeros(1, 3, 4, 4), None, (1, 0), (4, 4))
    with pytest.raises(ValueError, match="flipped outputs have shape"):
        merge_heatmaps(torch.zeros(1, 4, 4, 4), torch.zeros(1, 4, 4, 5), (1, 0), (4, 4))
