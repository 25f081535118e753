"""HeatmapCodec: its checks, the unit conversions it owns (input <-> heatmap <-> image pixels), encode into
the loss op's arguments, and decode from heatmaps or SR embeddings."""
import dataclasses

import pytest
import torch

from srpose_fast.codecs.conventions import PIXEL_STD, SRPOSE_STAGE_WEIGHTS
from srpose_fast.codecs.heatmap_codec import HeatmapCodec
from srpose_fast.codecs.targets import encode_heatmaps
from srpose_fast.keypoint_sets import COCO, MPII
from srpose_fast.ops.decode import decode_heatmaps
from srpose_fast.ops.multi_stage_loss import multi_stage_loss
from srpose_fast.ops.sr_head import sr_head

SRPOSE = HeatmapCodec((256, 192), ((8, 6), (64, 48), (64, 48), (64, 48), (256, 192)), 8.0, SRPOSE_STAGE_WEIGHTS,
                      COCO.flip_indices)
# A simple head on odd-ratio crops: stride 4, 13x9 maps of 52x36 crops (x 36/9 = 4, y 52/13 = 4).
SIMPLE = HeatmapCodec((52, 36), ((13, 9),), 1.5, (1.0,), MPII.flip_indices)


@pytest.mark.parametrize("changes, message", [
    ({"stage_weights": (1.0,)}, "5 heatmap sizes but 1 stage weights"),
    ({"heatmap_sizes": ((256, 192), (64, 48), (64, 48), (64, 48), (8, 6))}, "last heatmap size must be the largest"),
    ({"heatmap_sizes": ((8, 6), (60, 48), (64, 48), (64, 48), (256, 192))}, "divide"),
    ({"heatmap_sizes": ((8, 6), (64, 48), (64, 48), (64, 48), (256, 0))}, r"\(H, W\) with positive ints"),
    ({"sigma": 0.0}, "sigma"),
    ({"flip_indices": (0, 0, 1)}, "permutation"),
    ({"target_method": "gauss"}, "target_method"),
    ({"decode_method": "soft_argmax"}, "decode_method"),
    ({"blur_kernel": 4}, "blur_kernel"),
])
def test_bad_fields_are_one_clear_error(changes, message):
    with pytest.raises(ValueError, match=message):
        dataclasses.replace(SRPOSE, **changes)


def test_fields_are_normalised_and_the_final_heatmap_is_the_last():
    codec = HeatmapCodec([64, 48], [[16, 12], [64, 48]], 2, [0.5, 1], list(range(3)))
    assert codec.input_size == (64, 48) and codec.heatmap_sizes == ((16, 12), (64, 48))
    assert codec.stage_weights == (0.5, 1.0) and codec.flip_indices == (0, 1, 2)
    assert codec.heatmap_size == (64, 48) and codec.num_keypoints == 3
    assert hash(codec) == hash(dataclasses.replace(codec))  # frozen: usable as a key


def test_input_and_heatmap_pixels_round_trip():
    keypoints = torch.rand(3, 16, 2, dtype=torch.float64) * 50
    on_map = SIMPLE.to_heatmap(keypoints)
    assert on_map.dtype == torch.float32
    torch.testing.assert_close(on_map, keypoints.float() / 4)
    torch.testing.assert_close(SIMPLE.to_input(on_map), keypoints.float())
    assert torch.equal(SRPOSE.to_heatmap(keypoints), keypoints.float())  # SRPose's final map is the crop


def test_udp_maps_first_and_last_pixel_centres_onto_each_other():
    """mmpose's UDP: input x -> x (W - 1) / (W_in - 1) for the targets; dark_udp decodes back on that grid."""
    udp = dataclasses.replace(SIMPLE, target_method="udp")
    corners = torch.tensor([[[0.0, 0.0], [35.0, 51.0], [17.5, 25.5]]])
    torch.testing.assert_close(udp.to_heatmap(corners), torch.tensor([[[0.0, 0.0], [8.0, 12.0], [4.0, 6.0]]]))
    torch.testing.assert_close(udp.to_input(udp.to_heatmap(corners)), corners)
    # A symmetric peak at heatmap pixel (4, 6): input (4 * 35 / 8, 6 * 51 / 12) on UDP's grid, (16, 24) on the other.
    maps, _ = encode_heatmaps(torch.tensor([[[4.0, 6.0]] * 16]), torch.ones(1, 16), (13, 9), 1.0, method="unbiased")
    keypoints, _ = udp.decode(maps, method="dark_udp", backend="torch")
    torch.testing.assert_close(keypoints[0], torch.tensor([[17.5, 25.5]] * 16), atol=1e-3, rtol=0)
    keypoints, _ = udp.decode(maps, method="argmax", backend="torch")
    torch.testing.assert_close(keypoints[0], torch.tensor([[16.0, 24.0]] * 16))


