"""Which project wrote a checkpoint, and its keys renamed to this project's (SPEC.md section 8).

| layout | file | what changes |
|---|---|---|
| srpose-fast | {format_version, model_name, model, ...} | nothing |
| SRPose fork, mmpose 0.x (mmcv 1.x) | {meta, state_dict[, optimizer]} | `keypoint_head.` -> `head.` |
| mmpose 1.x (mmengine) | {meta, state_dict[, message_hub, optimizer, param_schedulers]} | `data_preprocessor.*` dropped |
| bare state dict (torchvision, the official HRNet / SimpleBaseline repos) | {name: tensor} | `fc.*` dropped; `deconv_layers.*`, `final_layer.*` -> `head.`; the rest -> `backbone.` |
| state dict with this project's names | {name: tensor}, `backbone.*`, `head.*` | nothing |

A leading `module.` (DataParallel) is stripped everywhere. The names after the prefixes are the same in
all of them: this project keeps the original module names so that the mapping stays a prefix change.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import torch

from .errors import CheckpointError

NATIVE = "srpose-fast checkpoint"
SRPOSE_FORK = "SRPose checkpoint (its mmpose 0.x fork, mmcv 1.x)"
MMPOSE_0X = "mmpose 0.x checkpoint (mmcv 1.x)"
MMPOSE_1X = "mmpose 1.x checkpoint (mmengine)"
BARE = "bare state dict (torchvision / official HRNet or SimpleBaseline names)"
PROJECT_NAMES = "state dict with srpose-fast names"

DATA_PARALLEL = "module."
OWN_PREFIXES = ("backbone.", "head.")
MMPOSE_0X_HEAD = "keypoint_head."
MMPOSE_1X_PREPROCESSOR = "data_preprocessor."
CLASSIFIER = "fc."  # torchvision's ImageNet classifier: no place in a pose model
BARE_HEAD_MODULES = ("deconv_layers.", "final_layer.")  # the official SimpleBaseline / HRNet pose heads
SRPOSE_HEAD_MARK = "head.lr_head."  # only the SRPose head has an LR heatmap branch


@dataclass
class MappedWeights:
    """A checkpoint's weights under this project's names, and what was done to get them.

    `model_name` and `keypoint_set` are known for srpose-fast checkpoints only; `changes` are
    human-readable lines ("renamed keypoint_head.* -> head.* (147 keys)"); `ignored_entries` are the
    file's top-level entries that hold no model weights (optimizer, meta, ...).
    """

    state: dict[str, torch.Tensor]
    layout: str
    changes: list[str] = field(default_factory=list)
    ignored_entries: list[str] = field(default_factory=list)
    model_name: str | None = None
    keypoint_set: str | None = None


def _native(obj: Mapping) -> MappedWeights:
    config = obj.get("config") if isinstance(obj.get("config"), Mapping) else {}
    return MappedWeights(dict(obj["model"]), NATIVE, ignored_entries=sorted(str(k) for k in obj if k != "model"),
                         model_name=obj.get("model_name"),
                         keypoint_set=obj.get("keypoint_set") or config.get("keypoint_set"))


def _count(changes: list[str], what: str, n: int) -> None:
    if n:
        changes.append(f"{what} ({n} key{'s' if n > 1 else ''})")


def map_to_native(obj: object, path: str | Path) -> MappedWeights:
    """Detect the layout of what a checkpoint file holds and rename its keys to this project's.
    Raises CheckpointError for a file that holds no state dict."""
    if not isinstance(obj, Mapping):
        raise CheckpointError(f"{path} holds a {type(obj).__name__}, not a checkpoint (a dict of weights)")
    if "format_version" in obj and isinstance(obj.get("model"), Mapping):
        return _native(obj)
    meta = obj.get("meta") if isinstance(obj.get("meta"), Mapping) else {}
    wrapper = next((key for key in ("state_dict", "model") if isinstance(obj.get(key), Mapping)), None)
    raw = obj[wrapper] if wrapper else obj
    ignored = sorted(str(k) for k in obj if k != wrapper) if wrapper else []

    changes: list[str] = []
    tensors = {str(k): v for k, v in raw.items() if isinstance(v, torch.Tensor)}
    _count(changes, "skipped non-tensor entries", len(raw) - len(tensors))
    if not tensors:
        shown = ", ".join(sorted(str(k) for k in raw)[:8])
        raise CheckpointError(f"{path} holds no weights (no tensors among its entries: {shown or 'none'})")

    stripped = {k[len(DATA_PARALLEL):] if k.startswith(DATA_PARALLEL) else k: v for k, v in tensors.items()}
    _count(changes, f"stripped the DataParallel prefix {DATA_PARALLEL}", sum(k.startswith(DATA_PARALLEL) for k in tensors))

    bare = not any(k.startswith((*OWN_PREFIXES, MMPOSE_0X_HEAD)) for k in stripped)
    state: dict[str, torch.Tensor] = {}
    renamed_head = dropped_preprocessor = dropped_classifier = to_head = to_backbone = 0
    for key, value in stripped.items():
        if key.startswith(MMPOSE_1X_PREPROCESSOR):
            dropped_preprocessor += 1
        elif key.startswith(MMPOSE_0X_HEAD):
            state["head." + key[len(MMPOSE_0X_HEAD):]] = value
            renamed_head += 1
        elif not bare:
            state[key] = value
        elif key.startswith(CLASSIFIER):
            dropped_classifier += 1
        elif key.startswith(BARE_HEAD_MODULES):
            state["head." + key] = value
            to_head += 1
        else:
            state["backbone." + key] = value
            to_backbone += 1
    _count(changes, f"renamed {MMPOSE_0X_HEAD}* -> head.*", renamed_head)
    _count(changes, f"dropped {MMPOSE_1X_PREPROCESSOR}* (mmpose 1.x normalisation buffers)", dropped_preprocessor)
    _count(changes, f"dropped {CLASSIFIER}* (an ImageNet classifier)", dropped_classifier)
    _count(changes, f"prefixed {' / '.join(m + '*' for m in BARE_HEAD_MODULES)} with head.", to_head)
    _count(changes, "prefixed the other keys with backbone.", to_backbone)

    if "mmengine_version" in meta or "message_hub" in obj:
        layout = MMPOSE_1X
    elif renamed_head:
        layout = SRPOSE_FORK if any(k.startswith(SRPOSE_HEAD_MARK) for k in state) else MMPOSE_0X
    elif bare:
        layout = BARE
    else:
        layout = PROJECT_NAMES
    return MappedWeights(state, layout, changes, ignored)
