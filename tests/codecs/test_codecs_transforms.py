"""Heatmap <-> image transforms: values, round trips, box form, _xywh2cs."""
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from srpose_fast.codecs.transforms import box_to_center_scale, heatmap_to_box, heatmap_to_image, image_to_heatmap


def test_hand_computed_values():
    # crop 192 x 256 px centred at (100, 200): heatmap 64 x 48 -> 4 px per heatmap pixel
    center = torch.tensor([[100.0, 200.0]])
    scale = torch.tensor([[192 / 200, 256 / 200]])
    kp = torch.tensor([[[0.0, 0.0], [48.0, 64.0], [10.5, 3.25]]])
    out = heatmap_to_image(kp, center, scale, (64, 48))
    expected = torch.tensor([[[4.0, 72.0], [196.0, 328.0], [46.0, 85.0]]])
    torch.testing.assert_close(out, expected)
    # UDP: the map's first and last pixels sit on the crop's edges: 192 / 47 px per pixel
    out = heatmap_to_image(kp[:, :2], center, scale, (64, 48), udp=True)
    torch.testing.assert_close(out, torch.tensor([[[4.0, 72.0], [4.0 + 192 * 48 / 47, 72.0 + 256 * 64 / 63]]]))


@settings(max_examples=20, deadline=None)
@given(n=st.integers(0, 3), k=st.integers(1, 5), height=st.integers(2, 300), width=st.integers(2, 300),
       udp=st.booleans(), seed=st.integers(0, 2 ** 31 - 1))
def test_round_trip(n, k, height, width, udp, seed):
    g = torch.Generator().manual_seed(seed)
    kp = torch.rand(n, k, 2, generator=g) * torch.tensor([width, height])
    center = torch.rand(n, 2, generator=g) * 1000
    scale = torch.rand(n, 2, generator=g) * 3 + 0.1
    image = heatmap_to_image(kp, center, scale, (height, width), udp=udp)
    back = image_to_heatmap(image, center, scale, (height, width), udp=udp)
    assert back.shape == (n, k, 2)
    torch.testing.assert_close(back, kp, rtol=1e-5, atol=1e-3)


@pytest.mark.parametrize("udp", [False, True])
def test_box_form_equals_center_scale_of_the_same_box(udp):
    boxes = torch.tensor([[10.0, 20.0, 96.0, 128.0], [0.0, -5.0, 30.0, 40.0]])  # aspect 3/4 already
    center, scale = box_to_center_scale(boxes, aspect_ratio=48 / 64, padding=1.0)
    kp = torch.rand(2, 5, 2) * torch.tensor([48.0, 64.0])
    torch.testing.assert_close(heatmap_to_box(kp, boxes, (64, 48), udp=udp),
                               heatmap_to_image(kp, center, scale, (64, 48), udp=udp), rtol=1e-6, atol=1e-4)
    corners = torch.tensor([[[0.0, 0.0], [48.0, 64.0]]]).expand(2, 2, 2)
    out = heatmap_to_box(corners, boxes, (64, 48))
    torch.testing.assert_close(out[:, 0], boxes[:, :2])
    torch.testing.assert_close(out[:, 1], boxes[:, :2] + boxes[:, 2:])


def test_box_to_center_scale_widens_to_the_aspect_ratio():
    boxes = torch.tensor([[0.0, 0.0, 100.0, 100.0], [10.0, 10.0, 30.0, 200.0], [0.0, 0.0, 75.0, 100.0]])
    center, scale = box_to_center_scale(boxes, aspect_ratio=0.75)
    torch.testing.assert_close(center, torch.tensor([[50.0, 50.0], [25.0, 110.0], [37.5, 50.0]]))
    # wide box: h = w / 0.75; tall box: w = h * 0.75; exact: unchanged; then / 200 * 1.25
    expected = torch.tensor([[100.0, 100 / 0.75], [150.0, 200.0], [75.0, 100.0]]) / 200 * 1.25
    torch.testing.assert_close(scale, expected)


def test_bad_shapes():
    kp = torch.zeros(2, 3, 2)
    with pytest.raises(ValueError, match="center"):
        heatmap_to_image(kp, torch.zeros(3, 2), torch.ones(2, 2), (8, 6))
    with pytest.raises(ValueError, match="scale"):
        image_to_heatmap(kp, torch.zeros(2, 2), torch.ones(2), (8, 6))
    with pytest.raises(ValueError, match="boxes"):
        heatmap_to_box(kp, torch.zeros(2, 3), (8, 6))
    with pytest.raises(ValueError, match="boxes"):
        box_to_center_scale(torch.zeros(4), 0.75)
    with pytest.raises(ValueError, match="2x2"):
        heatmap_to_image(kp, torch.zeros(2, 2), torch.ones(2, 2), (1, 6), udp=True)
