"""Training checkpoints: atomic writes, weights-only loads, and errors that say what is wrong.

A checkpoint is a dict of tensors, plain containers, numbers and strings only, so that
`torch.load(weights_only=True)` reads it (no pickled classes, no code run on load):

    format_version, model_name, model (state dict), optimizer, scheduler, scaler,
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

FORMAT_VERSION = 1
_MAX_KEYS_SHOWN = 8


class CheckpointError(RuntimeError):
    """A checkpoint file that cannot be read (missing, truncated, corrupt, not a checkpoint)."""


class CheckpointMismatchError(ValueError):
    """A checkpoint whose weights do not fit the model (another architecture or keypoint set)."""


def unwrap_model(model: nn.Module) -> nn.Module:
    """The module inside DistributedDataParallel / DataParallel / torch.compile wrappers."""
    while True:
        if isinstance(model, (nn.parallel.DistributedDataParallel, nn.DataParallel)):
            model = model.module
        elif hasattr(model, "_orig_mod"):
            model = model._orig_mod
        else:
            return model


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


def atomic_write(path: str | Path, write: Callable[[Any], None]) -> Path:
    """Call `write(binary_file)` on a temporary file next to `path`, then move it into place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
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


def read_checkpoint(path: str | Path, map_location="cpu") -> dict:
    """`torch.load(weights_only=True)` with errors that name the file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    try:
        checkpoint = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # torch raises RuntimeError, UnpicklingError, EOFError, ... for bad files
        raise CheckpointError(f"cannot read checkpoint {path} ({path.stat().st_size} bytes): the file is "
                              f"truncated, corrupt or not a checkpoint ({type(err).__name__}: {err})") from err
    if not isinstance(checkpoint, dict) or "model" not in checkpoint:
        raise CheckpointError(f"{path} is not a srpose-fast training checkpoint (no 'model' entry)")
    return checkpoint


def _shown(keys) -> str:
    keys = sorted(keys)
    more = f" ... and {len(keys) - _MAX_KEYS_SHOWN} more" if len(keys) > _MAX_KEYS_SHOWN else ""
    return ", ".join(keys[:_MAX_KEYS_SHOWN]) + more


def check_compatible(state: dict, model: nn.Module, *, path: str | Path, checkpoint_model: str | None,
                     expected_model: str | None) -> None:
    """Raise CheckpointMismatchError naming both models and the missing, unexpected and
    mis-shaped keys when `state` does not fit `model` exactly."""
    own = unwrap_model(model).state_dict()
    missing = set(own) - set(state)
    unexpected = set(state) - set(own)
    shapes = {k: (tuple(state[k].shape), tuple(own[k].shape)) for k in set(own) & set(state)
              if tuple(state[k].shape) != tuple(own[k].shape)}
    names_differ = checkpoint_model and expected_model and checkpoint_model != expected_model
    if not (missing or unexpected or shapes or names_differ):
        return
    lines = [f"checkpoint {path} holds model {checkpoint_model or '(unnamed)'!r}, "
             f"but the model being loaded is {expected_model or '(unnamed)'!r}"]
    if missing:
        lines.append(f"  {len(missing)} keys missing from the checkpoint: {_shown(missing)}")
    if unexpected:
        lines.append(f"  {len(unexpected)} unexpected keys in the checkpoint: {_shown(unexpected)}")
    if shapes:
        shown = [f"{k} {shapes[k][0]} vs {shapes[k][1]}" for k in sorted(shapes)[:_MAX_KEYS_SHOWN]]
        more = f" ... and {len(shapes) - _MAX_KEYS_SHOWN} more" if len(shapes) > _MAX_KEYS_SHOWN else ""
        lines.append(f"  {len(shapes)} keys with other shapes (checkpoint vs model): {', '.join(shown)}{more}")
    if not (missing or unexpected or shapes):
        lines.append("  the weights fit, but the names differ; pass the right model name or build that model")
    raise CheckpointMismatchError("\n".join(lines))


def load_checkpoint(path: str | Path, model: nn.Module, *, optimizer=None, scheduler=None, scaler=None,
                    model_name: str | None = None, restore_rng: bool = False, rank: int = 0,
                    map_location="cpu") -> dict:
    """Load a checkpoint into `model` (and, when given, the optimiser, scheduler and scaler).

    Args:
        model_name: the zoo name of `model`; a checkpoint saved for another name is refused.
        restore_rng: also set this process's random generators (entry `rank` of the saved list,
            or entry 0 when the checkpoint was written by fewer processes).
    Returns the checkpoint dict (epoch, iteration, config, ...).
    Raises FileNotFoundError, CheckpointError (unreadable file), CheckpointMismatchError.
    """
    checkpoint = read_checkpoint(path, map_location=map_location)
    check_compatible(checkpoint["model"], model, path=path, checkpoint_model=checkpoint.get("model_name"),
                     expected_model=model_name)
    unwrap_model(model).load_state_dict(checkpoint["model"])
    for name, obj in (("optimizer", optimizer), ("scheduler", scheduler), ("scaler", scaler)):
        if obj is None:
            continue
        if checkpoint.get(name) is None:
            if name == "scaler":  # saved without fp16 (bf16 or fp32): the new fp16 run starts a fresh scale
                continue
            raise CheckpointError(f"checkpoint {path} has no {name} state to resume from")
        obj.load_state_dict(checkpoint[name])
    if restore_rng:
        states = checkpoint.get("rng") or []
        if not states:
            raise CheckpointError(f"checkpoint {path} has no random generator states")
        restore_rng_state(states[rank] if rank < len(states) else states[0])
    return checkpoint
