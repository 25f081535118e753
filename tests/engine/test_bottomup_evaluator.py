"""Bottom-up evaluation (engine.bottomup_evaluator / bottomup_predict) end to end on a synthetic COCO set:
real images on disk, the real test-time resize, codec decode and COCO scoring; the network is an oracle that
draws each person's annotated joints into heatmaps and gives each person its own tag (so the grouping, the
resize geometry and the transform back to the image must all be right for AP to reach 1)."""
import json

import numpy as np
import pytest
import torch

from bottomup_fixtures import write_bottomup_set
from srpose_fast.benchmarking.bottomup_outputs import render_bottomup_outputs
from srpose_fast.codecs.associative_embedding import AssociativeEmbedding
from srpose_fast.codecs.conventions import PIXEL_STD
from srpose_fast.data.bottomup import BottomUpCocoDataset
from srpose_fast.data.bottomup_resize import bottomup_test_size
from srpose_fast.engine.bottomup_evaluator import evaluate_bottomup
from srpose_fast.engine.bottomup_predict import predict_people
from srpose_fast.keypoint_sets import COCO


class OracleNetwork(torch.nn.Module):
    """A stand-in bottom-up model: `predict` renders the next image's annotated people (images come in
    data set order) at the network input and decodes them with the real codec."""

    kind = "bottom_up"

    def __init__(self, people_per_image: list[np.ndarray], input_size: int):
        super().__init__()
        self.anchor = torch.nn.Parameter(torch.zeros(()))  # a device for the evaluator
        self.keypoint_set = COCO
        self.codec = AssociativeEmbedding(input_size=input_size, nms_kernel=5, nms_padding=2)
        self.people = iter(people_per_image)

    def predict(self, images, *, flip_test=True, center=None, scale=None, backend="auto"):
        height, width = images.shape[-2:]
        joints = torch.as_tensor(next(self.people), dtype=torch.float32).reshape(-1, 17, 3)
        center = torch.as_tensor(np.asarray(center), dtype=torch.float32)
        size = torch.as_tensor(np.asarray(scale), dtype=torch.float32) * PIXEL_STD
        step = size / torch.tensor([width, height])
        # image -> input pixels, minus the half pixel the decode adds back (adjust's +0.5)
        positions = (joints[..., :2] - (center - size / 2)) / step - 0.5
        outputs, flipped = render_bottomup_outputs(positions, joints[..., 2] > 0, self.codec.flip_indices, height,
                                                   width, flip=flip_test)
        return self.codec.decode(outputs, flipped, input_size=(height, width), center=center, scale=scale,
                                 backend=backend)


@pytest.fixture(scope="module")
def synthetic_set(tmp_path_factory):
    return write_bottomup_set(tmp_path_factory.mktemp("bottomup"), num_images=3, seed=3, image_size=(96, 160),
                              max_people=3)


def _annotated_people(dataset) -> list[np.ndarray]:
    people = []
    for image_id in dataset.coco.getImgIds():
        anns = [a for a in dataset.coco.imgToAnns[image_id] if a.get("num_keypoints", 0) > 0 and not a["iscrowd"]]
        people.append(np.array([a["keypoints"] for a in anns], dtype=np.float32))
    return people


def test_resize_rule():
    # 480x640 -> 512x704: h is the short side; 704 = ceil(512 / 480 * 640 / 64) * 64; scale (704/512 * 2.4, 2.4)
    landscape = bottomup_test_size(480, 640)
    assert landscape.size == (512, 704)
    np.testing.assert_allclose(landscape.center, [320, 240])
    np.testing.assert_allclose(landscape.scale, [3.3, 2.4])
    portrait = bottomup_test_size(641, 481)  # centre (round(240.5), round(320.5)) = (240, 320): half to even
    assert portrait.size == (704, 512)
    np.testing.assert_allclose(portrait.center, [240, 320])
    np.testing.assert_allclose(portrait.scale, [2.405, 704 / 512 * 2.405])


@pytest.mark.parametrize("flip_test", [True, False])
def test_oracle_network_scores_ap_one(synthetic_set, tmp_path, flip_test):
    ann, images = synthetic_set
    dataset = BottomUpCocoDataset(ann, images, train=False)
    model = OracleNetwork(_annotated_people(dataset), input_size=64)
    stats = evaluate_bottomup(model, dataset, flip_test=flip_test, backend="torch", out_dir=tmp_path, progress=False)
    assert stats["AP"] > 0.95, stats
    results = json.loads((tmp_path / "keypoints_results.json").read_text())
    assert json.loads((tmp_path / "metrics.json").read_text()) == stats
    assert "bottom-up" in (tmp_path / "metrics.md").read_text()
    assert {r["image_id"] for r in results} <= set(dataset.coco.getImgIds())
    scores = np.array([r["keypoints"][2::3] for r in results])
    assert (scores > 0.1).any() and (scores < 1).any()  # the joints' heatmap values, not the original's 1.0


def test_predict_people_lands_on_the_annotated_joints(synthetic_set):
    # One whole image through the test-time resize, the oracle and the decode: every annotated person comes
    # back with its labelled joints within 1.5 image pixels (half a pixel of adjust at the input's 1.5x
    # coarser scale, plus the Gaussian's sub-pixel centre).
    ann, images = synthetic_set
    dataset = BottomUpCocoDataset(ann, images, train=False)
    annotated = _annotated_people(dataset)
    model = OracleNetwork(annotated, input_size=64)
    poses = predict_people(model, dataset[0]["image"], backend="torch")
    truth = annotated[0].reshape(-1, 17, 3)
    assert len(poses) == len(truth)
    for person in truth:
        labelled = person[:, 2] > 0
        error = np.abs(poses.keypoints[:, labelled] - person[None, labelled, :2]).max(axis=(1, 2))
        assert error.min() < 1.5, error
