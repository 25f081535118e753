import csv
import json
import warnings
from pathlib import Path

import pytest
import torch

from srpose_fast.engine.config import TrainConfig, config_from_dict, load_config
from srpose_fast.engine.logging import CSV_COLUMNS
from srpose_fast.engine.schedule import WarmupStepLR, lr_factor
from srpose_fast.engine.trainer import Trainer, build_optimizer, resolve_amp
from srpose_fast.models import MODEL_SPECS
from srpose_fast.models.backbones import BACKBONES, build_backbone
from trainer_fixtures import tiny_config, tiny_loader, tiny_model

pytestmark = pytest.mark.usefixtures("single_thread")

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
ZOO_CONFIGS = ("srpose_hrnet_w32", "srpose_res50", "sr_hrnet_w32", "simple_hrnet_w32", "simple_res50", "srpose_demo")
HRFORMER_CONFIGS = ("srpose_hrformer_s", "sr_hrformer_s", "simple_hrformer_s")


# ------------------------------------------------------------------------------------ schedule


def _schedule(base_lr=5e-4):
    optimizer = torch.optim.Adam([torch.nn.Parameter(torch.zeros(1))], lr=base_lr)
    return optimizer, WarmupStepLR(optimizer, warmup_iters=500, warmup_ratio=0.001, milestones=(170, 200), gamma=0.1)


@pytest.mark.parametrize("iteration, epoch, expected", [
    (0, 0, 5e-4 * 0.001),  # warm-up starts at warmup_ratio * lr
    (250, 0, 5e-4 * (1 - 0.5 * 0.999)),  # mmcv linear warm-up: 0.5005 * lr half way
    (499, 0, 5e-4 * (1 - 0.999 / 500)),
    (500, 0, 5e-4),  # warm-up over
    (100_000, 169, 5e-4),
    (100_000, 170, 5e-5),  # first step (epochs are 0-based, as mmcv's runner.epoch)
    (100_000, 199, 5e-5),
    (100_000, 200, 5e-6),
    (100_000, 209, 5e-6),
    (0, 170, 5e-5 * 0.001),  # warm-up multiplies the decayed lr (mmcv's regular_lr)
])
def test_schedule_values(iteration, epoch, expected):
    optimizer, schedule = _schedule()
    lr = schedule.step(iteration, epoch)[0]
    assert lr == pytest.approx(expected, rel=1e-12)
    assert optimizer.param_groups[0]["lr"] == lr
    assert lr_factor(iteration, epoch) * 5e-4 == pytest.approx(expected, rel=1e-12)


def test_schedule_state_dict_round_trip():
    optimizer, schedule = _schedule()
    schedule.step(321, 171)
    state = schedule.state_dict()
    optimizer2, schedule2 = _schedule(base_lr=1.0)  # a different base lr: the state's must win
    schedule2.load_state_dict(state)
    assert schedule2.base_lrs == [5e-4]
    assert optimizer2.param_groups[0]["lr"] == pytest.approx(optimizer.param_groups[0]["lr"], rel=1e-15)
    assert (schedule2.last_iteration, schedule2.last_epoch) == (321, 171)


# -------------------------------------------------------------------------------------- config


def test_config_defaults_are_srpose_settings():
    c = TrainConfig()
    assert (c.epochs, c.lr, c.optimizer, c.warmup_iters, c.warmup_ratio, c.lr_steps, c.lr_gamma) == \
        (210, 5e-4, "adam", 500, 0.001, (170, 200), 0.1)
    assert (c.batch_size, c.grad_clip, c.amp, c.target_method, c.backend) == (32, None, "auto", "msra", "auto")
    assert (c.flip_prob, c.half_body_prob, c.scale_factor, c.rot_factor, c.rot_prob) == (0.5, 0.3, 0.5, 40.0, 0.6)


