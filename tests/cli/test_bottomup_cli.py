"""`srpose-fast eval` and `predict` with a bottom-up zoo model (whole images, no boxes), end to end on a
synthetic multi-person COCO set; the wrong box options are one-line errors."""
import json

import pytest

from bottomup_fixtures import write_bottomup_set
from cli_checks import one_line_error
from srpose_fast.cli import main
from srpose_fast.engine.coco_metrics import STAT_NAMES

pytestmark = pytest.mark.usefixtures("single_thread")  # tests/conftest.py


@pytest.fixture(scope="module")
def multi_person(tmp_path_factory):
    return write_bottomup_set(tmp_path_factory.mktemp("bottomup_cli"), num_images=2, seed=5, image_size=(96, 128),
                              max_people=2)


def test_eval_scores_every_image(multi_person, tmp_path, capsys):
    ann, images = multi_person
    assert main(["eval", "bottomup_demo", "--ann", str(ann), "--images", str(images), "--out", str(tmp_path),
                 "--backend", "torch"]) == 0
    stats = json.loads((tmp_path / "metrics.json").read_text())
    assert list(stats) == list(STAT_NAMES)
    assert (tmp_path / "keypoints_results.json").exists() and "bottom-up" in (tmp_path / "metrics.md").read_text()
    assert "bottom-up" in capsys.readouterr().out
    assert main(["eval", "bottomup_demo", "--ann", str(ann), "--images", str(images), "--out", str(tmp_path),
                 "--detections", str(ann)]) == 2
    assert "--detections does not apply" in one_line_error(capsys, "eval")


def test_predict_finds_people_without_boxes(multi_person, tmp_path, capsys):
    ann, images = multi_person
    image = sorted(images.iterdir())[0]
    assert main(["predict", "bottomup_demo", str(image), "--out", str(tmp_path), "--backend", "torch"]) == 0
    people = json.loads(capsys.readouterr().out)
    results = json.loads((tmp_path / "results.json").read_text())  # COCO results, one per person
    assert [r["keypoints"] for r in results] == [sum(p["keypoints"], []) for p in people]
    assert (tmp_path / "overlays" / image.name).exists()
    assert all(len(p["keypoints"]) == 17 for p in people)
    assert main(["predict", "bottomup_demo", str(image), "--boxes", "[[1, 1, 20, 20]]"]) == 2
    assert "--boxes does not apply" in one_line_error(capsys, "predict")
