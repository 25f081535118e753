"""mmpose's MPII layout read as mmpose 0.x reads it, and the official ground-truth file."""
import json

import numpy as np
import pytest

from mpii_fixtures import PERSONS, mpii_names, write_mpii
from srpose_fast.data import TopDownCocoDataset
from srpose_fast.data.mpii import load_mpii_gt, mpii_image_id, mpii_samples
from srpose_fast.keypoint_sets import COCO, MPII


def test_samples_follow_mmpose_conventions(tmp_path):
    mpii = write_mpii(tmp_path)
    entries = json.loads(mpii.ann.read_text())
    samples = mpii_samples(entries, mpii.ann, mpii.images, MPII, padding=1.25)
    assert len(samples) == len(PERSONS) and [s["ann_id"] for s in samples] == [0, 1, 2, 3]
    s = samples[0]
    _, (cx, cy), scale, _ = PERSONS[0]
    # 1-based -> 0-based; the centre first moves down 15 px per unit of scale; scale x padding.
    np.testing.assert_allclose(s["center"], [cx - 1, cy + 15 * scale - 1], rtol=1e-6)
    np.testing.assert_allclose(s["scale"], [scale * 1.25] * 2, rtol=1e-6)
    vis = mpii.labelled[0]
    np.testing.assert_array_equal(s["visible"], vis.astype(np.float32))
    np.testing.assert_allclose(s["keypoints"][vis], mpii.joints[0][vis] - 1, rtol=1e-6)
    assert (s["keypoints"][~vis] == 0).all()
    assert s["image_id"] == 11 and s["file"] == mpii.images / "000000011.jpg" and s["size"] is None
    # MPII's "unknown" centre (x = -1) is not moved down.
    entries[0]["center"] = [-1, 50.0]
    np.testing.assert_allclose(mpii_samples(entries, mpii.ann, mpii.images, MPII, padding=1.25)[0]["center"],
                               [-2, 49])


def test_the_data_set_reads_the_list_and_crops_it(tmp_path):
    mpii = write_mpii(tmp_path)
    dataset = TopDownCocoDataset(mpii.ann, mpii.images, keypoint_set="mpii", input_size=(64, 64), train=False)
    assert dataset.coco is None and len(dataset) == 4
    item = dataset[1]
    assert tuple(item["image"].shape) == (3, 64, 64) and item["image_id"] == 22
    # The crop is centred on the sample's centre: a joint there lands in the middle of the input.
    s = dataset.samples[1]
    side = s["scale"][0] * 200
    expected = (s["keypoints"] - s["center"]) * 64 / side + 32
    vis = s["visible"] > 0
    np.testing.assert_allclose(item["keypoints"].numpy()[vis], expected[vis], atol=1e-3)


def test_mistakes_are_one_clear_line(tmp_path):
    mpii = write_mpii(tmp_path)
    with pytest.raises(ValueError, match="16 joints, keypoint set 'coco' has 17.*--keypoint-set mpii"):
        TopDownCocoDataset(mpii.ann, mpii.images, keypoint_set=COCO, train=False)
    with pytest.raises(ValueError, match="MPII layout.*detections"):
        TopDownCocoDataset(mpii.ann, mpii.images, keypoint_set=MPII, train=False, detections=mpii.ann)
    entries = json.loads(mpii.ann.read_text())
    del entries[2]["scale"]
    with pytest.raises(ValueError, match="entry 2 is not an MPII person"):
        mpii_samples(entries, mpii.ann, mpii.images, MPII, padding=1.25)
    with pytest.raises(ValueError, match="not a number"):
        mpii_image_id("img_7.jpg")
    assert mpii_image_id("015601864.jpg") == 15601864


def test_ground_truth_file(tmp_path):
    from scipy.io import loadmat, savemat

    mpii = write_mpii(tmp_path)
    gt = load_mpii_gt(mpii.mat)
    np.testing.assert_array_equal(gt.positions, mpii.joints)  # 1-based, as in the file
    np.testing.assert_array_equal(gt.labelled, mpii.labelled)
    np.testing.assert_array_equal(gt.head_boxes[0], [[80, 20], [110, 60]])
    # loadmat gives the official file's structure: a 1 x 16 object array of 1-element string arrays.
    names = loadmat(mpii.mat)["dataset_joints"]
    assert names.shape == (1, 16) and names.dtype == object and np.where(names == "head")[1][0] == 9

    for broken, message in (({"jnt_missing": np.zeros((16, 4))}, "lacks"),
                            ({"dataset_joints": mpii_names(), "jnt_missing": np.zeros((16, 4)),
                              "pos_gt_src": np.zeros((16, 2, 4)), "headboxes_src": np.zeros((2, 2, 3))}, "expected")):
        savemat(tmp_path / "bad.mat", broken)
        with pytest.raises(ValueError, match=message):
            load_mpii_gt(tmp_path / "bad.mat")
    (tmp_path / "text.mat").write_text("not matlab")
    with pytest.raises(ValueError, match="not a readable MATLAB file"):
        load_mpii_gt(tmp_path / "text.mat")
    with pytest.raises(FileNotFoundError, match="nope.mat"):
        load_mpii_gt(tmp_path / "nope.mat")
