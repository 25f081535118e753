"""The decode inside an exported graph: the torch reference decode (`ops.decode.decode_heatmaps_reference`,
built from `srpose_fast.codecs`' argmax, refinements, flip merge and transform) traced by
`torch.onnx.export(dynamo=True)` and run by onnxruntime, against the same function run eagerly.

One graph holds every decode method, with and without the flip merge, on 17x13 maps of K = 5 keypoints
(flip indices (0, 2, 1, 4, 3)); its batch holds the awkward maps: Gaussians at sub-pixel centres, ties
(a plateau, a constant map), all-zero and all-negative maps, maxima on every border and just inside the
refinements' bounds, noise, and one map holding a NaN. That map is the one difference: onnxruntime's ReduceMax
skips NaN where torch's max propagates it, so the graph decodes the map's other pixels where the reference
gives a NaN score and keypoint (a NaN heatmap comes from a NaN input); the other maps of its batch are unaffected.

Tolerances: scores and the argmax methods ("argmax", "shift") exactly as the reference (the same float32
sums and comparisons, ONNX ArgMax keeps the first maximum); "dark" / "dark_udp" within
`keypoint_checks.reference_tolerance` (1e-4 heatmap px plus 8x the reference's own spread under 1e-6
relative noise: the blur's sums run in another order); image coordinates add float32 rounding
(`keypoint_checks.in_image_pixels`).
"""
from __future__ import annotations

import onnxruntime as ort
import pytest
import torch

from keypoint_checks import assert_keypoints_close, boxes, gaussian_maps, in_image_pixels, reference_tolerance
from srpose_fast.codecs.conventions import DECODE_METHODS
from srpose_fast.codecs.flip import flip_merge
from srpose_fast.ops.decode import decode_heatmaps_reference


FLIP = (0, 2, 1, 4, 3)
K, H, W = 5, 17, 13
BLUR = 5
NAN_MAP = (7, 1, 4, 4)  # sample, keypoint, y, x


def _decode(maps, flipped, center, scale, method):
    return decode_heatmaps_reference(maps, method=method, blur_kernel=BLUR, flipped=flipped, flip_indices=FLIP,
                                     flip_shift=method != "dark_udp", center=center, scale=scale)


class EveryDecode(torch.nn.Module):
    """(keypoints, scores) of every method with the flip merge, then of every method without it."""

    def forward(self, maps, flipped, center, scale):
        with_flip = [out for m in DECODE_METHODS for out in _decode(maps, flipped, center, scale, m)]
        without = [out for m in DECODE_METHODS for out in _decode(maps, None, center, scale, m)]
        return tuple(with_flip + without)


def awkward_maps() -> tuple[torch.Tensor, torch.Tensor]:
    """(maps, flipped), (10, K, H, W) each; the flipped maps keep each sample's property after the merge."""
    gen = torch.Generator().manual_seed(3)
    maps = [gaussian_maps(2, K, H, W, seed=5), gaussian_maps(1, K, H, W, seed=6, sigma=0.8, noise=0.0)]
    flipped = [gaussian_maps(2, K, H, W, seed=7), gaussian_maps(1, K, H, W, seed=8, sigma=0.8, noise=0.0)]
    zero = torch.zeros(1, K, H, W)
    negative = -torch.rand(1, K, H, W, generator=gen) - 0.1
    plateau = torch.full((1, K, H, W), 0.5)
    plateau[0, :, 7, 3] = plateau[0, :, 2, 9] = plateau[0, :, 12, 0] = 0.9  # three equal maxima; (9, 2) wins
    plateau[0, 4] = 0.5  # a constant map: the first pixel wins
    border = torch.rand(1, K, H, W, generator=gen) * 0.1
    # corner, opposite corner, just inside x > 1, just inside x < W - 2 (DARK), last row but one
    for k, (x, y) in enumerate([(0, 0), (W - 1, H - 1), (2, 8), (W - 3, 2), (6, H - 2)]):
        border[0, k, y, x] = 1.0
        border[0, k, y, max(x - 1, 0)] = border[0, k, y, min(x + 1, W - 1)] = 0.6
    with_nan = gaussian_maps(1, K, H, W, seed=9)
    with_nan[(0, *NAN_MAP[1:])] = float("nan")
    noise = torch.rand(2, K, H, W, generator=gen)
    maps += [zero, negative, plateau, border, with_nan, noise]
    flipped += [zero, -torch.rand(1, K, H, W, generator=gen) - 0.1, torch.full((1, K, H, W), 0.5),
                torch.zeros(1, K, H, W), gaussian_maps(1, K, H, W, seed=10), torch.rand(2, K, H, W, generator=gen)]
    return torch.cat(maps), torch.cat(flipped)


@pytest.fixture(scope="module")
def session(tmp_path_factory):
    maps, flipped = awkward_maps()
    center, scale = boxes(len(maps))
    path = tmp_path_factory.mktemp("decode") / "decode.onnx"
    torch.onnx.export(EveryDecode().eval(), (maps, flipped, center, scale), str(path), dynamo=True, verbose=False,
                      input_names=["maps", "flipped", "center", "scale"])
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]), (maps, flipped, center, scale)


def test_the_awkward_maps_are_what_they_claim():
    maps, flipped = awkward_maps()
    merged = flip_merge(maps, flipped, FLIP)
    assert (merged[3] == 0).all() and (merged[4] < 0).all()
    index = merged[5].flatten(1).argmax(1)
    assert index.tolist() == [2 * W + 9] * 4 + [0]  # ties in the merged plateau: the lowest flat index
    assert (merged[5, :4].flatten(1) == merged[5, :4].amax((1, 2))[:, None]).sum(1).tolist() == [3] * 4
    assert torch.isnan(merged).flatten(2).any(2).nonzero().tolist() == [list(NAN_MAP[:2])]


@pytest.mark.parametrize("flip", [True, False])
@pytest.mark.parametrize("method", DECODE_METHODS)
def test_the_exported_decode_matches_the_reference(session, method, flip):
    sess, (maps, flipped, center, scale) = session
    outputs = sess.run(None, {"maps": maps.numpy(), "flipped": flipped.numpy(), "center": center.numpy(),
                              "scale": scale.numpy()})
    index = DECODE_METHODS.index(method) + (0 if flip else len(DECODE_METHODS))
    keypoints, scores = (torch.from_numpy(a) for a in outputs[2 * index: 2 * index + 2])
    ref_keypoints, ref_scores = _decode(maps, flipped if flip else None, center, scale, method)
    assert ref_scores[NAN_MAP[:2]].isnan() and not scores[NAN_MAP[:2]].isnan()  # see the module's docstring
    for t in (keypoints, scores, ref_keypoints, ref_scores):
        t[NAN_MAP[:2]] = 0.0
    torch.testing.assert_close(scores, ref_scores, rtol=0, atol=0, equal_nan=True)
    merged = flip_merge(maps, flipped, FLIP, shift=method != "dark_udp") if flip else maps
    tol = reference_tolerance(merged, method, BLUR)[..., None].expand(-1, -1, 2)
    assert_keypoints_close(keypoints, ref_keypoints, in_image_pixels(tol, ref_keypoints, method, (H, W), scale),
                           f"{method}, flip {flip}")
