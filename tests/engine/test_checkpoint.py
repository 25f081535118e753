import os
import random
import re

import numpy as np
import pytest
import torch

import srpose_fast.engine.checkpoint as checkpoint_module
from srpose_fast.engine.checkpoint import (CheckpointError, CheckpointMismatchError, capture_rng_state,
                                           load_checkpoint, read_checkpoint, restore_rng_state, save_checkpoint)
from srpose_fast.engine.trainer import Trainer
from trainer_fixtures import tiny_config, tiny_loader, tiny_model

pytestmark = pytest.mark.usefixtures("single_thread")


def _draws():
    return random.random(), float(np.random.rand()), float(np.random.randn()), torch.rand(3)


def _assert_same_draws(a, b):
    assert a[:3] == b[:3] and torch.equal(a[3], b[3])


def _trainer(tmp_path, **changes):
    config = tiny_config(tmp_path, **changes)
    return Trainer(tiny_model(), config, tiny_loader(config))


def _assert_same_state(a, b):
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


def _assert_same_optimizer(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    assert sa["param_groups"] == sb["param_groups"]
    assert sa["state"].keys() == sb["state"].keys()
    for i in sa["state"]:
        for key in sa["state"][i]:
            assert torch.equal(torch.as_tensor(sa["state"][i][key]), torch.as_tensor(sb["state"][i][key])), (i, key)


def test_rng_state_round_trip():
    random.seed(1), np.random.seed(2), torch.manual_seed(3)
    np.random.randn()  # leaves a cached Gaussian in NumPy's legacy state
    state = capture_rng_state()
    first = _draws()
    restore_rng_state(state)
    _assert_same_draws(first, _draws())


def test_round_trip_restores_every_state(tmp_path):
    trainer = _trainer(tmp_path, epochs=1)
    trainer.fit()
    np.random.randn()  # a cached Gaussian must survive too
    path = trainer.save_checkpoint()  # latest.pth, epoch 1, with this process's current generators
    after = _draws()
    assert path == tmp_path / "epoch_001.pth" and (tmp_path / "latest.pth").read_bytes() == path.read_bytes()
    assert not list(tmp_path.glob(".*.tmp")), "temporary files left behind"

    raw = torch.load(path, weights_only=True)  # loadable without unpickling any class
    assert raw["model_name"] == "tiny" and raw["epoch"] == 1 and raw["iteration"] == 4
    assert raw["config"]["lr"] == 5e-3 and raw["scheduler"]["last_iteration"] == 3
    assert set(raw["rng"][0]) == {"python", "numpy", "torch", "cuda"}

    fresh = _trainer(tmp_path / "other", epochs=1)
    fresh.model.load_state_dict(tiny_model(seed=1).state_dict())
    random.seed(99), np.random.seed(99), torch.manual_seed(99)
    checkpoint = fresh.resume(path)
    _assert_same_draws(after, _draws())
    assert (fresh.epoch, fresh.iteration) == (1, 4) and checkpoint["model_name"] == "tiny"
    _assert_same_state(trainer.model.state_dict(), fresh.model.state_dict())
    _assert_same_optimizer(trainer.optimizer, fresh.optimizer)
    assert fresh.scheduler.state_dict() == trainer.scheduler.state_dict()
    assert fresh.optimizer.param_groups[0]["lr"] == trainer.optimizer.param_groups[0]["lr"]


def test_fp16_scaler_state_is_saved(tmp_path):
    model = tiny_model()
    scaler = torch.amp.GradScaler("cpu", init_scale=1024.0)
    path = save_checkpoint(tmp_path / "c.pth", model, scaler=scaler, epoch=3, iteration=7, model_name="tiny")
    other = torch.amp.GradScaler("cpu", init_scale=1.0)
    load_checkpoint(path, tiny_model(), scaler=other, model_name="tiny")
    assert other.state_dict()["scale"] == 1024.0


def _train(tmp_path, epochs, resume=None, restore_rng=True):
    random.seed(5), np.random.seed(5), torch.manual_seed(5)
    trainer = _trainer(tmp_path, epochs=4)
    if resume is not None:
        if restore_rng:
            trainer.resume(resume)
        else:  # everything but the generators: the control that shows the test can fail
            checkpoint = load_checkpoint(resume, trainer.model, optimizer=trainer.optimizer,
                                         scheduler=trainer.scheduler, model_name="tiny")
            trainer.epoch, trainer.iteration = checkpoint["epoch"], checkpoint["iteration"]
    trainer.fit(epochs)
    return trainer


def test_resume_is_exact(tmp_path):
    straight = _train(tmp_path / "straight", 4)
    first = _train(tmp_path / "split", 2)
    half = {k: v.clone() for k, v in first.model.state_dict().items()}
    resumed = _train(tmp_path / "split", 4, resume=tmp_path / "split" / "latest.pth")
    assert (resumed.epoch, resumed.iteration) == (4, 16)
    _assert_same_state(straight.model.state_dict(), resumed.model.state_dict())
    _assert_same_optimizer(straight.optimizer, resumed.optimizer)
    assert any(not torch.equal(half[k], v) for k, v in resumed.model.state_dict().items())
    # The resumed run appended its rows to the same CSV: 2 rows per epoch, epochs 1..4.
    epochs = [line.split(",")[0] for line in (tmp_path / "split" / "log.csv").read_text().splitlines()[1:]]
    assert epochs == ["1", "1", "2", "2", "3", "3", "4", "4"]

    # Without the generators (the data noise comes from torch's global one) the weights differ.
    control = _train(tmp_path / "control", 4, resume=tmp_path / "split" / "epoch_002.pth", restore_rng=False)
    assert any(not torch.equal(a, b) for a, b in zip(straight.model.state_dict().values(),
                                                     control.model.state_dict().values()))


def test_wrong_architecture_is_refused(tmp_path):
    path = save_checkpoint(tmp_path / "wide.pth", tiny_model(width=16), model_name="tiny_wide")
    with pytest.raises(CheckpointMismatchError) as err:
        load_checkpoint(path, tiny_model(width=8), model_name="tiny")
    message = str(err.value)
    assert message.startswith(f"checkpoint {path} holds tiny_wide (coco, 17 keypoints), but the model being "
                              f"loaded is tiny (coco, 17 keypoints)")
    assert "other shapes, file vs model (11): backbone.body.0.weight (16, 3, 3, 3) vs (8, 3, 3, 3)" in message
    assert len(err.value.shape_mismatches) == 11 and not err.value.missing and not err.value.unexpected

    from srpose_fast.models import build_model

    demo = save_checkpoint(tmp_path / "demo.pth", build_model("srpose_demo"), model_name="srpose_demo")
    with pytest.raises(CheckpointMismatchError, match=r"(?s)holds srpose_demo .*is tiny .*missing from the file "
                                                      r"\(12\).*unexpected in the file \(465\).*build srpose_demo to load this file"):
        load_checkpoint(demo, tiny_model(), model_name="tiny")
    # Same weights, other name: refused as well (the name is what says what the weights mean).
    with pytest.raises(CheckpointMismatchError, match="the weights fit, but the file was saved for a"):
        load_checkpoint(save_checkpoint(tmp_path / "a.pth", tiny_model(), model_name="a"), tiny_model(),
                        model_name="b")


def test_other_keypoint_set_says_what_differs(tmp_path):
    """Issue 15: a CrowdPose checkpoint of a model loaded into the COCO build of the same model names
    the keypoint sets (it said "holds model 'srpose_demo', but the model being loaded is 'srpose_demo'")."""
    from srpose_fast.models import build_model

    path = save_checkpoint(tmp_path / "crowd.pth", build_model("srpose_demo", keypoint_set="crowdpose"),
                           model_name="srpose_demo")
    with pytest.raises(CheckpointMismatchError) as err:
        load_checkpoint(path, build_model("srpose_demo"), model_name="srpose_demo")
    first, *rest = str(err.value).splitlines()
    assert first == (f"checkpoint {path} holds srpose_demo (crowdpose, 14 keypoints), but the model being loaded "
                     f"is srpose_demo (coco, 17 keypoints)")
    assert re.search(r"head\.lr_head\.0\.weight \(14, (\d+), 1, 1\) vs \(17, \1, 1, 1\)", str(err.value))
    assert rest[-1].strip().startswith("build the model for the file's keypoints (crowdpose, 14 keypoints)")


@pytest.mark.parametrize("damage", ["truncate", "garbage", "empty", "not_a_checkpoint"])
def test_unreadable_file_is_named(tmp_path, damage):
    path = save_checkpoint(tmp_path / "c.pth", tiny_model(), model_name="tiny")
    data = path.read_bytes()
    if damage == "truncate":
        path.write_bytes(data[: len(data) // 2])
    elif damage == "garbage":
        path.write_bytes(bytes(range(256)) * 8)
    elif damage == "empty":
        path.write_bytes(b"")
    else:
        torch.save({"weights": torch.zeros(1)}, path)
    with pytest.raises(CheckpointError, match=str(path)):
        load_checkpoint(path, tiny_model(), model_name="tiny")
    with pytest.raises(FileNotFoundError, match="nothing.pth"):
        read_checkpoint(tmp_path / "nothing.pth")


class _Interrupt:
    def __init__(self, at_iteration):
        self.at_iteration = at_iteration

    def __call__(self, trainer):
        if trainer.iteration == self.at_iteration:
            raise KeyboardInterrupt


def test_interrupt_mid_epoch_keeps_the_last_checkpoint(tmp_path):
    config = tiny_config(tmp_path, epochs=4)
    trainer = Trainer(tiny_model(), config, tiny_loader(config), callbacks=[_Interrupt(6)])  # in epoch 2
    with pytest.raises(KeyboardInterrupt):
        trainer.fit()
    assert trainer.iteration == 6
    assert sorted(p.name for p in tmp_path.iterdir() if p.suffix == ".pth") == ["latest.pth"]
    assert not list(tmp_path.glob(".*.tmp"))
    resumed = _trainer(tmp_path)
    resumed.resume(tmp_path / "latest.pth")
    assert (resumed.epoch, resumed.iteration) == (1, 4)
    resumed.fit()  # and training goes on from there
    assert resumed.epoch == 4


def test_interrupt_while_writing_keeps_the_old_file(tmp_path, monkeypatch):
    trainer = _trainer(tmp_path, epochs=1)
    trainer.fit()
    before = (tmp_path / "latest.pth").read_bytes()

    def torn_save(obj, f):  # writes part of the file, then Ctrl-C
        f.write(b"PK\x03\x04 half a checkpoint")
        raise KeyboardInterrupt

    monkeypatch.setattr(checkpoint_module.torch, "save", torn_save)
    trainer.epoch = 2
    with pytest.raises(KeyboardInterrupt):
        trainer.save_checkpoint()
    monkeypatch.undo()
    assert (tmp_path / "latest.pth").read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir() if p.suffix in (".pth", ".tmp")) == ["epoch_001.pth", "latest.pth"]
    assert not list(tmp_path.glob(".*"))
    assert load_checkpoint(tmp_path / "latest.pth", tiny_model(), model_name="tiny")["epoch"] == 1


@pytest.mark.skipif(os.name != "posix", reason="POSIX permissions")
def test_atomic_write_gives_the_permissions_of_a_plain_write(tmp_path):
    from srpose_fast.engine.checkpoint import atomic_write

    atomic_write(tmp_path / "atomic.json", lambda f: f.write(b"{}"))
    (tmp_path / "plain.json").write_bytes(b"{}")
    assert (tmp_path / "atomic.json").stat().st_mode == (tmp_path / "plain.json").stat().st_mode
