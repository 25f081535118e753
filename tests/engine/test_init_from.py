"""A training config's `init_from`: the run starts from a checkpoint of any layout (here SRPose's release
layout), with a fresh optimiser and schedule; `pretrained` is not loaded; a file that does not fit stops
the run before it starts."""
import pytest
import torch

from checkpoint_files import randomize, save_srpose_fork
from srpose_fast.data.synthetic import generate_synthetic_coco
from srpose_fast.engine.config import TrainConfig
from srpose_fast.engine.trainer import train
from srpose_fast.models import build_model
from srpose_fast.models.weights import CheckpointMismatchError

pytestmark = pytest.mark.usefixtures("single_thread")


@pytest.fixture
def config(tmp_path):
    data = tmp_path / "data"
    ann = generate_synthetic_coco(data, num_images=2, split="train", image_size=(96, 64), progress=False)
    # lr 0: Adam leaves every parameter where the run started, so what was loaded can be compared after it.
    return TrainConfig(model="srpose_demo", input_size=(64, 64), train_ann=str(ann),
                       train_images=str(data / "images" / "train"), batch_size=4, workers=0, epochs=1, lr=0.0,
                       warmup_iters=0, amp="none", device="cpu", output_dir=str(tmp_path / "run"), progress=False,
                       tensorboard=False, backend="torch", pretrained=str(tmp_path / "never_read.pth"))


def test_training_starts_from_a_released_checkpoint(config, tmp_path):
    source = randomize(build_model("srpose_demo", input_size=(64, 64)), seed=3)
    released = save_srpose_fork(tmp_path / "best.pth", source, form="best")
    trainer = train(config.replace(init_from=str(released)))
    assert (trainer.epoch, trainer.iteration) == (1, 1)  # a fresh run: counters from 0
    trained = dict(trainer.model.named_parameters())
    for name, value in source.named_parameters():
        assert torch.equal(trained[name], value), name


def test_init_from_that_does_not_fit_stops_before_training(config, tmp_path):
    released = save_srpose_fork(tmp_path / "res50.pth", build_model("srpose_res50"), form="best")
    with pytest.raises(CheckpointMismatchError, match=r"holds srpose_res50 \(coco, 17 keypoints\)"):
        train(config.replace(init_from=str(released)))
    assert not (tmp_path / "run" / "latest.pth").exists()
