"""`srpose-fast train` on a bottom-up model: the trainer builds the bottom-up data set, calls the head's loss,
evaluates whole images every val_interval epochs (COCO AP without boxes) and resumes exactly."""
from __future__ import annotations

import csv
import json

import pytest
import torch

from srpose_fast.cli import main
from srpose_fast.data.bottomup import BottomUpCocoDataset
from srpose_fast.data.synthetic_multi import generate_synthetic_bottomup
from srpose_fast.engine.checkpoint import load_checkpoint
from srpose_fast.engine.config import TrainConfig
from srpose_fast.engine.trainer import build_train_dataset, train
from srpose_fast.models import build_model

pytestmark = pytest.mark.usefixtures("single_thread")


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    root = tmp_path_factory.mktemp("bottomup")
    generate_synthetic_bottomup(root, num_images=4, split="train", image_size=(64, 80), progress=False)
    generate_synthetic_bottomup(root, num_images=2, split="val", image_size=(64, 80), progress=False)
    return root


def config_of(root, out, **changes) -> TrainConfig:
    settings = dict(model="bottomup_demo", input_size=(64, 64),
                    train_ann=str(root / "annotations" / "person_keypoints_train.json"),
                    train_images=str(root / "images" / "train"),
                    val_ann=str(root / "annotations" / "person_keypoints_val.json"),
                    val_images=str(root / "images" / "val"), batch_size=2, workers=0, epochs=2, warmup_iters=2,
                    lr_steps=(1,), lr=1e-3, val_interval=0, device="cpu", progress=False, tensorboard=False,
                    log_interval=1, output_dir=str(out))
    return TrainConfig(**{**settings, **changes})


def test_the_trainer_builds_the_bottomup_set(synthetic, tmp_path):
    model = build_model("bottomup_demo", input_size=64)
    dataset = build_train_dataset(config_of(synthetic, tmp_path), model)
    assert isinstance(dataset, BottomUpCocoDataset) and dataset.train and dataset.heatmap_size == 64
    with pytest.raises(ValueError, match="target_method"):
        model.update_codec(target_method="udp")


def test_cli_train_evaluates_and_keeps_the_best(synthetic, tmp_path):
    path = tmp_path / "bottomup.json"
    config = config_of(synthetic, tmp_path / "run", val_interval=1)
    path.write_text(json.dumps(config.to_dict()))
    assert main(["train", str(path)]) == 0
    with open(tmp_path / "run" / "val.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["epoch"]) for r in rows] == [1, 2] and all(-1 <= float(r["AP"]) <= 1 for r in rows)
    assert (tmp_path / "run" / "best.pth").is_file()
    with open(tmp_path / "run" / "log.csv", newline="") as f:
        losses = [float(r["loss"]) for r in csv.DictReader(f)]
    assert len(losses) == 4 and all(0 < loss < 1 for loss in losses)


def test_resume_is_exact(synthetic, tmp_path):
    straight = train(config_of(synthetic, tmp_path / "straight"))
    train(config_of(synthetic, tmp_path / "resumed", epochs=1))
    resumed = train(config_of(synthetic, tmp_path / "resumed"), resume=True)
    assert [row["loss"] for row in resumed.history] == [straight.history[-1]["loss"]]
    for (name, a), b in zip(straight.model.state_dict().items(), resumed.model.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=0, atol=0, msg=name)
    checkpoint = load_checkpoint(tmp_path / "resumed" / "latest.pth", build_model("bottomup_demo", input_size=64))
    assert checkpoint["model_name"] == "bottomup_demo" and checkpoint["epoch"] == 2
