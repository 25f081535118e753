"""The main job end to end at a tiny size, and the CLI's subcommands that wrap the engine."""
import json
import re

import pytest
import torch

from srpose_fast.cli import main
from srpose_fast.data.synthetic import generate_synthetic_coco
from srpose_fast.engine.demo import run_demo
from srpose_fast.engine.predict import predict_image
from srpose_fast.models import build_model

COCO_STATS = ("AP", "AP50", "AP75", "APm", "APl", "AR", "AR50", "AR75", "ARm", "ARl")


def test_demo_runs_end_to_end_and_writes_metrics_and_plots(tmp_path):
    metrics = run_demo(tmp_path, size="tiny", progress=False)
    written = json.loads((tmp_path / "metrics.json").read_text())
    assert set(COCO_STATS) <= set(written) and written["wall_time_s"] > 0
    assert all(written[k] == metrics[k] for k in COCO_STATS)
    for plot in ("loss_curve.png", "keypoint_overlays.png", "heatmaps.png"):
        assert (tmp_path / plot).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (tmp_path / "train" / "latest.pth").is_file()
    assert json.loads((tmp_path / "keypoints_results.json").read_text())


def test_predict_writes_keypoints_json_and_overlay(tmp_path):
    ann = generate_synthetic_coco(tmp_path / "data", num_images=1, split="val", seed=3, progress=False)
    image = next((tmp_path / "data" / "images" / "val").iterdir())
    model = build_model("srpose_demo").eval()
    with pytest.warns(DeprecationWarning, match="predict_poses"):
        results = predict_image(model, image, [[10, 20, 80, 150], [0, 0, 191, 255]], out_dir=tmp_path / "out")
    assert len(results) == 2 and len(results[0]["keypoints"]) == 17
    saved = json.loads((tmp_path / "out" / f"{image.stem}_keypoints.json").read_text())
    assert saved == results
    assert (tmp_path / "out" / f"{image.stem}_overlay.png").is_file()
    assert ann.is_file()


def test_boxes_outside_the_image_are_refused(tmp_path):
    generate_synthetic_coco(tmp_path / "data", num_images=1, split="val", seed=3, progress=False)
    image = next((tmp_path / "data" / "images" / "val").iterdir())
    model = build_model("srpose_demo").eval()
    for boxes in ([[500, 500, 10, 10]], []):
        with pytest.warns(DeprecationWarning), pytest.raises(ValueError, match="boxes inside the 192x256 image"):
            predict_image(model, image, boxes)


def test_cli_models_lists_the_zoo(capsys):
    assert main(["models"]) == 0
    assert "srpose_hrnet_w32" in capsys.readouterr().out


def test_cli_eval_with_a_checkpoint(tmp_path, capsys):
    from srpose_fast.engine.checkpoint import save_checkpoint

    generate_synthetic_coco(tmp_path / "data", num_images=2, split="val", seed=1, progress=False)
    torch.manual_seed(0)
    save_checkpoint(tmp_path / "w.pth", build_model("srpose_demo"), model_name="srpose_demo")
    code = main(["eval", "srpose_demo", "--checkpoint", str(tmp_path / "w.pth"),
                 "--ann", str(tmp_path / "data" / "annotations" / "person_keypoints_val.json"),
                 "--images", str(tmp_path / "data" / "images" / "val"), "--out", str(tmp_path / "eval")])
    assert code == 0
    assert "AP50" in capsys.readouterr().out
    assert set(COCO_STATS) <= set(json.loads((tmp_path / "eval" / "metrics.json").read_text()))


def test_cli_bench_names_every_suite_and_refuses_unknown_ones(capsys):
    from srpose_fast.benchmarking.suites import SUITES
    from srpose_fast.cli import build_parser

    bench_help = build_parser()._subparsers._group_actions[0].choices["bench"].format_help()
    assert all(re.search(rf"\b{name}\b", bench_help) for name in SUITES)
    assert main(["bench", "--suite", "decode", "--suite", "nope"]) == 2
    assert "unknown benchmark suite 'nope'" in capsys.readouterr().err
    assert main(["bench", "--suite", "decode:srpose_res50"]) == 2
    assert "takes no model names" in capsys.readouterr().err
