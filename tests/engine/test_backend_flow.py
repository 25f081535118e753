"""One backend setting, from the training config or the CLI, reaches every fused op: the SR head and the loss in
training, the decode in evaluation (`backend_probe` records what each op is asked for)."""
import dataclasses

import pytest
import torch

from backend_probe import record_backends
from srpose_fast.cli import build_parser
from srpose_fast.cli.common import load_model
from srpose_fast.data import TopDownCocoDataset, generate_synthetic_coco
from srpose_fast.engine.config import TrainConfig, config_from_dict
from srpose_fast.engine.evaluator import predict_dataset
from srpose_fast.engine.trainer import Trainer
from srpose_fast.models import build_model
from trainer_fixtures import tiny_config

pytestmark = pytest.mark.usefixtures("single_thread")


def test_the_configs_backend_reaches_the_sr_head_and_the_loss(monkeypatch, tmp_path):
    calls = record_backends(monkeypatch)
    model = build_model("srpose_demo", input_size=(64, 64))  # built with "auto": the config wins
    config = tiny_config(tmp_path, backend="cuda", target_method="udp")
    trainer = Trainer(model, config, train_loader=[])
    assert trainer.model.backend == "cuda" and trainer.model.codec.target_method == "udp"
    batch = {"image": torch.randn(2, 3, 64, 64), "keypoints": torch.rand(2, 17, 2) * 60,
             "target_weight": torch.ones(2, 17)}
    assert torch.isfinite(trainer.train_step(batch))
    assert calls == [("sr_head", "cuda")] * 4 + [("multi_stage_loss", "cuda")]


def test_the_clis_backend_reaches_the_decode(monkeypatch, tmp_path):
    ann = generate_synthetic_coco(tmp_path, num_images=1, split="val", seed=3, image_size=(96, 64), progress=False)
    args = build_parser().parse_args(["eval", "srpose_demo", "--backend", "triton", "--device", "cpu"])
    model, _ = load_model(args)
    assert model.backend == "triton"
    calls = record_backends(monkeypatch)
    dataset = TopDownCocoDataset(ann, tmp_path / "images" / "val", input_size=model.input_size, train=False)
    predict_dataset(model, dataset, batch_size=4, progress=False)  # evaluate()'s backend=None: the model's
    assert calls and set(calls) == {("sr_head_decode", "triton")}


def test_a_bad_cli_backend_is_one_line_and_exit_2(capsys):
    from srpose_fast.cli import main

    assert main(["predict", "srpose_demo", "image.jpg", "--boxes", "[[0, 0, 10, 10]]", "--backend", "opencl"]) == 2
    assert "backend must be one of" in capsys.readouterr().err


def test_loss_backend_is_a_deprecated_name_of_backend():
    with pytest.warns(DeprecationWarning, match="loss_backend is deprecated"):
        config = config_from_dict({"loss_backend": "torch"})
    assert config.backend == "torch" and "loss_backend" not in config.to_dict()
    assert dataclasses.replace(config, lr=1e-3).backend == "torch"
    with pytest.warns(DeprecationWarning), pytest.raises(ValueError, match="disagree"):
        TrainConfig(backend="triton", loss_backend="torch")
    with pytest.raises(ValueError, match="backend must be one of"):
        TrainConfig(backend="opencl")
