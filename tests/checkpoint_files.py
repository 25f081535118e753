"""Checkpoint files in the layouts users bring (SPEC.md section 8), written by the tests from a model's own
keys: the SRPose fork's mmcv 1.x files, mmpose 1.x's mmengine files, torchvision and the official
SimpleBaseline repository's bare state dicts.

mmengine keeps numpy arrays in `meta.dataset_meta` and HistoryBuffer objects in `message_hub`. The
stand-in HistoryBuffer below is registered under mmengine's module path only while a file is written, so
that reading the file cannot import it: the loader must get by without mmengine, as users' machines do.
"""
from __future__ import annotations

import sys
import types
from collections import OrderedDict
from pathlib import Path

import numpy as np
import torch
from torch import nn

MMENGINE_HISTORY_BUFFER = "mmengine.logging.history_buffer"


def randomize(model: nn.Module, seed: int = 0) -> nn.Module:
    """Random values in every tensor of the state dict (small, so deep nets stay finite), in place."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for key, value in model.state_dict().items():
            if not value.is_floating_point():
                value.copy_(torch.randint(0, 1000, value.shape, generator=g))
            elif key.endswith("running_var"):
                value.copy_(torch.rand(value.shape, generator=g) + 0.5)
            else:
                value.copy_(torch.randn(value.shape, generator=g) * 0.02)
    return model


def _with_metadata(state: dict[str, torch.Tensor]) -> OrderedDict:
    """A state dict as nn.Module.state_dict() returns it: an OrderedDict carrying module versions."""
    out = OrderedDict(state)
    modules = {key.rpartition(".")[0] for key in state}
    out._metadata = OrderedDict((m, {"version": 2 if "bn" in m or "norm" in m else 1}) for m in [""] + sorted(modules))
    return out


def _adam_state(state: dict[str, torch.Tensor]) -> dict:
    params = [v for v in state.values() if v.is_floating_point()]
    return {"state": {i: {"step": torch.tensor(1.0), "exp_avg": torch.zeros_like(p), "exp_avg_sq": torch.zeros_like(p)}
                      for i, p in enumerate(params[:3])},
            "param_groups": [{"lr": 5e-4, "betas": (0.9, 0.999), "eps": 1e-8, "weight_decay": 0, "amsgrad": False,
                              "initial_lr": 5e-4, "params": list(range(len(params)))}]}


def srpose_fork_state(model: nn.Module) -> OrderedDict:
    """The model's weights under the fork's names: `backbone.*` and `keypoint_head.*`."""
    return _with_metadata({("keypoint_head." + k[len("head."):]) if k.startswith("head.") else k: v.clone()
                           for k, v in model.state_dict().items()})


def save_srpose_fork(path: Path, model: nn.Module, *, form: str = "epoch", epoch: int = 210) -> Path:
    """`epoch_N.pth` ({meta, state_dict, optimizer}) or `best.pth` ({meta: {mmcv_version, time}, state_dict}),
    as the fork's mmcv 1.7 runner and EvalHook write them."""
    state = srpose_fork_state(model)
    if form == "best":
        checkpoint = {"meta": {"mmcv_version": "1.7.0", "time": "Sat Mar  4 10:12:31 2023"}, "state_dict": state}
    else:
        meta = {"mmpose_version": "0.24.0+30d6cfe", "config": "model = dict(type='TopDownHigher', ...)\n",
                "env_info": "sys.platform: linux\nPython: 3.8.16\nCUDA available: True\n", "seed": 0,
                "fp16": {"loss_scaler": {"scale": 512.0, "growth_factor": 2.0, "backoff_factor": 0.5,
                                         "growth_interval": 1000, "_growth_tracker": 17}},
                "hook_msgs": {"last_ckpt": f"work_dirs/x/epoch_{epoch - 1}.pth"},
                "epoch": epoch, "iter": epoch * 4682, "mmcv_version": "1.7.0", "time": "Sat Mar  4 10:12:31 2023"}
        checkpoint = {"meta": meta, "state_dict": state, "optimizer": _adam_state(state)}
    torch.save(checkpoint, path)
    return path


