"""Evaluation during training (val_interval): when it runs, what it logs, best.pth, and resuming."""
import csv

import pytest

from srpose_fast.engine.checkpoint import read_checkpoint
from srpose_fast.engine.trainer import Trainer
from srpose_fast.models import TopDownPoseModel
from trainer_fixtures import tiny_config, tiny_loader, tiny_model

pytestmark = pytest.mark.usefixtures("single_thread")


class ScriptedValidator:
    """Returns the next AP of a script; records the model it was given and the trainer's epoch then."""

    def __init__(self, aps):
        self.aps, self.models, self.epochs, self.trainer = list(aps), [], [], None

    def __call__(self, model):
        self.models.append(model)
        self.epochs.append(self.trainer.epoch)
        return {"AP": self.aps.pop(0), "AR": 0.5}


def _trainer(out, validator, **changes):
    config = tiny_config(out, **changes)
    trainer = Trainer(tiny_model(), config, tiny_loader(config), validator=validator)
    validator.trainer = trainer
    return trainer


def _val_rows(out):
    with open(out / "val.csv", newline="") as f:
        return list(csv.DictReader(f))


def test_every_val_interval_epochs_and_after_the_last_with_best_kept(tmp_path, capsys):
    validator = ScriptedValidator([0.30, 0.20, 0.25])
    trainer = _trainer(tmp_path, validator, epochs=5, val_interval=2, checkpoint_interval=2)
    history = trainer.fit()

    assert validator.epochs == [2, 4, 5]
    assert [row.get("val", {}).get("AP") for row in history] == [None, 0.30, None, 0.20, 0.25]
    assert all(isinstance(model, TopDownPoseModel) for model in validator.models)  # the plain model
    rows = _val_rows(tmp_path)
    assert [(r["epoch"], r["AP"], r["AR"]) for r in rows] == [("2", "0.3", "0.5"), ("4", "0.2", "0.5"),
                                                            ("5", "0.25", "0.5")]
    assert rows[0]["iter"] == "8"
    printed = capsys.readouterr().out.splitlines()
    assert printed[1].endswith("AP 0.3000 (best 0.3000, epoch 2)")
    assert printed[3].endswith("AP 0.2000 (best 0.3000, epoch 2)") and "AP" not in printed[2]
    # best.pth is the checkpoint of epoch 2, written as an atomic copy; the best is stored in every checkpoint.
    assert (tmp_path / "best.pth").read_bytes() == (tmp_path / "epoch_002.pth").read_bytes()
    assert read_checkpoint(tmp_path / "latest.pth")["extra"]["best"] == {"metric": "AP", "value": 0.3, "epoch": 2}
    assert not list(tmp_path.glob(".*.tmp"))


def test_resume_keeps_the_best_so_far(tmp_path, capsys):
    first = _trainer(tmp_path, ScriptedValidator([0.30]), epochs=6, val_interval=2, checkpoint_interval=1)
    first.fit(3)
    best_before = (tmp_path / "best.pth").read_bytes()

    resumed = _trainer(tmp_path, ScriptedValidator([0.10, 0.50]), epochs=6, val_interval=2,
                       checkpoint_interval=1)
    resumed.resume(tmp_path / "latest.pth")
    assert resumed.best == {"metric": "AP", "value": 0.3, "epoch": 2}
    resumed.fit(4)  # AP 0.1 at epoch 4: not better, best.pth stays the epoch-2 file
    assert (tmp_path / "best.pth").read_bytes() == best_before
    resumed.fit(6)  # AP 0.5 at epoch 6: the new best
    assert (tmp_path / "best.pth").read_bytes() == (tmp_path / "epoch_006.pth").read_bytes()
    assert read_checkpoint(tmp_path / "best.pth")["extra"]["best"] == {"metric": "AP", "value": 0.5, "epoch": 6}
    assert [r["epoch"] for r in _val_rows(tmp_path)] == ["2", "4", "6"]  # the resumed run appends


def test_no_validation_without_an_interval(tmp_path):
    validator = ScriptedValidator([])
    trainer = _trainer(tmp_path, validator, epochs=2)  # val_interval 0 (TrainConfig's default)
    trainer.fit()
    assert not validator.models and not (tmp_path / "val.csv").exists() and not (tmp_path / "best.pth").exists()


def test_train_evaluates_with_the_config_protocol(tmp_path):
    """End to end: train() builds the validator from the config (its val set, ground-truth boxes here) and
    keeps best.pth; a missing validation file stops the run before the first epoch."""
    from srpose_fast.data.synthetic import generate_synthetic_coco
    from srpose_fast.engine.config import TrainConfig
    from srpose_fast.engine.trainer import train

    data = tmp_path / "data"
    train_ann = generate_synthetic_coco(data, num_images=3, split="train", image_size=(96, 64), progress=False)
    val_ann = generate_synthetic_coco(data, num_images=2, split="val", image_size=(96, 64), progress=False)
    config = TrainConfig(model="srpose_demo", input_size=(64, 64), train_ann=str(train_ann),
                         train_images=str(data / "images" / "train"), val_ann=str(val_ann),
                         val_images=str(data / "images" / "val"), batch_size=4, workers=0, epochs=1, warmup_iters=2,
                         amp="none", device="cpu", output_dir=str(tmp_path / "run"), progress=False,
                         tensorboard=False, backend="torch", val_interval=1)
    trainer = train(config)
    stats = trainer.history[0]["val"]
    assert 0 <= stats["AP"] <= 1 and trainer.best == {"metric": "AP", "value": stats["AP"], "epoch": 1}
    assert (tmp_path / "run" / "best.pth").exists() and _val_rows(tmp_path / "run")[0]["epoch"] == "1"

    missing = config.replace(val_ann=str(tmp_path / "nothing.json"), output_dir=str(tmp_path / "run2"))
    with pytest.raises(FileNotFoundError, match="nothing.json"):
        train(missing)
    assert not (tmp_path / "run2" / "latest.pth").exists()
