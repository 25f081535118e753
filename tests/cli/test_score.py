"""`srpose-fast score`: each benchmark's statistics of a results file, as `eval` computes them."""
import json

import numpy as np
import pytest

from mpii_fixtures import write_mpii
from scoring_fixtures import coco_fixture, crowdpose_fixture, tie_fixture
from srpose_fast.cli import main
from srpose_fast.engine.coco_metrics import STAT_NAMES, coco_keypoint_eval
from srpose_fast.engine.crowdpose_metrics import CROWDPOSE_STAT_NAMES, crowdpose_keypoint_eval
from srpose_fast.data import TopDownCocoDataset, generate_synthetic_coco
from srpose_fast.engine.evaluator import evaluate
from srpose_fast.engine.rescoring import rescore
from srpose_fast.keypoint_sets import COCO, CROWDPOSE
from stub_models import GroundTruthModel

pytestmark = pytest.mark.usefixtures("single_thread")  # tests/conftest.py


def _write(path, obj):
    path.write_text(json.dumps(obj))
    return str(path)


def test_score_coco_and_crowdpose_files(tmp_path, capsys):
    gt, results = coco_fixture()
    code = main(["score", _write(tmp_path / "res.json", results), "--ann", _write(tmp_path / "coco.json", gt),
                 "--out", str(tmp_path / "coco")])
    assert code == 0
    metrics = json.loads((tmp_path / "coco" / "metrics.json").read_text())
    assert list(metrics) == list(STAT_NAMES)
    assert metrics == pytest.approx(coco_keypoint_eval(gt, results, COCO.sigmas), abs=1e-15)
    out = capsys.readouterr().out
    assert "| AP | AP50 | AP75 | APm | APl |" in out and "coco" in out
    assert not (tmp_path / "coco" / "keypoints_results.json").exists()  # nothing rescored: not rewritten

    gt, results = crowdpose_fixture()  # the 14 keypoints and the crowd indices are read from the file
    assert main(["score", _write(tmp_path / "res.json", results), "--ann", _write(tmp_path / "cp.json", gt),
                 "--out", str(tmp_path / "cp")]) == 0
    metrics = json.loads((tmp_path / "cp" / "metrics.json").read_text())
    assert list(metrics) == list(CROWDPOSE_STAT_NAMES)
    assert metrics == pytest.approx(crowdpose_keypoint_eval(gt, results, CROWDPOSE.sigmas), abs=1e-15)
    assert "| AP(E) | AP(M) | AP(H) |" in capsys.readouterr().out
    # The same file scored as COCO on request.
    assert main(["score", str(tmp_path / "res.json"), "--ann", str(tmp_path / "cp.json"), "--dataset", "coco",
                 "--out", str(tmp_path / "cp_as_coco")]) == 0
    assert list(json.loads((tmp_path / "cp_as_coco" / "metrics.json").read_text())) == list(STAT_NAMES)


def test_score_rescores_and_suppresses_as_evaluate(tmp_path):
    # The tie fixture as a results file carrying box scores and areas: --rescore --oks-nms 0.9 keeps
    # what the evaluator's arrays keep (tests/engine/test_scoring_reference.py checks those against
    # mmpose's rule and xtcocotools), in the same order, with the same scores.
    gt, pred = tie_fixture()
    file_scores = [0.9, 0.5, 0.7, 0.9, 0.5, 0.9, 0.5]  # favour the poorer duplicates 0, 3 and 5
    results = [{"image_id": i, "category_id": 1, "score": score, "box_score": box, "area": area,
                "keypoints": [v for (x, y), s in zip(xy, ks) for v in (x, y, s)]}
               for i, xy, ks, box, area, score in zip(pred["image_id"], pred["keypoints"], pred["keypoint_scores"],
                                                       pred["box_score"], pred["area"], file_scores)]
    ann = _write(tmp_path / "gt.json", gt)
    assert main(["score", _write(tmp_path / "res.json", results), "--ann", ann, "--rescore", "--oks-nms", "0.9",
                 "--out", str(tmp_path / "out")]) == 0
    kept = json.loads((tmp_path / "out" / "keypoints_results.json").read_text())
    assert [r["keypoints"] for r in kept] == [results[i]["keypoints"] for i in (2, 1, 6, 5, 4)]
    scores = rescore(pred["box_score"], pred["keypoint_scores"])
    assert [r["score"] for r in kept] == [scores[i] for i in (2, 1, 6, 5, 4)]
    expected = coco_keypoint_eval(gt, kept, COCO.sigmas)
    assert json.loads((tmp_path / "out" / "metrics.json").read_text()) == expected
    # Without --rescore the file's scores decide: the poorer duplicates survive and AP drops.
    assert main(["score", str(tmp_path / "res.json"), "--ann", ann, "--oks-nms", "0.9",
                 "--out", str(tmp_path / "plain")]) == 0
    assert json.loads((tmp_path / "plain" / "metrics.json").read_text())["AP"] < expected["AP"] - 0.02


