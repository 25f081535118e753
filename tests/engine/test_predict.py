"""Batched inference on whole images (srpose_fast.engine.predict.predict_stream): crops of several images share
batches and come back to their own image; an image without boxes is one whole-image box; instance scores are
COCO's; the model's kind routes bottom-up models to their own path."""
import numpy as np
import pytest
import torch

from srpose_fast.codecs.transforms import box_to_center_scale
from srpose_fast.data.transforms import crop
from srpose_fast.engine.predict import predict_stream
from srpose_fast.engine.rescoring import rescore
from srpose_fast.models import build_model

pytestmark = pytest.mark.usefixtures("single_thread")


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return build_model("srpose_demo", input_size=(64, 64), backend="torch").eval()


def images(n, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (50 + 10 * i, 70, 3), np.uint8) for i in range(n)]


def crops_of(image, boxes):
    """mmpose's test-time crops of the boxes (M, 5), made here without predict_stream: (crops, center, scale)."""
    center, scale = (t.numpy() for t in box_to_center_scale(torch.from_numpy(boxes[:, :4]), 1.0))
    crops = np.stack([crop(image, np.zeros((0, 2)), np.zeros(0), c, s, 0.0, (64, 64)).image
                      for c, s in zip(center, scale)])
    return torch.from_numpy(crops), torch.from_numpy(center), torch.from_numpy(scale)


def one_by_one(model, image, boxes):
    """Each image's crops on their own, the way predict_stream must reproduce whatever the batching."""
    crops, center, scale = crops_of(image, boxes)
    keypoints, scores = model.predict(crops, method="shift", center=center, scale=scale)
    return keypoints.numpy(), scores.numpy()


@pytest.mark.parametrize("batch_size", [1, 2, 32])
def test_crops_of_several_images_share_batches_and_return_to_their_image(model, batch_size):
    pictures = images(4)
    boxes = [np.array([[5, 5, 30, 40, 0.9], [20, 0, 40, 45, 0.5], [0, 10, 60, 30, 1.0]]), np.zeros((0, 5)), None,
             np.array([[10, 10, 20, 20, 0.8]])]
    out = list(predict_stream(model, [(i, p, b) for i, (p, b) in enumerate(zip(pictures, boxes))],
                              batch_size=batch_size, method="shift"))
    assert [tag for tag, _ in out] == [0, 1, 2, 3]
    for (i, prediction), image, given in zip(out, pictures, boxes):
        expected = given if given is not None else np.array([[0, 0, 70, image.shape[0], 1.0]])
        assert len(prediction) == len(expected) and prediction.keypoints.shape == (len(expected), 17, 2)
        np.testing.assert_array_equal(prediction.boxes, expected[:, :4].astype(np.float32))
        if not len(expected):
            continue
        keypoints, scores = one_by_one(model, image, expected.astype(np.float64))
        np.testing.assert_allclose(prediction.keypoints, keypoints, atol=1e-3)
        np.testing.assert_allclose(prediction.keypoint_scores, scores, rtol=1e-4, atol=1e-7)
        np.testing.assert_allclose(prediction.scores, rescore(expected[:, 4], prediction.keypoint_scores), rtol=1e-6)


def test_boxes_that_miss_the_image_are_dropped_and_heatmaps_come_on_request(model):
    image = images(1)[0]
    boxes = np.array([[500, 500, 10, 10, 1.0], [5, 5, 30, 40, 1.0]])
    ((_, prediction),) = predict_stream(model, [(0, image, boxes)], heatmaps=True)
    np.testing.assert_array_equal(prediction.boxes, [[5, 5, 30, 40]])
    assert prediction.heatmaps.shape == (1, *model.heatmap_size) and prediction.center.shape == (1, 2)
    with torch.no_grad():
        heatmaps = model(crops_of(image, boxes[1:])[0]).amax(1).numpy()
    np.testing.assert_allclose(prediction.heatmaps, heatmaps, rtol=1e-4, atol=1e-6)


def test_the_models_kind_routes_it():
    class BottomUp(torch.nn.Module):
        kind = "bottom_up"

    with pytest.raises(ValueError, match="boxes do not apply"):
        list(predict_stream(BottomUp(), [(0, images(1)[0], np.zeros((1, 5)))]))
    with pytest.raises(ValueError, match="heatmap overlays are for top-down models"):
        list(predict_stream(BottomUp(), [], heatmaps=True))
    unknown = BottomUp()
    unknown.kind = "sideways"
    with pytest.raises(ValueError, match="neither 'top_down' nor 'bottom_up'"):
        list(predict_stream(unknown, []))


@pytest.mark.parametrize("backend", [None, "torch"])
def test_a_bottom_up_model_runs_the_backend_asked_for(backend):
    """predict_stream's backend reaches the bottom-up model's predict as given (None: the model's own)."""
    from types import SimpleNamespace

    from srpose_fast.codecs.bottomup_decode import BottomUpPoses

    class BottomUp(torch.nn.Module):
        kind = "bottom_up"
        codec = SimpleNamespace(input_size=64)

        def __init__(self):
            super().__init__()
            self.weight = torch.nn.Parameter(torch.zeros(1))
            self.backends = []

        def predict(self, images, *, backend, **_):
            self.backends.append(backend)
            return [BottomUpPoses(np.zeros((0, 17, 2), np.float32), np.zeros((0, 17), np.float32),
                                  np.zeros(0, np.float32), np.zeros((0, 17, 1), np.float32))]

    model = BottomUp()
    [(tag, prediction)] = predict_stream(model, [(7, images(1)[0], None)], backend=backend)
    assert model.backends == [backend] and tag == 7 and len(prediction.scores) == 0
