"""`srpose-fast eval` follows the config's evaluation protocol (SRPose's: detection file, det_bbox_thr, flip
test, shift decoder, vis_thr 0.2, OKS-NMS 0.9); --gt-boxes and --detections FILE override the boxes."""
import json

import pytest

import srpose_fast.engine.evaluator as evaluator
from srpose_fast.cli import main
from srpose_fast.data.synthetic import generate_synthetic_coco
from srpose_fast.engine.config import TrainConfig, load_config

pytestmark = pytest.mark.usefixtures("single_thread")  # tests/conftest.py


@pytest.fixture
def val_set(tmp_path):
    """A config naming a 2-image synthetic validation set and a detection file: each labelled person's box at
    score 0.9, plus one box at 0.05 that det_bbox_thr 0.1 drops."""
    data = tmp_path / "data"
    ann = generate_synthetic_coco(data, num_images=2, split="val", image_size=(96, 64), seed=3, progress=False)
    people = [a for a in json.loads(ann.read_text())["annotations"] if a["num_keypoints"] > 0]
    detections = [{"image_id": a["image_id"], "category_id": 1, "bbox": a["bbox"], "score": 0.9} for a in people]
    detections.append({"image_id": people[0]["image_id"], "category_id": 1, "bbox": [1, 1, 20, 30], "score": 0.05})
    det_file = tmp_path / "detections.json"
    det_file.write_text(json.dumps(detections))
    one_box = tmp_path / "one_box.json"
    one_box.write_text(json.dumps(detections[:1]))
    config = TrainConfig(model="srpose_demo", input_size=(64, 64), val_ann=str(ann), val_images=str(data / "images" / "val"),
                         val_bbox_file=str(det_file), det_bbox_thr=0.1, batch_size=8)
    path = tmp_path / "config.json"
    config.save(path)
    return path, len(people), one_box


@pytest.fixture
def evaluations(monkeypatch):
    """What each evaluate call got: its data set's box scores and its settings."""
    calls = []
    real = evaluator.evaluate

    def recording(model, dataset, **kwargs):
        calls.append({"box_scores": [s["box_score"] for s in dataset.samples], **kwargs})
        return real(model, dataset, **kwargs)

    monkeypatch.setattr(evaluator, "evaluate", recording)
    return calls


def _eval(config, tmp_path, *extra):
    return main(["eval", str(config), "--out", str(tmp_path / "out"), "--device", "cpu", *extra])


def test_eval_uses_the_configs_protocol_and_box_overrides(val_set, evaluations, tmp_path, capsys):
    config, people, one_box = val_set
    assert _eval(config, tmp_path) == 0
    run = evaluations[-1]
    assert run["box_scores"] == [0.9] * people  # the detection file, the 0.05 box under det_bbox_thr dropped
    assert (run["method"], run["flip_test"], run["vis_thr"], run["oks_nms_thr"], run["batch_size"]) == \
        ("shift", True, 0.2, 0.9, 32)

    assert _eval(config, tmp_path, "--gt-boxes") == 0
    assert evaluations[-1]["box_scores"] == [1.0] * people
    assert _eval(config, tmp_path, "--detections", str(one_box), "--method", "argmax", "--no-flip") == 0
    assert evaluations[-1]["box_scores"] == [0.9]
    assert (evaluations[-1]["method"], evaluations[-1]["flip_test"]) == ("argmax", False)
    capsys.readouterr()

    assert _eval(config, tmp_path, "--detections", "") == 2
    err = capsys.readouterr().err
    assert err == "srpose-fast eval: error: --detections needs a file; use --gt-boxes for the ground-truth boxes\n"
    with pytest.raises(SystemExit):  # one or the other
        _eval(config, tmp_path, "--gt-boxes", "--detections", str(one_box))
    assert "not allowed with argument" in capsys.readouterr().err


def test_eval_takes_the_configs_test_settings(val_set, evaluations, tmp_path):
    config, people, _ = val_set
    other = load_config(config).replace(decode_method="dark", flip_test=False, vis_thr=0.3, oks_nms_thr=0.8,
                                        val_bbox_file=None)
    path = tmp_path / "other.json"
    other.save(path)
    assert _eval(path, tmp_path) == 0
    run = evaluations[-1]
    assert run["box_scores"] == [1.0] * people  # no detection file: the ground-truth boxes
    assert (run["method"], run["flip_test"], run["vis_thr"], run["oks_nms_thr"]) == ("dark", False, 0.3, 0.8)