def test_crop_center_scale_is_the_crop_itself():
    center, scale = SRPOSE.crop_center_scale(2)
    assert center.tolist() == [[96.0, 128.0]] * 2
    torch.testing.assert_close(scale, torch.tensor([[192 / PIXEL_STD, 256 / PIXEL_STD]] * 2))
    center, scale = SIMPLE.crop_center_scale(1, map_size=(26, 18))  # maps of a twice larger crop, same stride
    assert center.tolist() == [[36.0, 52.0]] and torch.allclose(scale * PIXEL_STD, torch.tensor([[72.0, 104.0]]))


def test_encode_gives_the_loss_op_its_arguments():
    torch.manual_seed(0)
    keypoints = torch.rand(2, 16, 2) * torch.tensor([36.0, 52.0])
    weights = (torch.rand(2, 16) > 0.3).float()
    targets = SIMPLE.encode(keypoints, weights)
    assert set(targets) == {"keypoints", "target_weight", "sigma", "stage_weights", "target_method"}
    torch.testing.assert_close(targets["keypoints"], keypoints / 4)
    pred = torch.rand(2, 16, 13, 9, requires_grad=True)
    expected = multi_stage_loss([pred], keypoints / 4, weights, sigma=1.5, stage_weights=(1.0,), target_method="msra",
                                backend="torch")
    assert multi_stage_loss([pred], **targets, backend="torch") == expected
    with pytest.raises(ValueError, match="K = 17"):
        SIMPLE.encode(torch.zeros(1, 17, 2), torch.ones(1, 17))


def test_encode_then_decode_recovers_input_and_image_pixels():
    """Targets made from the encoded keypoints (unbiased Gaussians), decoded with DARK: the keypoints come back
    in input pixels, and in image pixels through a crop's center and scale."""
    torch.manual_seed(1)
    codec = dataclasses.replace(SIMPLE, target_method="unbiased", decode_method="dark", blur_kernel=3)
    # 2.5 to 5.5 heatmap pixels in x, 2.5 to 9.5 in y: where DARK refines (1 < x < W - 2, 1 < y < H - 2)
    keypoints = torch.rand(2, 16, 2) * torch.tensor([12.0, 28.0]) + 10.0
    targets = codec.encode(keypoints, torch.ones(2, 16))
    heatmaps, _ = encode_heatmaps(targets["keypoints"], targets["target_weight"], codec.heatmap_size, codec.sigma,
                                  method="unbiased")
    decoded, scores = codec.decode(heatmaps, backend="torch")
    torch.testing.assert_close(decoded, keypoints, atol=0.01 * 4, rtol=0)  # 0.01 heatmap px; measured 0.0015
    assert torch.all(scores > 0.9)
    center = torch.tensor([[300.0, 200.0], [50.0, 80.0]])
    scale = torch.tensor([[2.0, 3.0], [0.36, 0.52]])  # crop sizes (400, 600) and (72, 104) image pixels
    in_image, _ = codec.decode(heatmaps, center=center, scale=scale, backend="torch")
    crop = scale * PIXEL_STD
    expected = decoded * (crop / torch.tensor([36.0, 52.0]))[:, None] + (center - crop / 2)[:, None]
    torch.testing.assert_close(in_image, expected, atol=1e-3, rtol=1e-5)


def test_decode_uses_the_codecs_flip_indices_method_and_blur():
    torch.manual_seed(2)
    heatmaps, flipped = torch.rand(2, 2, 16, 13, 9).unbind(0)
    codec = dataclasses.replace(SIMPLE, decode_method="dark", blur_kernel=5)
    center, scale = codec.crop_center_scale(2)
    expected = decode_heatmaps(heatmaps, flipped=flipped, flip_indices=MPII.flip_indices, method="dark",
                               blur_kernel=5, center=center, scale=scale, backend="torch")
    got = codec.decode(heatmaps, flipped, backend="torch")
    for a, b in zip(got, expected):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    argmax = codec.decode(heatmaps, method="argmax", backend="torch")[0]
    assert torch.equal(argmax, argmax.round())  # integer heatmap pixels x 4 input pixels each
    assert torch.equal(torch.remainder(argmax, 4), torch.zeros_like(argmax))


def test_decode_embeddings_equals_decoding_the_sr_heads_heatmaps():
    torch.manual_seed(3)
    codec = HeatmapCodec((32, 24), ((32, 24),), 1.0, (1.0,), (1, 0, 2))
    embedding, flipped = torch.rand(2, 2, 3 * 4, 8, 6).unbind(0)
    weight, bias = torch.randn(3 * 16, 4, 3, 3) * 0.3, torch.randn(3 * 16) * 0.1
    got = codec.decode_embeddings(embedding, weight, bias, 4, flipped, method="dark", blur_kernel=3, backend="torch")
    expected = codec.decode(sr_head(embedding, weight, bias, 4, backend="torch"),
                            sr_head(flipped, weight, bias, 4, backend="torch"), method="dark", blur_kernel=3,
                            backend="torch")
    for a, b in zip(got, expected):
        torch.testing.assert_close(a, b)
