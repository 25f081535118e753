"""SRPose's learning-rate schedule: linear warm-up per iteration, then step decay per epoch.

With mmcv's semantics (the reference trains with mmcv 1.x's `lr_config = dict(policy='step',
warmup='linear', warmup_iters=500, warmup_ratio=0.001, step=[170, 200])`):

    regular(epoch)  = base_lr * gamma ** (number of steps s with epoch >= s)     (epoch 0-based)
    lr(iter, epoch) = regular(epoch) * (1 - (1 - iter / warmup_iters) * (1 - warmup_ratio))
                      while iter < warmup_iters, else regular(epoch)             (iter 0-based, global)

So the first iteration runs at warmup_ratio * base_lr, iteration 250 at 0.5005 * base_lr,
iteration 500 on at base_lr; epochs 170..199 at 0.1 * base_lr and 200.. at 0.01 * base_lr.

The learning rate is a pure function of (iteration, epoch); the trainer sets it before every
optimiser step, so resuming needs nothing but those two counters. `state_dict` still records them
and the base learning rates, so a checkpoint says what the schedule was.
"""
from __future__ import annotations

from typing import Sequence

import torch


def lr_factor(iteration: int, epoch: int, *, warmup_iters: int = 500, warmup_ratio: float = 0.001,
              milestones: Sequence[int] = (170, 200), gamma: float = 0.1) -> float:
    """The multiplier of the base learning rate at a global iteration and an epoch (both 0-based)."""
    factor = gamma ** sum(1 for m in milestones if epoch >= m)
    if iteration < warmup_iters:
        factor *= 1 - (1 - iteration / warmup_iters) * (1 - warmup_ratio)
    return factor


class WarmupStepLR:
    """Sets each parameter group's lr to `base_lr * lr_factor(iteration, epoch)`.

    Call `step(iteration, epoch)` before the optimiser step of that iteration.
    """

    def __init__(self, optimizer: torch.optim.Optimizer, *, warmup_iters: int = 500, warmup_ratio: float = 0.001,
                 milestones: Sequence[int] = (170, 200), gamma: float = 0.1):
        self.optimizer = optimizer
        self.warmup_iters = int(warmup_iters)
        self.warmup_ratio = float(warmup_ratio)
        self.milestones = tuple(int(m) for m in milestones)
        self.gamma = float(gamma)
        for group in optimizer.param_groups:
            group.setdefault("initial_lr", group["lr"])
        self.base_lrs = [group["initial_lr"] for group in optimizer.param_groups]
        self.last_iteration = -1
        self.last_epoch = -1

    def factor(self, iteration: int, epoch: int) -> float:
        return lr_factor(iteration, epoch, warmup_iters=self.warmup_iters, warmup_ratio=self.warmup_ratio,
                         milestones=self.milestones, gamma=self.gamma)

    def step(self, iteration: int, epoch: int) -> list[float]:
        factor = self.factor(iteration, epoch)
        for group, base_lr in zip(self.optimizer.param_groups, self.base_lrs):
            group["lr"] = base_lr * factor
        self.last_iteration, self.last_epoch = int(iteration), int(epoch)
        return self.get_last_lr()

    def get_last_lr(self) -> list[float]:
        return [group["lr"] for group in self.optimizer.param_groups]

    def state_dict(self) -> dict:
        return {"base_lrs": list(self.base_lrs), "warmup_iters": self.warmup_iters,
                "warmup_ratio": self.warmup_ratio, "milestones": list(self.milestones), "gamma": self.gamma,
                "last_iteration": self.last_iteration, "last_epoch": self.last_epoch}

    def load_state_dict(self, state: dict) -> None:
        self.base_lrs = [float(v) for v in state["base_lrs"]]
        self.warmup_iters = int(state["warmup_iters"])
        self.warmup_ratio = float(state["warmup_ratio"])
        self.milestones = tuple(int(m) for m in state["milestones"])
        self.gamma = float(state["gamma"])
        self.last_iteration = int(state["last_iteration"])
        self.last_epoch = int(state["last_epoch"])
        for group, base_lr in zip(self.optimizer.param_groups, self.base_lrs):
            group["initial_lr"] = base_lr
        if self.last_iteration >= 0:
            self.step(self.last_iteration, self.last_epoch)
