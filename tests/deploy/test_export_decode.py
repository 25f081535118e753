"""The decode inside an exported graph: the torch reference decode (`ops.decode.decode_heatmaps_reference`,
built from `srpose_fast.codecs`' argmax, refinements, flip merge and transform) traced by
`torch.onnx.export(dynamo=True)` and run by onnxruntime, against the same function run eagerly.

One graph holds every decode method, with and without the flip merge, on 17x13 maps of K = 5 keypoints
(flip indices (0, 2, 1, 4, 3)) and on 7x5 maps of K = 3 (where DARK refines only x = 2). The 17x13 batch
holds the awkward maps: Gaussians at sub-pixel centres, ties
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
SMALL_FLIP = (2, 1, 0)
SMALL = (3, 7, 5)  # K, H, W
BLUR = 5
NAN_MAP = (7, 1, 4, 4)  # sample, keypoint, y, x
INPUTS = ("maps", "flipped", "center", "scale")


def _decode(maps, flipped, center, scale, method):
    flip = FLIP if maps.shape[1] == K else SMALL_FLIP
    return decode_heatmaps_reference(maps, method=method, blur_kernel=BLUR, flipped=flipped, flip_indices=flip,
                                     flip_shift=method != "dark_udp", center=center, scale=scale)


class EveryDecode(torch.nn.Module):
    """For the 17x13 set, then the 7x5 set: (keypoints, scores) of every method with the flip merge, then of
    every method without it."""

    def forward(self, maps, flipped, center, scale, small, small_flipped, small_center, small_scale):
        outputs = []
        for args in ((maps, flipped, center, scale), (small, small_flipped, small_center, small_scale)):
            outputs += [out for m in DECODE_METHODS for out in _decode(*args, m)]
            outputs += [out for m in DECODE_METHODS for out in _decode(args[0], None, *args[2:], m)]
        return tuple(outputs)


def small_maps() -> tuple[torch.Tensor, torch.Tensor]:
    """(maps, flipped), (4, 3, 7, 5): Gaussians, a zero map, maxima on the border and at DARK's only x."""
    k, h, w = SMALL
    maps, flipped = gaussian_maps(4, k, h, w, seed=11, sigma=1.0), gaussian_maps(4, k, h, w, seed=12, sigma=1.0)
    maps[2], flipped[2] = 0.0, 0.0
    for j, (x, y) in enumerate([(0, 3), (2, 2), (4, 6)]):
        maps[3, j] = 0.05
        maps[3, j, y, x] = 1.0
    return maps, flipped


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
    sets = []
    for maps, flipped in (awkward_maps(), small_maps()):
        sets.append((maps, flipped, *boxes(len(maps))))
    path = tmp_path_factory.mktemp("decode") / "decode.onnx"
    names = [f"{prefix}{name}" for prefix in ("", "small_") for name in INPUTS]
    torch.onnx.export(EveryDecode().eval(), sets[0] + sets[1], str(path), dynamo=True, verbose=False,
                      input_names=names)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    outputs = session.run(None, {name: t.numpy() for name, t in zip(names, sets[0] + sets[1])})
    return sets, [torch.from_numpy(a) for a in outputs]


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
@pytest.mark.parametrize("which", [0, 1], ids=["17x13 awkward", "7x5"])
def test_the_exported_decode_matches_the_reference(session, which, method, flip):
    sets, outputs = session
    maps, flipped, center, scale = sets[which]
    index = 2 * len(DECODE_METHODS) * which + DECODE_METHODS.index(method) + (0 if flip else len(DECODE_METHODS))
    keypoints, scores = outputs[2 * index], outputs[2 * index + 1]
    ref_keypoints, ref_scores = _decode(maps, flipped if flip else None, center, scale, method)
    if which == 0:
        assert ref_scores[NAN_MAP[:2]].isnan() and not scores[NAN_MAP[:2]].isnan()  # see the module's docstring
        for t in (keypoints, scores, ref_keypoints, ref_scores):
            t[NAN_MAP[:2]] = 0.0
    torch.testing.assert_close(scores, ref_scores, rtol=0, atol=0, equal_nan=True)
    flip_indices = FLIP if which == 0 else SMALL_FLIP
    merged = flip_merge(maps, flipped, flip_indices, shift=method != "dark_udp") if flip else maps
    tol = reference_tolerance(merged, method, BLUR)[..., None].expand(-1, -1, 2)
    assert_keypoints_close(keypoints, ref_keypoints,
                           in_image_pixels(tol, ref_keypoints, method, maps.shape[-2:], scale), f"{method}, flip {flip}")
