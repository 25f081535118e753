"""Training: `train(config)` builds everything and runs `Trainer.fit()`.

One GPU (or the CPU):

    srpose-fast train configs/srpose_hrnet_w32.json [--resume] [--out DIR]

Eight GPUs on one machine (each process takes `batch_size` images, 32 x 8 as in SRPose):

    torchrun --nproc_per_node 8 -m srpose_fast.cli train configs/srpose_hrnet_w32.json

From Python: `train("configs/srpose_demo.json")` or `train(TrainConfig(...), resume=True)`.

What one iteration does: set the learning rate (warm-up per iteration, step decay per epoch,
`schedule.py`), forward under bf16 autocast on CUDA (fp16 adds a GradScaler), the fused
multi-stage loss `model.loss(preds, batch)` in float32 (the head's codec turns the keypoints, in input
pixels, into the loss op's targets) on the config's `backend`, backward, optional gradient clipping, optimiser step. After every epoch
rank 0 writes `latest.pth` (and `epoch_NNN.pth` every `checkpoint_interval` epochs and at the
end) into the output folder, next to `config.json` and `log.csv` (TensorBoard events in `tb/`
when tensorboard is installed). Every `val_interval` epochs (SRPose: 10) and after the last, rank 0
evaluates with the config's protocol (`eval_protocol`), appends the statistics to `val.csv` and
TensorBoard, prints the AP on the epoch's line and copies the checkpoint to `best.pth` when its AP is
the best so far (kept in the checkpoints, so a resumed run keeps it).

Resuming is exact: the shuffle order is a function of (seed, epoch), the data-loader workers are
seeded from (seed, epoch, rank), and the checkpoint holds the optimiser, the schedule counters
and every process's random generator states. Training 2 epochs and resuming for 2 more gives
the same weights as 4 epochs straight. Ctrl-C mid-epoch leaves the last checkpoint intact
(writes are atomic); resume from it with `--resume`.
"""
from __future__ import annotations

import contextlib
import random
import time
import warnings
from pathlib import Path
from typing import Callable, Iterable

import numpy as np
import torch
import torch.nn as nn
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from ..models.pose_model import BOTTOM_UP, model_kind
from .checkpoint import capture_rng_state, load_checkpoint, save_checkpoint, unwrap_model
from .config import TrainConfig, load_config
from .distributed import (DistInfo, all_reduce_mean, barrier, broadcast_buffers, build_sampler, gather_objects,
                          init_distributed, prepare_model, shutdown)
from .eval_protocol import best_metric, build_validator
from .logging import TrainLogger
from .schedule import WarmupStepLR

LATEST = "latest.pth"
BEST = "best.pth"  # the checkpoint of the best evaluation (val_interval)


def seed_everything(seed: int) -> None:
    """Seed Python's, NumPy's and torch's global generators (CUDA included)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def worker_seed(seed: int, epoch: int, rank: int) -> int:
    """The seed of the data loader's generator for one epoch on one rank (its workers derive theirs)."""
    return ((seed * 1_000_003 + epoch) * 1_009 + rank) % 2**63


