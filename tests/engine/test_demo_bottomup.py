"""`srpose-fast demo --bottom-up`, the CI-sized run: synthetic multi-person data, training, whole-image
evaluation, metrics and plots."""
from __future__ import annotations

import json

import pytest

from srpose_fast.cli import main

pytestmark = pytest.mark.usefixtures("single_thread")


def test_bottomup_demo_runs_end_to_end(tmp_path, capsys):
    assert main(["demo", "--bottom-up", "--size", "tiny", "--out", str(tmp_path)]) == 0
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert {"AP", "AP50", "AR", "wall_time_s"} <= set(metrics) and -1 <= metrics["AP"] <= 1
    assert metrics["size"] == "tiny" and metrics["train_images"] == 8
    for name in ("loss_curve.png", "heatmaps.png", "keypoints_results.json", "train/latest.pth",
                 "data/annotations/person_keypoints_val.json"):
        assert (tmp_path / name).is_file(), name
    # One epoch on 8 images finds nobody or a few people: the overlays exactly when it found someone.
    found = json.loads((tmp_path / "keypoints_results.json").read_text())
    assert (tmp_path / "keypoint_overlays.png").is_file() == bool(found)
    assert "bottomup_demo on synthetic multi-person COCO (tiny)" in capsys.readouterr().out