@pytest.mark.parametrize("name", ZOO_CONFIGS)
def test_zoo_config_files(name):
    config = load_config(CONFIGS / f"{name}.json")
    assert config.model == name and name in MODEL_SPECS
    assert (config.lr, config.optimizer, config.warmup_ratio, config.lr_gamma) == (5e-4, "adam", 0.001, 0.1)
    if name != "srpose_demo":  # the paper's schedule; the demo's is shortened to run on a CPU
        assert (config.epochs, config.lr_steps, config.warmup_iters, config.batch_size, config.input_size) == \
            (210, (170, 200), 500, 32, (256, 192))
    assert name in config.output_dir


def test_config_errors(tmp_path):
    with pytest.raises(ValueError, match="unknown keys.*'lrr'"):
        config_from_dict({"lrr": 1e-3})
    assert config_from_dict({"_comment": "ignored", "lr": 1e-3}).lr == 1e-3
    with pytest.raises(ValueError, match="amp"):
        TrainConfig(amp="fp8")
    with pytest.raises(ValueError, match="input_size"):
        TrainConfig(input_size=(250, 192))
    bad = tmp_path / "bad.json"
    bad.write_text("{ not json")
    with pytest.raises(ValueError, match="bad.json"):
        load_config(bad)
    with pytest.raises(FileNotFoundError, match="missing.json"):
        load_config(tmp_path / "missing.json")
    round_trip = tmp_path / "c.json"
    TrainConfig(input_size=(64, 64), grad_clip=1.0).save(round_trip)
    assert load_config(round_trip) == TrainConfig(input_size=(64, 64), grad_clip=1.0)


@pytest.mark.parametrize("name", HRFORMER_CONFIGS)
def test_hrformer_config_files(name):
    """SPEC.md section 7: AdamW with the bias tables at decay 0, fp16 with a dynamic scale, SyncBN in the backbone only (the head keeps per-GPU BN), drop path 0.1."""
    config = load_config(CONFIGS / f"{name}.json")
    assert config.model == name and name in MODEL_SPECS and name in config.output_dir
    assert (config.optimizer, config.lr, config.weight_decay, config.no_weight_decay) == \
        ("adamw", 5e-4, 0.01, ("relative_position_bias_table",))
    assert (config.epochs, config.lr_steps, config.lr_gamma, config.warmup_iters, config.warmup_ratio) == \
        (210, (170, 200), 0.1, 500, 0.001)
    assert (config.batch_size, config.input_size, config.amp, config.sync_bn) == (32, (256, 192), "fp16", "backbone")
    assert MODEL_SPECS[name].backbone == "hrformer_s" and BACKBONES["hrformer_s"][1]["drop_path_rate"] == 0.1


def _decay_model():
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 1), torch.nn.BatchNorm2d(4))
    model.relative_position_bias_table = torch.nn.Parameter(torch.ones(3))
    model.frozen_relative_position_bias_table = torch.nn.Parameter(torch.ones(2), requires_grad=False)
    return model


def test_no_weight_decay_groups():
    """mmcv's custom_keys with decay_mult 0: parameters named by a listed part get weight decay 0 and
    everything else (norms and biases included) keeps it; frozen parameters stay out."""
    model = _decay_model()
    config = TrainConfig(optimizer="adamw", weight_decay=0.01, no_weight_decay=["relative_position_bias_table"])
    optimizer = build_optimizer(model, config)
    decay, no_decay = optimizer.param_groups
    assert optimizer.defaults["betas"] == (0.9, 0.999) and isinstance(optimizer, torch.optim.AdamW)
    assert decay["weight_decay"] == 0.01 and no_decay["weight_decay"] == 0.0
    assert no_decay["params"] == [model.relative_position_bias_table]
    assert decay["params"] == [model[0].weight, model[0].bias, model[1].weight, model[1].bias]
    with torch.no_grad():
        for param in decay["params"]:
            param.fill_(1.0)
    for param in decay["params"] + no_decay["params"]:
        param.grad = torch.zeros_like(param)
    optimizer.param_groups[0]["lr"] = optimizer.param_groups[1]["lr"] = 1.0
    optimizer.step()  # zero gradients: only the decoupled decay moves a parameter
    assert bool((model[1].bias == 0.99).all()) and bool((model.relative_position_bias_table == 1.0).all())
    assert len(build_optimizer(model, TrainConfig()).param_groups) == 1


