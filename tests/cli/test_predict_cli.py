"""`srpose-fast predict` as users run it: a folder with a COCO detection file, one image with boxes in either
format or none, a video written here with OpenCV; results.json (COCO results), images.json, overlays, the
annotated video; warnings and mistakes as one line each."""
import json

import cv2
import numpy as np
import pytest
import torch

from srpose_fast.cli import main
from srpose_fast.data.synthetic import generate_synthetic_coco
from srpose_fast.engine.checkpoint import save_checkpoint
from srpose_fast.models import build_model

pytestmark = pytest.mark.usefixtures("single_thread")


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    """Three 192x256 photos named by COCO id (000000000001.jpg ...) and a demo checkpoint."""
    root = tmp_path_factory.mktemp("predict")
    generate_synthetic_coco(root / "data", num_images=3, split="val", seed=3, progress=False)
    torch.manual_seed(0)
    save_checkpoint(root / "demo.pth", build_model("srpose_demo"), model_name="srpose_demo")
    return root / "data" / "images" / "val", root / "data" / "annotations" / "person_keypoints_val.json", \
        root / "demo.pth"


def stderr_lines(capsys):
    """stderr's lines without the progress bar's ("predict: ..." between carriage returns)."""
    return [line for line in capsys.readouterr().err.splitlines() if line and not line.startswith("predict:")]


def test_a_folder_with_a_coco_detection_file(photos, tmp_path, capsys):
    folder, _, checkpoint = photos
    detections = [{"image_id": 1, "category_id": 1, "bbox": [10, 20, 100, 200], "score": 0.9},
                  {"image_id": 1, "category_id": 1, "bbox": [50, 20, 30, 60], "score": 0.1},  # under --det-thr
                  {"image_id": 1, "category_id": 18, "bbox": [0, 0, 40, 40], "score": 0.99},  # not a person
                  {"image_id": 3, "category_id": 1, "bbox": [0, 0, 50, 80], "score": 0.5},
                  {"image_id": 3, "category_id": 1, "bbox": [0, 0, 50, 80], "score": 0.4},
                  {"image_id": 99, "category_id": 1, "bbox": [0, 0, 50, 80], "score": 0.5}]  # another image
    det_file = tmp_path / "person_detection_results.json"
    det_file.write_text(json.dumps(detections))
    out = tmp_path / "out"
    assert main(["predict", "srpose_demo", str(folder), "--checkpoint", str(checkpoint), "--boxes", str(det_file),
                 "--det-thr", "0.3", "--out", str(out), "--no-flip"]) == 0
    results = json.loads((out / "results.json").read_text())
    assert [(r["image_id"], r["bbox"]) for r in results] == [(1, [10, 20, 100, 200]), (3, [0, 0, 50, 80]),
                                                             (3, [0, 0, 50, 80])]
    assert all(r["category_id"] == 1 and len(r["keypoints"]) == 51 and 0 <= r["score"] <= 1 for r in results)
    images = json.loads((out / "images.json").read_text())
    assert [(i["id"], i["file_name"], i["width"], i["height"]) for i in images] == [
        (n, f"{n:012d}.jpg", 192, 256) for n in (1, 2, 3)]
    assert sorted(p.name for p in (out / "overlays").iterdir()) == [i["file_name"] for i in images]
    # Random weights: every score under 0.3, so the overlays draw no keypoint; one warning says so.
    (warning,) = stderr_lines(capsys)[:-1]
    assert warning.startswith("srpose-fast predict: warning: 2 of 3 overlays draw no keypoint")
    assert "--kpt-thr 0.3" in warning


def test_one_image_without_boxes_is_the_whole_image(photos, tmp_path, capsys):
    folder, ann, checkpoint = photos
    image = folder / "000000000002.jpg"
    assert main(["predict", "srpose_demo", str(image), "--checkpoint", str(checkpoint), "--out", str(tmp_path / "a"),
                 "--kpt-thr", "0"]) == 0
    (person,) = json.loads(capsys.readouterr().out)
    assert person["box"] == [0, 0, 192, 256] and len(person["keypoints"]) == 17
    (result,) = json.loads((tmp_path / "a" / "results.json").read_text())
    assert result["image_id"] == 1 and result["keypoints"] == sum(person["keypoints"], [])

    # --ann gives the image its id in a COCO file (the synthetic set's: 2), so `srpose-fast score` can read results.json
    assert main(["predict", "srpose_demo", str(image), "--checkpoint", str(checkpoint), "--ann", str(ann),
                 "--out", str(tmp_path / "b"), "--no-overlays"]) == 0
    assert json.loads(capsys.readouterr().out) == [person]
    assert json.loads((tmp_path / "b" / "results.json").read_text())[0]["image_id"] == 2

    for boxes, fmt in (("[[0, 0, 192, 256]]", "xywh"), ("[[0, 0, 192, 256]]", "xyxy")):
        assert main(["predict", "srpose_demo", str(image), "--checkpoint", str(checkpoint), "--boxes", boxes,
                     "--bbox-format", fmt, "--out", str(tmp_path / fmt), "--no-overlays"]) == 0
        assert json.loads(capsys.readouterr().out) == [person]
    assert not (tmp_path / "xywh" / "overlays").exists()


