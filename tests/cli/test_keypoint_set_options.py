"""A CrowdPose or MPII file given to a zoo name: the model takes the file's keypoint set (or
--keypoint-set) in eval, predict, quantization and train; a mismatch is one line."""
import json

import cv2
import numpy as np
import pytest

from cli_checks import one_line_error
from mpii_fixtures import write_mpii
from scoring_fixtures import crowdpose_fixture
from srpose_fast.cli import main
from srpose_fast.engine.crowdpose_metrics import CROWDPOSE_STAT_NAMES

pytestmark = pytest.mark.usefixtures("single_thread")  # tests/conftest.py


@pytest.fixture
def crowdpose(tmp_path):
    """(annotation file, image folder) of the CrowdPose fixture's first two images (3 persons)."""
    gt, _ = crowdpose_fixture()
    gt["images"] = gt["images"][:2]
    ids = {img["id"] for img in gt["images"]}
    gt["annotations"] = [a for a in gt["annotations"] if a["image_id"] in ids]
    images = tmp_path / "images"
    images.mkdir()
    rng = np.random.default_rng(0)
    for img in gt["images"]:
        cv2.imwrite(str(images / img["file_name"]), rng.integers(0, 256, (img["height"], img["width"], 3), np.uint8))
    ann = tmp_path / "crowdpose_test.json"
    ann.write_text(json.dumps(gt))
    return ann, images


def test_eval_takes_the_annotation_files_keypoint_set(crowdpose, tmp_path, capsys):
    ann, images = crowdpose
    assert main(["eval", "srpose_demo", "--ann", str(ann), "--images", str(images), "--out", str(tmp_path / "cp"),
                 "--no-flip"]) == 0
    assert list(json.loads((tmp_path / "cp" / "metrics.json").read_text())) == list(CROWDPOSE_STAT_NAMES)
    results = json.loads((tmp_path / "cp" / "keypoints_results.json").read_text())
    assert {len(r["keypoints"]) for r in results} == {3 * 14}
    assert "AP(H)" in capsys.readouterr().out

    mpii = write_mpii(tmp_path / "mpii")
    assert main(["eval", "srpose_demo", "--ann", str(mpii.ann), "--images", str(mpii.images),
                 "--out", str(tmp_path / "mpii_out"), "--no-flip"]) == 0
    metrics = json.loads((tmp_path / "mpii_out" / "metrics.json").read_text())
    assert 0.0 <= metrics["PCKh@0.5"] <= 1.0 and "r_ankle" in metrics
    capsys.readouterr()

    # Naming another set is one line that says what does not fit.
    assert main(["eval", "srpose_demo", "--keypoint-set", "coco", "--ann", str(ann), "--images", str(images)]) == 2
    assert "14 keypoints" in one_line_error(capsys, "eval")


def test_predict_takes_keypoint_set(crowdpose, tmp_path, capsys):
    _, images = crowdpose
    image = sorted(images.iterdir())[0]
    assert main(["predict", "srpose_demo", str(image), "--boxes", "[[100, 50, 120, 300]]", "--keypoint-set", "mpii",
                 "--out", str(tmp_path / "out"), "--no-flip"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert len(printed[0]["keypoints"]) == 16


def test_quantization_takes_the_annotation_files_keypoint_set(crowdpose, tmp_path, capsys):
    ann, _ = crowdpose
    assert main(["quantization", "--ann", str(ann), "--out", str(tmp_path / "q")]) == 0
    table = json.loads((tmp_path / "q" / "quantization.json").read_text())
    assert table and all(0.0 <= ap <= 1.0 for row in table.values() for ap in row.values())
    capsys.readouterr()
    mpii = write_mpii(tmp_path / "mpii")
    assert main(["quantization", "--ann", str(mpii.ann), "--out", str(tmp_path / "q2")]) == 2
    assert "MPII layout" in one_line_error(capsys, "quantization")
    (tmp_path / "odd.json").write_text(json.dumps({"images": [], "annotations": [{"id": 1, "keypoints": [0] * 30}]}))
    assert main(["quantization", "--ann", str(tmp_path / "odd.json"), "--out", str(tmp_path / "q3")]) == 2
    assert "10 keypoints per person" in one_line_error(capsys, "quantization")


class _Built(Exception):
    """Stops train() right after it built its model."""


def test_train_takes_the_training_files_keypoint_set(crowdpose, tmp_path, monkeypatch):
    import srpose_fast.models

    built = []

    def fake_build_model(name, *, keypoint_set, **kwargs):
        built.append(keypoint_set)
        raise _Built

    monkeypatch.setattr(srpose_fast.models, "build_model", fake_build_model)
    ann, images = crowdpose
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"model": "srpose_demo", "train_ann": str(ann), "train_images": str(images),
                                  "device": "cpu", "output_dir": str(tmp_path / "work")}))
    with pytest.raises(_Built):
        main(["train", str(config)])
    with pytest.raises(_Built):
        main(["train", str(config), "--keypoint-set", "mpii"])
    assert built == ["crowdpose", "mpii"]