def test_no_weight_decay_errors():
    with pytest.raises(ValueError, match="'relative_position_bias_tabel'.*match no parameter"):
        build_optimizer(_decay_model(), TrainConfig(no_weight_decay=["relative_position_bias_tabel"]))
    for bad in ("relative_position_bias_table", [""], [3]):
        with pytest.raises(ValueError, match="no_weight_decay"):
            TrainConfig(no_weight_decay=bad)
    assert config_from_dict({"no_weight_decay": ["table"]}).no_weight_decay == ("table",)
    # HRFormer's bias tables are frozen (never added, so never given a gradient): matched, not an error.
    config = load_config(CONFIGS / "srpose_hrformer_s.json")
    optimizer = build_optimizer(build_backbone("hrformer_s"), config)
    assert len(optimizer.param_groups) == 1


def test_resolve_amp():
    assert resolve_amp("auto", torch.device("cpu")) is None
    assert resolve_amp("auto", torch.device("cuda", 0)) is torch.bfloat16
    assert resolve_amp("fp16", torch.device("cuda", 0)) is torch.float16
    assert resolve_amp("none", torch.device("cuda", 0)) is None


# -------------------------------------------------------------------------------------- training


def test_training_lowers_the_loss_and_writes_the_csv(tmp_path):
    config = tiny_config(tmp_path, epochs=3, warmup_iters=0, lr_steps=())
    trainer = Trainer(tiny_model(), config, tiny_loader(config))
    history = trainer.fit()
    assert [row["epoch"] for row in history] == [1, 2, 3]
    assert trainer.iteration == 3 * 4
    assert history[-1]["loss"] < 0.8 * history[0]["loss"]

    with open(tmp_path / "log.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert tuple(rows[0]) == CSV_COLUMNS
    assert [int(r["iter"]) for r in rows] == [2, 4, 6, 8, 10, 12]  # every log_interval = 2 iterations
    assert [int(r["epoch"]) for r in rows] == [1, 1, 2, 2, 3, 3]
    assert all(float(r["loss"]) > 0 and float(r["images_per_s"]) > 0 for r in rows)
    assert float(rows[0]["lr"]) == pytest.approx(5e-3)
    assert json.loads((tmp_path / "config.json").read_text())["epochs"] == 3
    assert sorted(p.name for p in tmp_path.glob("*.pth")) == ["epoch_002.pth", "epoch_003.pth", "latest.pth"]


def test_logged_lr_follows_warmup_and_steps(tmp_path):
    # 4 iterations per epoch, warm-up over 6 iterations, decay from epoch 3 (0-based): the lr of the
    # last iteration of each epoch (iterations 3, 7, 11, 15) is logged.
    config = tiny_config(tmp_path, log_interval=4)
    Trainer(tiny_model(), config, tiny_loader(config)).fit()
    with open(tmp_path / "log.csv", newline="") as f:
        lrs = [float(r["lr"]) for r in csv.DictReader(f)]
    expected = [5e-3 * lr_factor(i, e, warmup_iters=6, milestones=(3,)) for i, e in ((3, 0), (7, 1), (11, 2), (15, 3))]
    assert lrs == pytest.approx(expected, rel=1e-6)
    assert lrs[0] < lrs[1] == lrs[2] > lrs[3]


def test_bf16_autocast_grad_clip_and_channels_last_run(tmp_path):
    config = tiny_config(tmp_path, epochs=1, amp="bf16", grad_clip=0.01, channels_last=True)
    trainer = Trainer(tiny_model(), config, tiny_loader(config))
    before = [p.detach().clone() for p in trainer.model.parameters()]
    history = trainer.fit()
    assert torch.isfinite(torch.tensor(history[0]["loss"]))
    after = list(trainer.model.parameters())
    assert any(not torch.equal(a, b) for a, b in zip(before, after))
    assert trainer.model.backbone.body[0].weight.is_contiguous(memory_format=torch.channels_last)


def test_grad_clip_bounds_the_gradient_norm(tmp_path):
    norms = []

    class Probe(Trainer):
        def train_step(self, batch):
            loss = super().train_step(batch)
            norms.append(torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in self.model.parameters()])))
            return loss

    config = tiny_config(tmp_path, epochs=1, grad_clip=1e-3, lr=1e-6)
    Probe(tiny_model(), config, tiny_loader(config)).fit()
    assert len(norms) == 4 and all(n <= 1e-3 * (1 + 1e-5) for n in norms)


