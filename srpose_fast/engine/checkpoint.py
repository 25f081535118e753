"""Training checkpoints: atomic writes, weights-only loads, and errors that say what is wrong.

A checkpoint is a dict of tensors, plain containers, numbers and strings only, so that
`torch.load(weights_only=True)` reads it (no pickled classes, no code run on load):

    format_version, model_name, keypoint_set (its name), model (state dict), optimizer, scheduler, scaler,
    epoch (epochs completed), iteration (optimiser steps taken), config (dict), rng, extra

`rng` is a list with one entry per process (rank order) of the Python, NumPy, torch CPU and
CUDA generator states, so that resuming continues every random stream where it stopped.

Writes are atomic: the bytes go to a temporary file in the destination's folder, which is
flushed, fsync'ed and renamed over the destination (os.replace), then the folder is fsync'ed.
A crash or Ctrl-C at any moment leaves either the old file or the new one, never a torn one.
"""
from __future__ import annotations

import os
import random
import shutil
import tempfile
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
import torch.nn as nn

# The errors and unwrap_model are re-exported: the trainer and users import them from here.
from ..models.weights import CheckpointError, CheckpointMismatchError, check_fit, map_to_native, unwrap_model
from ..models.weights.reading import read_file

FORMAT_VERSION = 1


# ---------------------------------------------------------------------------------------------- RNG


def capture_rng_state() -> dict:
    """This process's generator states in weights-only-safe form."""
    bit_generator, keys, pos, has_gauss, cached_gaussian = np.random.get_state()
    version, internal, gauss_next = random.getstate()
    state = {
        "python": {"version": int(version), "internal": torch.tensor(internal, dtype=torch.int64),
                   "gauss_next": gauss_next},
        "numpy": {"bit_generator": str(bit_generator), "keys": torch.from_numpy(keys.astype(np.int64)),
                  "pos": int(pos), "has_gauss": int(has_gauss), "cached_gaussian": float(cached_gaussian)},
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() and torch.cuda.is_initialized() else [],
    }
    return state


def restore_rng_state(state: dict) -> None:
    """Inverse of `capture_rng_state` (CUDA states only when the device count matches)."""
    py = state["python"]
    random.setstate((py["version"], tuple(int(v) for v in py["internal"].tolist()), py["gauss_next"]))
    npy = state["numpy"]
    np.random.set_state((npy["bit_generator"], npy["keys"].numpy().astype(np.uint32), npy["pos"],
                         npy["has_gauss"], npy["cached_gaussian"]))
    torch.set_rng_state(state["torch"])
    cuda = state.get("cuda") or []
    if cuda and torch.cuda.is_available() and len(cuda) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(cuda)


# --------------------------------------------------------------------------------------- atomic I/O


def _fsync_dir(directory: Path) -> None:
    if os.name != "posix":
        return  # folders cannot be opened for fsync on Windows; os.replace is still atomic there
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write(path: str | Path, write: Callable[[Any], None]) -> Path:
    """Call `write(binary_file)` on a temporary file next to `path`, then move it into place. The file gets
    the permissions a plain `open(path, "w")` gives (mkstemp's temporary file is readable by its owner only)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        if os.name == "posix":
            os.fchmod(fd, 0o666 & ~_umask())
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:  # includes KeyboardInterrupt: never leave the temporary file behind
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    _fsync_dir(path.parent)
    return path


def atomic_copy(src: str | Path, dst: str | Path) -> Path:
    with open(src, "rb") as f:
        return atomic_write(dst, lambda out: shutil.copyfileobj(f, out, 1 << 20))


# ------------------------------------------------------------------------------------- save / load


def _state_or_none(obj) -> dict | None:
    return obj.state_dict() if obj is not None else None


def build_checkpoint(model: nn.Module, *, optimizer=None, scheduler=None, scaler=None, epoch: int = 0,
                     iteration: int = 0, config: dict | None = None, model_name: str | None = None,
                     rng: list[dict] | None = None, extra: dict | None = None) -> dict:
    """The checkpoint dict (see the module docstring). `rng` defaults to this process's state."""
    return {
        "format_version": FORMAT_VERSION,
        "model_name": model_name,
        "keypoint_set": getattr(getattr(unwrap_model(model), "keypoint_set", None), "name", None),
        "model": unwrap_model(model).state_dict(),
        "optimizer": _state_or_none(optimizer),
        "scheduler": _state_or_none(scheduler),
        "scaler": _state_or_none(scaler),
        "epoch": int(epoch),
        "iteration": int(iteration),
        "config": config,
        "rng": rng if rng is not None else [capture_rng_state()],
        "extra": extra or {},
    }


def save_checkpoint(path: str | Path, model: nn.Module, *, also: tuple[str | Path, ...] = (), **fields) -> Path:
    """Write a checkpoint atomically to `path`, and atomic copies of it to each path in `also`
    (e.g. `latest.pth`). `fields` are `build_checkpoint`'s keyword arguments."""
    checkpoint = build_checkpoint(model, **fields)
    path = atomic_write(path, lambda f: torch.save(checkpoint, f))
    for other in also:
        atomic_copy(path, other)
    return path


def read_checkpoint(path: str | Path) -> dict:
    """A srpose-fast training checkpoint, read on the CPU with `torch.load(weights_only=True)`; errors
    name the file. (Weights of other layouts load with `models.weights.load_weights`.)"""
    checkpoint = read_file(path)
    if not isinstance(checkpoint, dict) or "model" not in checkpoint:
        raise CheckpointError(f"{path} is not a srpose-fast training checkpoint (no 'model' entry); "
                              f"`srpose-fast convert` turns released SRPose / mmpose weights into one")
    return checkpoint


def load_checkpoint(path: str | Path, model: nn.Module, *, optimizer=None, scheduler=None, scaler=None,
                    model_name: str | None = None, restore_rng: bool = False, rank: int = 0) -> dict:
    """Load a checkpoint into `model` (and, when given, the optimiser, scheduler and scaler).

    Args:
        model_name: the zoo name of `model`; a checkpoint saved for another name is refused.
        restore_rng: also set this process's random generators (entry `rank` of the saved list,
            or entry 0 when the checkpoint was written by fewer processes).
    Returns the checkpoint dict (epoch, iteration, config, ...).
    Raises FileNotFoundError, CheckpointError (unreadable file), CheckpointMismatchError.
    """
    checkpoint = read_checkpoint(path)
    check_fit(map_to_native(checkpoint, path), model, path=path, model_name=model_name)
    unwrap_model(model).load_state_dict(checkpoint["model"])
    for name, obj in (("optimizer", optimizer), ("scheduler", scheduler), ("scaler", scaler)):
        if obj is None:
            continue
        if checkpoint.get(name) is None:
            if name == "scaler":  # saved without fp16 (bf16 or fp32): the new fp16 run starts a fresh scale
                continue
            raise CheckpointError(f"checkpoint {path} has no {name} state to resume from (a converted or released "
                                  f"checkpoint: start a run from its weights with the config's init_from)")
        obj.load_state_dict(checkpoint[name])
    if restore_rng:
        states = checkpoint.get("rng") or []
        if not states:
            raise CheckpointError(f"checkpoint {path} has no random generator states")
        restore_rng_state(states[rank] if rank < len(states) else states[0])
    return checkpoint