def test_a_video_gives_an_annotated_video_and_one_result_per_frame(photos, tmp_path, capsys):
    folder, _, checkpoint = photos
    frames = [cv2.imread(str(p)) for p in sorted(folder.iterdir())] * 2
    video = tmp_path / "walk.mp4"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"mp4v"), 8.0, (192, 256))
    for frame in frames:
        writer.write(frame)
    writer.release()
    out = tmp_path / "out"
    assert main(["predict", "srpose_demo", str(video), "--checkpoint", str(checkpoint), "--boxes",
                 "[[10, 20, 150, 220, 0.9]]", "--heatmap", "--kpt-thr", "0", "--radius", "2", "--no-skeleton",
                 "--batch-size", "4", "--out", str(out)]) == 0
    results = json.loads((out / "results.json").read_text())
    assert [r["image_id"] for r in results] == [1, 2, 3, 4, 5, 6]
    assert [i["frame"] for i in json.loads((out / "images.json").read_text())] == [0, 1, 2, 3, 4, 5]
    annotated = cv2.VideoCapture(str(out / "walk_pose.mp4"))
    assert annotated.get(cv2.CAP_PROP_FRAME_COUNT) == 6 and annotated.get(cv2.CAP_PROP_FPS) == 8.0
    ok, first = annotated.read()
    assert ok and first.shape == (256, 192, 3)
    assert np.abs(first.astype(int) - frames[0]).mean() > 3  # heatmap, box and keypoints painted
    assert not list(out.glob(".*"))  # no temporary file left
    assert "overlays draw no keypoint" not in capsys.readouterr().err


def test_random_weights_are_a_warning(photos, tmp_path, capsys):
    folder, _, _ = photos
    assert main(["predict", "srpose_demo", str(folder / "000000000001.jpg"), "--out", str(tmp_path),
                 "--no-overlays"]) == 0
    lines = stderr_lines(capsys)
    assert lines[0] == ("srpose-fast predict: warning: no --checkpoint: srpose_demo runs on random weights; its "
                        "keypoints and scores mean nothing (and change from run to run)")


@pytest.mark.parametrize("extra, message", [
    (["--boxes", "[[1, 2, 3]]"], "--boxes: each box needs 4 numbers"),
    (["--boxes", "[[1, 2"], "--boxes is not valid JSON"),
    (["--boxes", "boxes.json"], "--boxes: boxes.json is neither a JSON list of boxes nor an existing file"),
    (["--boxes", "[[10, 20, 5, 5]]", "--bbox-format", "xyxy"], "has no area (is it xywh? see --bbox-format)"),
    (["--batch-size", "0"], "--batch-size must be at least 1, got 0"),
    (["--kpt-thr", "2"], "--kpt-thr must lie in [0, 1], got 2.0"),
    (["--backend", "opencl"], "--backend must be one of"),
    (["--checkpoint", "missing.pth"], "missing.pth"),
    (["--ann", "{annotations}", "--boxes", "{detections}"], "image 000000000002.jpg is not among the images of"),
])
def test_mistakes_are_one_line(photos, tmp_path, capsys, extra, message):
    folder, ann, _ = photos
    monkey = {"annotations": tmp_path / "one_image.json", "detections": tmp_path / "dets.json"}
    monkey["annotations"].write_text(json.dumps({"images": [{"id": 1, "file_name": "000000000001.jpg"}]}))
    monkey["detections"].write_text(json.dumps([{"image_id": 1, "bbox": [1, 2, 3, 4], "score": 1}]))
    args = [a.format(**monkey) for a in extra]
    assert main(["predict", "srpose_demo", str(folder), "--out", str(tmp_path / "out"), *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith("srpose-fast predict: error:") and err.count("\n") == 1 and message in err, err


def test_images_without_coco_ids_need_ann_for_a_detection_file(tmp_path, capsys):
    cv2.imwrite(str(tmp_path / "holiday.jpg"), np.zeros((32, 32, 3), np.uint8))
    dets = tmp_path / "dets.json"
    dets.write_text(json.dumps([{"image_id": 1, "category_id": 1, "bbox": [1, 2, 3, 4], "score": 1}]))
    assert main(["predict", "srpose_demo", str(tmp_path / "holiday.jpg"), "--boxes", str(dets)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "image holiday.jpg has no COCO image id in its name" in err and "--ann" in err
