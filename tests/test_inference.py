"""The Python API (srpose_fast.inference.predict_poses): paths or BGR arrays, one image or a list, boxes in
either format or none, and bottom-up models through the same call."""
import cv2
import numpy as np
import pytest
import torch

from srpose_fast.inference import predict_poses
from srpose_fast.models import build_model

pytestmark = pytest.mark.usefixtures("single_thread")


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return build_model("srpose_demo", input_size=(64, 64), backend="torch").eval()


def test_paths_arrays_formats_and_whole_images_agree(model, tmp_path):
    rng = np.random.default_rng(1)
    image = rng.integers(0, 256, (60, 80, 3), np.uint8)
    cv2.imwrite(str(tmp_path / "a.png"), image)
    one = predict_poses(model, str(tmp_path / "a.png"), [[10, 5, 30, 40]])
    assert one.keypoints.shape == (1, 17, 2) and one.keypoint_scores.shape == (1, 17)
    corners = predict_poses(model, image, np.array([[10, 5, 40, 45]]), bbox_format="xyxy")
    np.testing.assert_array_equal(corners.keypoints, one.keypoints)
    both = predict_poses(model, [image, tmp_path / "a.png"], [[[10, 5, 30, 40, 0.5]], None], batch_size=1)
    assert isinstance(both, list) and len(both) == 2
    np.testing.assert_allclose(both[0].keypoints, one.keypoints, atol=1e-3)
    np.testing.assert_array_equal(both[0].box_scores, [0.5])
    whole = predict_poses(model, image)
    np.testing.assert_array_equal(whole.boxes, [[0, 0, 80, 60]])
    np.testing.assert_allclose(both[1].keypoints, whole.keypoints, atol=1e-3)


def test_mistakes_are_named(model, tmp_path):
    image = np.zeros((20, 20, 3), np.uint8)
    with pytest.raises(ValueError, match="one entry per image expected, got 1 for 2 images"):
        predict_poses(model, [image, image], [[[0, 0, 5, 5]]])
    with pytest.raises(ValueError, match="image 0: expected a path or a BGR uint8 array"):
        predict_poses(model, [image.astype(np.float32)])
    with pytest.raises(ValueError, match="bbox_format must be one of"):
        predict_poses(model, image, bbox_format="cxcywh")
    with pytest.raises(FileNotFoundError, match="image not found"):
        predict_poses(model, tmp_path / "missing.jpg")


def test_a_bottom_up_model_finds_the_people_itself():
    torch.manual_seed(0)
    bottom_up = build_model("bottomup_demo", backend="torch").eval()
    image = np.random.default_rng(2).integers(0, 256, (64, 96, 3), np.uint8)
    people = predict_poses(bottom_up, image)
    assert people.keypoints.shape[1:] == (17, 2) and len(people.boxes) == len(people)
    with pytest.raises(ValueError, match="boxes do not apply"):
        predict_poses(bottom_up, image, [[0, 0, 10, 10]])