class HistoryBuffer:
    """Stand-in for mmengine's HistoryBuffer (what `message_hub` pickles). Loading a file must never create
    one: `created` counts constructions and state restores."""

    created = 0

    def __init__(self, log_history=(), count_history=(), max_length=1000000):
        self._log_history = np.asarray(log_history, dtype=np.float64)
        self._count_history = np.asarray(count_history, dtype=np.int64)
        self.max_length = max_length
        HistoryBuffer.created += 1

    def __setstate__(self, state):
        HistoryBuffer.created += 1
        self.__dict__.update(state)


HistoryBuffer.__module__ = MMENGINE_HISTORY_BUFFER


def _mmengine_modules() -> dict[str, types.ModuleType]:
    names = ("mmengine", "mmengine.logging", MMENGINE_HISTORY_BUFFER)
    modules = {name: types.ModuleType(name) for name in names}
    modules[MMENGINE_HISTORY_BUFFER].HistoryBuffer = HistoryBuffer
    return modules


def save_mmengine(path: Path, model: nn.Module, *, form: str = "training") -> Path:
    """mmpose 1.x's TopdownPoseEstimator checkpoint: training form {meta, state_dict, message_hub, optimizer,
    param_schedulers} or the published form {meta, state_dict}; `data_preprocessor.mean/std` included as
    older files have them."""
    state = {k: v.clone() for k, v in model.state_dict().items()}
    state["data_preprocessor.mean"] = torch.tensor([123.675, 116.28, 103.53]).view(-1, 1, 1)
    state["data_preprocessor.std"] = torch.tensor([58.395, 57.12, 57.375]).view(-1, 1, 1)
    dataset_meta = {"dataset_name": "coco", "num_keypoints": 17,
                    "sigmas": np.array([.026, .025, .025, .035, .035, .079, .079, .072, .072, .062, .062, .107, .107,
                                        .087, .087, .089, .089], dtype=np.float32),
                    "keypoint_weights": np.ones(17, dtype=np.float32),
                    "skeleton_link_colors": np.zeros((19, 3), dtype=np.uint8),
                    "flip_indices": [0, 2, 1, 4, 3, 6, 5, 8, 7, 10, 9, 12, 11, 14, 13, 16, 15]}
    meta = {"epoch": 210, "iter": 982_800, "cfg": "model = dict(type='TopdownPoseEstimator', ...)\n", "seed": 0,
            "experiment_name": "td-hm_x_8xb32-210e_coco-256x192_20230101_000000", "time": "20230101_000000",
            "mmengine_version": "0.7.4", "dataset_meta": dataset_meta}
    checkpoint = {"meta": meta, "state_dict": _with_metadata(state)}
    if form == "training":
        previous = {name: sys.modules.get(name) for name in _mmengine_modules()}
        sys.modules.update(_mmengine_modules())
        try:
            message_hub = {"log_scalars": {"train/loss": HistoryBuffer([1e-3, 9e-4], [1, 1]),
                                           "val/coco/AP": HistoryBuffer([0.7], [1])},
                           "runtime_info": {"epoch": 210, "iter": 982_800, "dataset_meta": dataset_meta},
                           "resumed_keys": {"epoch": True, "iter": True}}
            checkpoint.update(message_hub=message_hub, optimizer=_adam_state(state),
                              param_schedulers=[{"start_factor": 0.001, "end": 500, "by_epoch": False},
                                                {"milestones": {170: 1, 200: 1}, "gamma": 0.1, "by_epoch": True}])
            torch.save(checkpoint, path)
        finally:
            for name, module in previous.items():
                if module is None:
                    sys.modules.pop(name, None)
                else:
                    sys.modules[name] = module
    else:
        torch.save(checkpoint, path)
    return path


def save_bare(path: Path, model: nn.Module, *, classifier: bool = False) -> Path:
    """The official SimpleBaseline / HRNet repositories' layout of a pose model (`conv1...`,
    `deconv_layers...`, `final_layer...`), or with `classifier` torchvision's ImageNet ResNet-50 file: the
    model's backbone and an `fc` classifier."""
    state = {k.split(".", 1)[1]: v.clone() for k, v in model.state_dict().items()
             if not classifier or k.startswith("backbone.")}
    if classifier:
        state["fc.weight"], state["fc.bias"] = torch.zeros(1000, 2048), torch.zeros(1000)
    torch.save(state, path)
    return path