def test_tensorboard_missing_is_a_warning_not_a_crash(tmp_path):
    config = tiny_config(tmp_path, epochs=1, tensorboard=True)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        Trainer(tiny_model(), config, tiny_loader(config)).fit()
    try:
        import torch.utils.tensorboard  # noqa: F401
    except ImportError:
        import srpose_fast.engine.logging as log_module

        assert log_module._warned_no_tensorboard
    else:
        assert any((tmp_path / "tb").iterdir())
    assert (tmp_path / "log.csv").exists()
    assert not [w for w in caught if issubclass(w.category, RuntimeWarning)]


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("amp", ["bf16", "fp16"])
def test_cuda_amp_channels_last(tmp_path, amp):
    config = tiny_config(tmp_path, epochs=1, amp=amp, channels_last=True, device="cuda", grad_clip=1.0)
    trainer = Trainer(tiny_model(), config, tiny_loader(config))
    history = trainer.fit()
    assert (trainer.scaler is not None) == (amp == "fp16")
    assert torch.isfinite(torch.tensor(history[0]["loss"]))


# ------------------------------------------------------------------------------ train() end to end


def test_loader_hands_keypoints_in_input_pixels():
    """The model's codec converts them for the loss; the deprecated heatmap_size= changes nothing."""
    from srpose_fast.engine.distributed import DistInfo
    from srpose_fast.engine.trainer import build_train_loader

    samples = [{"image": torch.zeros(3, 32, 32), "keypoints": torch.full((17, 2), 4.0 * i),
                "target_weight": torch.ones(17)} for i in range(4)]
    config = TrainConfig(batch_size=4, workers=0)
    batch = next(iter(build_train_loader(samples, config, DistInfo())))
    assert sorted(batch["keypoints"][:, 0, 0].tolist()) == [0.0, 4.0, 8.0, 12.0]
    with pytest.warns(DeprecationWarning, match="heatmap_size"):
        loader = build_train_loader(samples, config, DistInfo(), heatmap_size=(8, 8))
    assert sorted(next(iter(loader))["keypoints"][:, 0, 0].tolist()) == [0.0, 4.0, 8.0, 12.0]


def test_train_entry_on_synthetic_coco(tmp_path):
    from srpose_fast.data.synthetic import generate_synthetic_coco
    from srpose_fast.engine.trainer import train

    ann = generate_synthetic_coco(tmp_path / "data", num_images=3, split="train", image_size=(96, 64), progress=False)
    config = TrainConfig(model="srpose_demo", input_size=(64, 64), train_ann=str(ann),
                         train_images=str(tmp_path / "data" / "images" / "train"), batch_size=4, workers=1,
                         epochs=1, warmup_iters=2, amp="none", device="cpu", output_dir=str(tmp_path / "run"),
                         progress=False, tensorboard=False, log_interval=1, backend="torch")
    path = tmp_path / "demo.json"
    config.save(path)
    trainer = train(path)
    steps = trainer.iteration
    assert trainer.epoch == 1 and steps >= 1 and trainer.model.input_size == (64, 64)
    assert trainer.loader.dataset.set_epoch and trainer.loader.dataset.epoch == 0
    assert (tmp_path / "run" / "latest.pth").exists() and (tmp_path / "run" / "epoch_001.pth").exists()

    resumed = train(config.replace(epochs=2), resume=True)  # continues from run/latest.pth
    assert (resumed.epoch, resumed.iteration) == (2, 2 * steps)
    assert resumed.loader.dataset.epoch == 1
    with pytest.raises(FileNotFoundError, match="latest.pth"):
        train(config, resume=True, output_dir=tmp_path / "empty")
