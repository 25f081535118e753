"""Load an ImageNet (or pose) checkpoint from a local file into a backbone, checking every key.

Accepted files: torchvision / timm ResNet, official / timm / mmpose HRNet, HRFormer's ImageNet release
(`hrt_small.pth`: the classification model under `model`), bare or wrapped in `state_dict` / `model` /
`module`, with `module.` (DataParallel) and `backbone.` (mmpose / mmcls) prefixes. Our parameter names
are those layouts' names, so after the prefixes come off the mapping is the identity; what is left is
deciding which file keys are known to have no place in a backbone.
"""
from __future__ import annotations

import re
import warnings
from collections.abc import Mapping
from pathlib import Path

import torch
from torch import nn

from ..weights.errors import CheckpointMismatchError
from ..weights.reading import read_file

WRAPPER_KEYS = ("state_dict", "model", "module")
# Classification heads: torchvision/timm ResNet `fc`; HRNet's and HRFormer's ImageNet heads (both
# incre_modules, downsamp_modules, final_layer, classifier). The official pose HRNet's `final_layer`
# is its 1x1 heatmap conv.
CLASSIFICATION_PREFIXES = ("fc.", "classifier.", "incre_modules.", "downsamp_modules.", "final_layer.")
HEAD_PREFIXES = ("head.", "keypoint_head.", "module.head.", "module.keypoint_head.")  # a pose model's head
FUSE_ROW = re.compile(r"^(stage\d+\.\d+)\.fuse_layers\.(\d+)\.")
BRANCH = re.compile(r"^(stage\d+\.\d+)\.branches\.(\d+)\.")


def _unwrap(obj: object, path: Path) -> Mapping[str, object]:
    """Descend through training-checkpoint wrappers until the mapping that holds the tensors."""
    while isinstance(obj, Mapping):
        inner = next((obj[key] for key in WRAPPER_KEYS if isinstance(obj.get(key), Mapping)), None)
        if inner is None:
            return obj
        obj = inner
    raise ValueError(f"checkpoint {path} holds a {type(obj).__name__}, not a state dict")


def _strip(key: str, prefix: str) -> str:
    while key.startswith(prefix):
        key = key[len(prefix):]
    return key


def load_pretrained(module: nn.Module, path: str | Path, *, strict: bool = True) -> list[str]:
    """Load the checkpoint at `path` into `module`; return the file's keys that were ignored (sorted).

    Ignored: non-tensor entries, keys outside `backbone.` when the file has a backbone section (a whole
    pose or classification model: its head/neck), classification-head keys, and the fuse rows of a
    multiscale checkpoint that a single-scale HRNet does not build. `num_batches_tracked` loads when
    present and is not required. With `strict=False`, other unplaceable keys are ignored too and keys the
    file lacks keep their initial values (with a warning); shape mismatches raise either way.
    """
    path = Path(path)
    raw = _unwrap(read_file(path), path)  # weights-only, with placeholders for the metadata other projects keep

    ignored: list[str] = []
    entries = {}  # our key -> (file key, tensor)
    for file_key, value in raw.items():
        if isinstance(value, torch.Tensor):
            entries[_strip(str(file_key), "module.")] = (str(file_key), value)
        else:
            ignored.append(str(file_key))
    if any(key.startswith("backbone.") for key in entries):
        backbone = {}
        for key, entry in entries.items():
            if key.startswith("backbone."):
                backbone[_strip(_strip(key, "backbone."), "module.")] = entry
            else:
                ignored.append(entry[0])
        heads = [key for key in ignored if key.startswith(HEAD_PREFIXES)]
        if heads:  # a whole pose model: say that its head is not used here
            warnings.warn(f"load_pretrained: {path} is a whole pose model; its {len(heads)} head keys are not "
                          f"loaded here (the backbone is). To load every weight, pass it as checkpoint= "
                          f"(build_model) / --checkpoint / init_from", stacklevel=2)
        entries = backbone
    if not entries:
        raise ValueError(f"checkpoint {path} holds no tensors")

    model_state = module.state_dict()
    # A single-scale HRNet's last module runs every branch but builds fuse row 0 only, while
    # ImageNet files are multiscale: their rows for the other branches have nowhere to go.
    branches = {m.groups() for key in model_state if (m := BRANCH.match(key))}
    rows = {m.groups() for key in model_state if (m := FUSE_ROW.match(key))}

    def known_extra(key: str) -> bool:
        if key.startswith(CLASSIFICATION_PREFIXES):
            return True
        row = FUSE_ROW.match(key)
        return row is not None and row.groups() in branches and row.groups() not in rows

    loadable = {}
    unexpected = []
    shape_mismatches = []
    for key, (file_key, tensor) in entries.items():
        if key in model_state:
            if tensor.shape != model_state[key].shape:
                shape_mismatches.append((file_key, tuple(tensor.shape), tuple(model_state[key].shape)))
            else:
                loadable[key] = tensor
        elif known_extra(key):
            ignored.append(file_key)
        else:
            unexpected.append(file_key)
    missing = [key for key in model_state if key not in entries and not key.endswith("num_batches_tracked")]

    if shape_mismatches or (strict and (missing or unexpected)):
        raise CheckpointMismatchError(path, type(module).__name__, missing, unexpected, shape_mismatches)
    if missing:
        warnings.warn(f"load_pretrained: {len(missing)} keys not in {path} keep their initial values, "
                      f"e.g. {missing[:5]}", stacklevel=2)
    ignored.extend(unexpected)
    module.load_state_dict(loadable, strict=False)
    return sorted(ignored)
