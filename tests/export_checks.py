"""What the export tests share: crops with varied boxes, running an ONNX file, and the comparison every
exported model passes against the torch path it was traced from.

The torch path is `model.predict(..., backend="torch")`. Keypoints must agree within 1e-3 heatmap pixels, or
within `keypoint_checks.reference_tolerance` where DARK's Newton step on random-weight heatmaps is
ill-conditioned (the reference's own spread under 1e-6 relative noise, which is what the two runtimes'
convolutions differ by); scores within 1e-5.
"""
import onnxruntime as ort
import torch

from keypoint_checks import assert_keypoints_close, in_image_pixels, reference_tolerance
from srpose_fast.codecs.flip import flip_merge
from srpose_fast.deploy.graph_spec import INPUT_NAMES, OUTPUT_NAMES


def crops(model, n: int, seed: int = 0):
    """Random normalised crops with boxes of varied place and size (image px = 2 to 6 heatmap px)."""
    gen = torch.Generator().manual_seed(seed)
    height, width = model.input_size
    images = torch.randn(n, 3, height, width, generator=gen)
    center = torch.rand(n, 2, generator=gen) * 300 + 20
    scale = (torch.rand(n, 2, generator=gen) + 0.5) * torch.tensor([width, height]) / 100
    return images, center, scale


def run_onnx(session, images, center, scale):
    feed = {name: t.numpy() for name, t in zip(INPUT_NAMES, (images, center, scale))}
    return tuple(torch.from_numpy(a) for a in session.run(list(OUTPUT_NAMES), feed))


def assert_matches_torch(session, model, *, flip_test: bool, method: str, batches=(1, 3)):
    blur = model.codec.blur_kernel
    for n in batches:
        images, center, scale = crops(model, n, seed=n)
        keypoints, scores = run_onnx(session, images, center, scale)
        with torch.no_grad():
            ref_keypoints, ref_scores = model.predict(images, flip_test=flip_test, method=method, center=center,
                                                      scale=scale, backend="torch")
            maps = model(images)
            merged = flip_merge(maps, model(images.flip(3)), model.codec.flip_indices) if flip_test else maps
        assert keypoints.shape == (n, model.codec.num_keypoints, 2) and scores.shape == keypoints.shape[:2]
        tol = torch.clamp(reference_tolerance(merged, method, blur), min=1e-3)[..., None].expand(-1, -1, 2)
        assert_keypoints_close(keypoints, ref_keypoints,
                               in_image_pixels(tol, ref_keypoints, method, model.heatmap_size, scale),
                               f"{method}, flip {flip_test}, N {n}")
        torch.testing.assert_close(scores, ref_scores, rtol=0, atol=1e-5)


def session_of(path) -> ort.InferenceSession:
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