def test_score_gives_what_eval_gave(tmp_path):
    # eval writes its results; scoring that file reproduces eval's statistics: one scoring function.
    ann = generate_synthetic_coco(tmp_path / "coco", num_images=6, split="val", seed=2, progress=False)
    dataset = TopDownCocoDataset(ann, tmp_path / "coco" / "images" / "val", train=False)
    offsets = np.random.default_rng(0).normal(0, 4.0, (len(dataset), 2))
    stats = evaluate(GroundTruthModel(dataset, offset=offsets, score=0.7), dataset, progress=False,
                     out_dir=tmp_path / "eval")
    assert main(["score", str(tmp_path / "eval" / "keypoints_results.json"), "--ann", str(ann),
                 "--out", str(tmp_path / "score")]) == 0
    assert json.loads((tmp_path / "score" / "metrics.json").read_text()) == stats

    mpii = write_mpii(tmp_path / "mpii")
    dataset = TopDownCocoDataset(mpii.ann, mpii.images, input_size=(64, 64), train=False, keypoint_set="mpii")
    stats = evaluate(GroundTruthModel(dataset, offset=(2.0, 1.0)), dataset, progress=False, out_dir=tmp_path / "e2")
    assert main(["score", str(tmp_path / "e2" / "keypoints_results.json"), "--ann", str(mpii.ann),
                 "--out", str(tmp_path / "s2")]) == 0
    assert json.loads((tmp_path / "s2" / "metrics.json").read_text()) == stats


def test_score_mpii(tmp_path, capsys):
    mpii = write_mpii(tmp_path / "mpii")
    image_ids = [11, 22, 22, 33]
    results = [{"image_id": i, "category_id": 1, "score": 1.0,
                "keypoints": [v for x, y in joints - 1.0 for v in (x, y, 0.9)]}  # the .mat's 1-based -> 0-based
               for i, joints in zip(image_ids, mpii.joints)]
    res = _write(tmp_path / "res.json", results)
    assert main(["score", res, "--ann", str(mpii.ann), "--out", str(tmp_path / "out")]) == 0
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert metrics["PCKh@0.5"] == 1.0 and metrics["PCKh@0.1"] == 1.0 and metrics["Head"] == 1.0
    assert "| Head | Shoulder |" in capsys.readouterr().out
    # The ground-truth file elsewhere, named explicitly.
    moved = tmp_path / "gt.mat"
    mpii.mat.rename(moved)
    assert main(["score", res, "--ann", str(mpii.ann), "--mpii-gt", str(moved)]) == 0
    capsys.readouterr()
    # One line for each kind of mistake, exit 2.
    for argv, message in (
            ([res, "--ann", str(mpii.ann)], "mpii_gt_val.mat"),
            ([res, "--ann", str(mpii.ann), "--mpii-gt", str(moved), "--oks-nms", "0.9"], "do not apply"),
            ([_write(tmp_path / "short.json", results[:3]), "--ann", str(mpii.ann), "--mpii-gt", str(moved)],
             "4 persons, 3 results")):
        assert main(["score", *argv]) == 2
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1 and err.startswith("srpose-fast score: error:")


def test_score_errors_are_one_line(tmp_path, capsys):
    gt, results = coco_fixture()
    ann = _write(tmp_path / "coco.json", gt)
    res = _write(tmp_path / "res.json", results)
    for argv, message in (([str(tmp_path / "nope.json"), "--ann", ann], "results file not found"),
                          ([_write(tmp_path / "obj.json", {"a": 1}), "--ann", ann], "expected a JSON list"),
                          ([res, "--ann", ann, "--oks-nms", "1.5"], "in [0, 1]"),
                          ([res, "--ann", ann, "--keypoint-set", "crowdpose"], "17 keypoints"),
                          ([res, "--ann", ann, "--dataset", "crowdpose"], "crowdIndex")):
        assert main(["score", *argv]) == 2
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1, err