def resolve_amp(amp: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype: "auto" is bf16 on CUDA and none elsewhere."""
    if amp == "auto":
        return torch.bfloat16 if device.type == "cuda" else None
    return {"bf16": torch.bfloat16, "fp16": torch.float16, "none": None}[amp]


def build_optimizer(model: nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    """Adam / AdamW over the trainable parameters; those named by `config.no_weight_decay` form a
    second group with weight decay 0."""
    names = [name for name, _ in model.named_parameters()]
    unmatched = [key for key in config.no_weight_decay if not any(key in name for name in names)]
    if unmatched:
        raise ValueError(f"no_weight_decay: {unmatched} match no parameter name of the model")
    decay, no_decay = [], []
    for name, param in model.named_parameters():
        if param.requires_grad:
            (no_decay if any(key in name for key in config.no_weight_decay) else decay).append(param)
    groups = [{"params": decay}] + ([{"params": no_decay, "weight_decay": 0.0}] if no_decay else [])
    cls = torch.optim.Adam if config.optimizer == "adam" else torch.optim.AdamW
    return cls(groups, lr=config.lr, weight_decay=config.weight_decay)


def epoch_checkpoint_name(epoch: int) -> str:
    return f"epoch_{epoch:03d}.pth"


Callback = Callable[["Trainer"], None]


class Trainer:
    """The training loop of a top-down pose model.

    Args:
        model: a `TopDownPoseModel` (anything with `forward(images)`, `loss(preds, batch)`, `set_backend` and
            `update_codec`), not yet wrapped. The config's `backend` and `target_method` are set on it.
        config: the TrainConfig (optimiser, schedule, precision, output folder, ...).
        train_loader: yields dicts with `image` (N, 3, H, W), `keypoints` (N, K, 2) in
            input pixels (what `collate_pose` gives) and `target_weight` (N, K). Its
            sampler's and dataset's `set_epoch(epoch)` are called before each epoch when they
            exist, and its `generator` (when set) is re-seeded per (seed, epoch, rank).
        dist_info: from `init_distributed()`; a single process on `config.device` by default.
        model_name: the zoo name stored in and checked against checkpoints (config.model by default).
        callbacks: called as `callback(trainer)` after every optimiser step.
        validator: `validator(model) -> statistics` (AP, or PCKh for MPII), run on rank 0 every
            `val_interval` epochs (`eval_protocol.build_validator`); the best result is kept as `best.pth`.

    The model is moved to the device, converted to SyncBatchNorm / channels-last when the config
    asks, and wrapped in DistributedDataParallel when there are several processes (`self.module`);
    `self.model` is the plain model.
    """

    def __init__(self, model: nn.Module, config: TrainConfig, train_loader: Iterable, *,
                 dist_info: DistInfo | None = None, model_name: str | None = None,
                 callbacks: Iterable[Callback] = (), validator: Callable[[nn.Module], dict] | None = None):
        self.config = config
        self.dist = dist_info if dist_info is not None else init_distributed(config.device)
        self.device = self.dist.device
        self.module = prepare_model(model, self.dist, sync_bn=config.sync_bn, channels_last=config.channels_last)
        self.model = unwrap_model(self.module)
        self.model.set_backend(config.backend)
        self.model.update_codec(target_method=config.target_method)
        self.model_name = model_name if model_name is not None else config.model
        self.loader = train_loader
        self.callbacks = list(callbacks)
        self.optimizer = build_optimizer(self.model, config)
        self.scheduler = WarmupStepLR(self.optimizer, warmup_iters=config.warmup_iters,
                                      warmup_ratio=config.warmup_ratio, milestones=config.lr_steps,
                                      gamma=config.lr_gamma)
        self.amp_dtype = resolve_amp(config.amp, self.device)
        self.scaler = torch.amp.GradScaler(self.device.type) if self.amp_dtype == torch.float16 else None
        self.out_dir = Path(config.output_dir)
        self.epoch = 0  # epochs completed
        self.iteration = 0  # optimiser steps taken
        self.history: list[dict] = []  # one row per finished epoch
        self.logger: TrainLogger | None = None
        self._start = time.perf_counter()
        self.validator = validator
        self.best: dict | None = None  # {"metric", "value", "epoch"} of the best evaluation so far

    # ------------------------------------------------------------------------------- one step

    def _to_device(self, batch: dict) -> tuple[torch.Tensor, dict]:
        images = batch["image"].to(self.device, non_blocking=True)
        if self.config.channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        # Whatever else the batch holds is the head's loss's: keypoints and target weights for a heatmap head.
        targets = {key: value.to(self.device, non_blocking=True) for key, value in batch.items()
                   if key != "image" and isinstance(value, torch.Tensor)}
        return images, targets

    def train_step(self, batch: dict) -> torch.Tensor:
        """One optimiser step on one batch; returns the detached loss (not synchronised)."""
        images, targets = self._to_device(batch)
        autocast = (torch.autocast(self.device.type, dtype=self.amp_dtype) if self.amp_dtype is not None
                    else contextlib.nullcontext())
        with autocast:
            preds = self.module(images)
        loss = self.model.loss(preds, targets)
        self.optimizer.zero_grad(set_to_none=True)
        if self.scaler is not None:
            self.scaler.scale(loss).backward()
            if self.config.grad_clip is not None:
                self.scaler.unscale_(self.optimizer)
                nn.utils.clip_grad_norm_(self.model.parameters(), self.config.grad_clip)
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            loss.backward()
            if self.config.grad_clip is not None:
                nn.utils.clip_grad_norm_(self.model.parameters(), self.config.grad_clip)
            self.optimizer.step()
        return loss.detach()

    # ------------------------------------------------------------------------------ one epoch

    def _begin_epoch(self) -> None:
        for obj in (getattr(self.loader, "sampler", None), getattr(self.loader, "batch_sampler", None),
                    getattr(self.loader, "dataset", None)):
            if hasattr(obj, "set_epoch"):
                obj.set_epoch(self.epoch)
        generator = getattr(self.loader, "generator", None)
        if isinstance(generator, torch.Generator):
            generator.manual_seed(worker_seed(self.config.seed, self.epoch, self.dist.rank))

    def _reduce_loss(self, loss_sum: torch.Tensor, steps: int) -> float:
        loss = all_reduce_mean(loss_sum / max(steps, 1), self.dist).item()
        if not np.isfinite(loss):
            raise FloatingPointError(f"the training loss is {loss} at epoch {self.epoch + 1}, iteration "
                                     f"{self.iteration}; lower the lr or set grad_clip in the config")
        return loss

    def train_epoch(self) -> dict:
        """Train one epoch (the one after `self.epoch`); returns its summary row."""
        config, world = self.config, self.dist.world_size
        self._begin_epoch()
        self.module.train()
        total = len(self.loader) if hasattr(self.loader, "__len__") else None
        # tqdm's disable=None: a bar only when stderr is a terminal.
        disable = True if not self.dist.is_main else None if config.progress is None else not config.progress
        bar = tqdm(self.loader, total=total, desc=f"epoch {self.epoch + 1}/{config.epochs}", dynamic_ncols=True,
                   disable=disable)
        zero = torch.zeros((), device=self.device)
        epoch_loss, window_loss = zero.clone(), zero.clone()
        epoch_steps = window_steps = window_images = epoch_images = 0
        epoch_start = window_start = time.perf_counter()
        lr = self.scheduler.get_last_lr()[0]
        try:
            for step, batch in enumerate(bar):
                lr = self.scheduler.step(self.iteration, self.epoch)[0]
                loss = self.train_step(batch)
                self.iteration += 1
                n = int(batch["image"].shape[0])
                window_loss += loss
                epoch_loss += loss
                window_steps += 1
                epoch_steps += 1
                window_images += n
                epoch_images += n
                if window_steps == config.log_interval or (total is not None and step + 1 == total):
                    mean = self._reduce_loss(window_loss, window_steps)
                    now = time.perf_counter()
                    speed = window_images * world / max(now - window_start, 1e-9)
                    bar.set_postfix(loss=f"{mean:.3e}", lr=f"{lr:.2e}", img_s=f"{speed:.0f}", refresh=False)
                    if self.logger is not None:
                        self.logger.log(epoch=self.epoch + 1, iter=self.iteration, loss=mean, lr=lr,
                                        images_per_s=round(speed, 2), time=round(now - self._start, 3))
                    window_loss.zero_()
                    window_steps = window_images = 0
                    window_start = time.perf_counter()
                for callback in self.callbacks:
                    callback(self)
        finally:
            bar.close()
        broadcast_buffers(self.model, self.dist)
        if epoch_steps == 0:
            dataset = getattr(self.loader, "dataset", None)
            held = "no samples" if dataset is None else f"{len(dataset)} samples over {world} process(es)"
            raise ValueError(f"the training loader yielded no batches: {held} at batch_size {config.batch_size}"
                             f"{' with drop_last' if config.drop_last else ''}")
        elapsed = time.perf_counter() - epoch_start
        return {"epoch": self.epoch + 1, "iter": self.iteration, "loss": self._reduce_loss(epoch_loss, epoch_steps),
                "lr": lr, "images_per_s": epoch_images * world / max(elapsed, 1e-9), "time": elapsed}

    # ----------------------------------------------------------------------------- checkpoints

    def save_checkpoint(self) -> Path | None:
        """Every rank calls this after an epoch; rank 0 writes `epoch_NNN.pth` (when due) and
        `latest.pth`. Returns the path written on rank 0, None elsewhere."""
        rng = gather_objects(capture_rng_state(), self.dist)  # every rank's generators, in rank order
        barrier(self.dist)
        path = None
        if self.dist.is_main:
            fields = dict(optimizer=self.optimizer, scheduler=self.scheduler, scaler=self.scaler, epoch=self.epoch,
                          iteration=self.iteration, config=self.config.to_dict(), model_name=self.model_name, rng=rng,
                          extra={"best": self.best} if self.best else None)
            latest = self.out_dir / LATEST
            # best.pth: a copy of this epoch's checkpoint when its evaluation is the best so far.
            best = (self.out_dir / BEST,) if self.best is not None and self.best["epoch"] == self.epoch else ()
            due = self.epoch % self.config.checkpoint_interval == 0 or self.epoch >= self.config.epochs
            if due:
                path = save_checkpoint(self.out_dir / epoch_checkpoint_name(self.epoch), self.model,
                                       also=(latest, *best), **fields)
            else:
                path = save_checkpoint(latest, self.model, also=best, **fields)
        barrier(self.dist)
        return path

    def resume(self, path: str | Path) -> dict:
        """Restore the model, optimiser, schedule, scaler, counters and random generators."""
        checkpoint = load_checkpoint(path, self.model, optimizer=self.optimizer, scheduler=self.scheduler,
                                     scaler=self.scaler, model_name=self.model_name, restore_rng=True,
                                     rank=self.dist.rank)
        self.epoch, self.iteration = int(checkpoint["epoch"]), int(checkpoint["iteration"])
        self.best = (checkpoint.get("extra") or {}).get("best")
        saved = checkpoint.get("config") or {}
        changed = sorted(k for k, v in self.config.to_dict().items()
                         if k in saved and saved[k] != v and k not in ("output_dir", "epochs", "progress"))
        if changed and self.dist.is_main:
            warnings.warn(f"resuming from {path} with changed settings: {', '.join(changed)}", stacklevel=2)
        return checkpoint

    # ------------------------------------------------------------------------------ validation

    def validate(self) -> dict | None:
        """After an epoch: when `val_interval` says so (every val_interval epochs and after the last), rank 0
        runs the validator, logs its statistics (CSV, TensorBoard) and updates `best`. Returns the
        statistics there, None on other ranks and when not due."""
        interval = self.config.val_interval
        due = interval > 0 and (self.epoch % interval == 0 or self.epoch >= self.config.epochs)
        if not (due and self.dist.is_main and self.validator is not None):
            return None
        stats = self.validator(self.model)
        metric = best_metric(stats)
        if self.logger is not None:
            self.logger.log_validation(epoch=self.epoch, iter=self.iteration, stats=stats)
        if self.best is None or stats[metric] > self.best["value"]:
            self.best = {"metric": metric, "value": float(stats[metric]), "epoch": self.epoch}
        return stats

    # ----------------------------------------------------------------------------------- fit

    def fit(self, epochs: int | None = None) -> list[dict]:
        """Train from `self.epoch` up to `epochs` (config.epochs by default); returns `history`."""
        epochs = self.config.epochs if epochs is None else epochs
        if self.dist.is_main:
            self.out_dir.mkdir(parents=True, exist_ok=True)
            self.config.save(self.out_dir / "config.json")
        self.logger = TrainLogger(self.out_dir, enabled=self.dist.is_main, tensorboard=self.config.tensorboard)
        self._start = time.perf_counter()
        try:
            while self.epoch < epochs:
                row = self.train_epoch()
                self.epoch += 1
                stats = self.validate()
                if stats is not None:
                    row["val"] = stats
                self.history.append(row)
                self.save_checkpoint()
                if self.dist.is_main:
                    val = ""
                    if stats is not None:
                        metric = self.best["metric"]
                        val = (f"  {metric} {stats[metric]:.4f} (best {self.best['value']:.4f}, "
                               f"epoch {self.best['epoch']})")
                    print(f"epoch {row['epoch']}/{epochs}  loss {row['loss']:.4e}  lr {row['lr']:.2e}  "
                          f"{row['images_per_s']:.0f} img/s  {row['time']:.0f} s{val}", flush=True)
        except KeyboardInterrupt:
            if self.dist.is_main:
                last = self.out_dir / LATEST
                hint = f"; resume from {last} (epoch {self.epoch})" if last.exists() else ""
                print(f"\ninterrupted in epoch {self.epoch + 1}, iteration {self.iteration}{hint}", flush=True)
            raise
        finally:
            self.logger.close()
            self.logger = None
        return self.history


# -------------------------------------------------------------------------------- building blocks


def build_train_dataset(config: TrainConfig, model) -> Dataset:
    """TopDownCocoDataset over the training file with SRPose's augmentation (set in the config); for a
    bottom-up model, BottomUpCocoDataset with the original's (fixed) bottom-up augmentation."""
    from ..data.coco import TopDownCocoDataset
    from ..data.transforms import AugmentParams

    if model_kind(model) == BOTTOM_UP:
        from ..data.bottomup import BottomUpCocoDataset

        return BottomUpCocoDataset(config.train_ann, config.train_images, keypoint_set=model.keypoint_set,
                                   input_size=model.codec.input_size, heatmap_size=model.codec.heatmap_size,
                                   train=True, seed=config.seed)

    augment = AugmentParams(flip_prob=config.flip_prob, half_body_prob=config.half_body_prob,
                            half_body_min_joints=config.half_body_min_joints,
                            scale_factor=config.scale_factor, rot_factor=config.rot_factor, rot_prob=config.rot_prob,
                            box_shift_prob=config.box_shift_prob)
    dataset = TopDownCocoDataset(config.train_ann, config.train_images, keypoint_set=model.keypoint_set,
                                 input_size=model.input_size, heatmap_size=model.heatmap_size, train=True,
                                 augment=augment, seed=config.seed)
    if len(dataset) == 0:
        raise ValueError(f"no training samples: none of the person annotations in {config.train_ann} has a labelled "
                         f"keypoint and a box inside its image ({dataset.num_without_keypoints} without a labelled "
                         f"keypoint, {dataset.num_dropped_boxes} with a box outside its image)")
    dataset.check_images()
    return dataset


def build_train_loader(dataset: Dataset, config: TrainConfig, info: DistInfo, *,
                       heatmap_size: tuple[int, int] | None = None, collate_fn=None) -> DataLoader:
    """A DataLoader over this rank's shard: seeded shuffling, per-epoch worker seeds, pinned memory
    on CUDA. The default collate is `collate_pose`: keypoints in input pixels, as the model's loss takes
    them (`heatmap_size` is deprecated and ignored: the model's codec converts the keypoints)."""
    if heatmap_size is not None:
        warnings.warn("build_train_loader(heatmap_size=) is deprecated and ignored: the loader hands keypoints "
                      "in input pixels and the model's codec converts them", DeprecationWarning, stacklevel=2)
    if collate_fn is None:
        from ..data.collate import collate_pose

        collate_fn = collate_pose
    sampler = build_sampler(dataset, info, shuffle=True, seed=config.seed)
    # Not persistent: workers are re-created each epoch, so they see the data set's new epoch and
    # the generator's new seed.
    return DataLoader(dataset, batch_size=config.batch_size, sampler=sampler, num_workers=config.workers,
                      collate_fn=collate_fn, pin_memory=info.device.type == "cuda", drop_last=config.drop_last,
                      generator=torch.Generator(), persistent_workers=False)


def train(config: str | Path | TrainConfig, *, resume: bool | str | Path | None = None,
          output_dir: str | Path | None = None, callbacks: Iterable[Callback] = ()) -> Trainer:
    """Train a zoo model as the config says (see the module docstring for the commands).

    Args:
        config: a TrainConfig or the path of a JSON/TOML config file.
        resume: True to continue from `<output_dir>/latest.pth`, or the path of a checkpoint.
        output_dir: overrides `config.output_dir`.
    Returns the finished Trainer (`.history`, `.model`, `.out_dir`).
    """
    from ..models import build_model

    if not isinstance(config, TrainConfig):
        config = load_config(config)
    if config.keypoint_set is None:  # the training file's
        from ..data.layouts import detect_keypoint_set

        config = config.replace(keypoint_set=detect_keypoint_set(config.train_ann).name)
    if output_dir is not None:
        config = config.replace(output_dir=str(output_dir))
    resume_path = None
    if resume:
        resume_path = Path(config.output_dir) / LATEST if resume is True else Path(resume)
        if not resume_path.is_file():
            raise FileNotFoundError(f"no checkpoint to resume from: {resume_path}")
    info = init_distributed(config.device)
    try:
        seed_everything(config.seed)  # the same initial weights on every rank
        # init_from holds every weight (pretrained would be overwritten); a resumed run loads its checkpoint.
        model = build_model(config.model, keypoint_set=config.keypoint_set, input_size=config.input_size,
                            pretrained=None if config.init_from else config.pretrained,
                            checkpoint=None if resume_path is not None else config.init_from)
        seed_everything(config.seed + info.rank)  # different augmentation streams per rank
        dataset = build_train_dataset(config, model)
        loader = build_train_loader(dataset, config, info)
        validator = build_validator(config, model) if config.val_interval and info.is_main else None
        trainer = Trainer(model, config, loader, dist_info=info, model_name=config.model, callbacks=callbacks,
                          validator=validator)
        if resume_path is not None:
            trainer.resume(resume_path)
        trainer.fit()
        return trainer
    finally:
        shutdown(info)
