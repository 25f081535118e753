"""Load the weights of any checkpoint layout users bring into a model, strictly.

    load_weights(model, "released/best.pth", model_name="srpose_hrnet_w32")

reads the file without running its code (`reading`), detects its layout and renames its keys
(`layouts`), checks that every name and shape fits the model, then loads. A file that does not fit is
refused with one CheckpointMismatchError that says which model the file holds (`identify`), which model
is being loaded, and the first missing, unexpected and wrongly shaped keys with their counts.
"""
from __future__ import annotations

from pathlib import Path

from torch import nn

from ...keypoint_sets import KEYPOINT_SETS
from .errors import CheckpointMismatchError
from .identify import COUNTER_SUFFIX, Identity, identify, keypoint_label, model_label
from .layouts import MappedWeights, map_to_native
from .reading import read_file


def unwrap_model(model: nn.Module) -> nn.Module:
    """The module inside DistributedDataParallel / DataParallel / torch.compile wrappers."""
    while True:
        if isinstance(model, (nn.parallel.DistributedDataParallel, nn.DataParallel)):
            model = model.module
        elif hasattr(model, "_orig_mod"):
            model = model._orig_mod
        else:
            return model


def read_weights(path: str | Path) -> MappedWeights:
    """The weights a checkpoint file holds, under this project's names (see `layouts`)."""
    return map_to_native(read_file(path), path)


def _what_the_file_holds(weights: MappedWeights, found: Identity | None) -> str:
    if weights.model_name is not None:  # a srpose-fast checkpoint names its model and keypoint set
        kset = KEYPOINT_SETS.get(weights.keypoint_set or "")
        if kset is not None:
            return f"{weights.model_name} ({kset.name}, {kset.num_keypoints} keypoints)"
        if found is not None and not found.backbone_only:
            return f"{weights.model_name} ({keypoint_label(found.num_keypoints)})"
        return weights.model_name
    if found is not None:
        return f"{found} (a {weights.layout})"
    return f"a {weights.layout} that matches no zoo model"


def _hint(found: Identity | None, weights: MappedWeights, model: nn.Module, model_name: str | None,
          fits: bool) -> str | None:
    kset = getattr(model, "keypoint_set", None)
    if fits:
        return (f"the weights fit, but the file was saved for {weights.model_name}: build that model, or pass "
                f"its name")
    if found is None:
        return None
    if found.backbone_only:
        return "a backbone-only file initialises a backbone: pass it as pretrained= (a config's 'pretrained')"
    if found.model == (model_name or type(model).__name__) and kset is not None and found.num_keypoints != kset.num_keypoints:
        return (f"build the model for the file's keypoints ({keypoint_label(found.num_keypoints)}): "
                f"keypoint_set= in build_model, \"keypoint_set\" in a config")
    return f"build {found.model} to load this file"


def check_fit(weights: MappedWeights, model: nn.Module, *, path: str | Path, model_name: str | None = None) -> None:
    """Raise CheckpointMismatchError unless `weights` has exactly the model's names and shapes
    (BatchNorm's num_batches_tracked may be absent) and, for a checkpoint that names its model,
    that name is `model_name`."""
    own = unwrap_model(model).state_dict()
    state = weights.state
    missing = [k for k in own if k not in state and not k.endswith(COUNTER_SUFFIX)]
    unexpected = [k for k in state if k not in own]
    shapes = [(k, tuple(state[k].shape), tuple(own[k].shape)) for k in own
              if k in state and tuple(state[k].shape) != tuple(own[k].shape)]
    names_differ = bool(weights.model_name and model_name and weights.model_name != model_name)
    if not (missing or unexpected or shapes or names_differ):
        return
    fits = not (missing or unexpected or shapes)
    plain = unwrap_model(model)
    found = None if fits else identify(state, model=plain, model_name=model_name)
    raise CheckpointMismatchError(path, model_label(plain, model_name), missing, unexpected, shapes,
                                  file_holds=_what_the_file_holds(weights, found),
                                  hint=_hint(found, weights, plain, model_name, fits))


def load_mapped(model: nn.Module, weights: MappedWeights, *, path: str | Path, model_name: str | None = None) -> None:
    """`check_fit`, then load: for weights already read with `read_weights`."""
    check_fit(weights, model, path=path, model_name=model_name)
    unwrap_model(model).load_state_dict(weights.state)


def load_weights(model: nn.Module, path: str | Path, *, model_name: str | None = None) -> MappedWeights:
    """Load a checkpoint of any supported layout into `model` (in place), strictly.

    Args:
        model: the model (wrappers such as DistributedDataParallel are looked through).
        path: an srpose-fast checkpoint, an SRPose release (mmcv 1.x `epoch_N.pth` or `best.pth`), an
            mmpose 0.x / 1.x top-down checkpoint, or a state dict (see `layouts`).
        model_name: the zoo name of `model`; an srpose-fast checkpoint saved for another name is refused.
    Returns the mapped weights (layout, changes made) for reporting.
    Raises FileNotFoundError, CheckpointError (unreadable file), CheckpointMismatchError.
    """
    weights = read_weights(path)
    load_mapped(model, weights, path=path, model_name=model_name)
    return weights
