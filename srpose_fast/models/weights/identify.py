"""Say which zoo model a state dict belongs to, for error messages and for `convert` without --model.

A zoo model's parameter names and shapes come from building it on the meta device (no memory, no
initialisation). Names do not depend on the keypoint set and only the head's shapes do, so a state dict
whose names match a zoo model and whose shapes differ only in the head by a factor of K is that model
trained on another keypoint set.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import torch
from torch import nn

from ...keypoint_sets import KEYPOINT_SETS, get_keypoint_set

COUNTER_SUFFIX = "num_batches_tracked"  # BatchNorm's step counter: optional in a file
HEAD_MARKS = {"srpose": "head.lr_head.", "sr": "head.converge.conv.", "simple": "head.final_layer."}


@dataclass(frozen=True)
class Identity:
    """What a state dict holds: `model` (a zoo name, or the name a caller gave its own model),
    `num_keypoints`, and whether it is the model's backbone only."""

    model: str
    num_keypoints: int | None
    backbone_only: bool = False

    def __str__(self) -> str:
        if self.backbone_only:
            return f"the backbone of {self.model} only (no head weights)"
        return f"{self.model} ({keypoint_label(self.num_keypoints)})"


def keypoint_label(num_keypoints: int | None) -> str:
    names = [s.name for s in KEYPOINT_SETS.values() if s.num_keypoints == num_keypoints]
    return f"{names[0]}, {num_keypoints} keypoints" if names else f"{num_keypoints} keypoints"


def model_label(model: nn.Module, name: str | None) -> str:
    """'srpose_hrnet_w32 (coco, 17 keypoints)' for a model being loaded."""
    kset = getattr(model, "keypoint_set", None)
    label = name or type(model).__name__
    return f"{label} ({kset.name}, {kset.num_keypoints} keypoints)" if kset is not None else label


def _shapes(state) -> dict[str, tuple[int, ...]]:
    return {k: tuple(v.shape) for k, v in state.items()}


def _names(shapes) -> set[str]:
    return {k for k in shapes if not k.endswith(COUNTER_SUFFIX)}


def build_without_weights(name: str, **kwargs) -> nn.Module:
    """A zoo model on the meta device (names, shapes and settings, no memory, no initialisation), or on the
    CPU when a constructor computes with its tensors (which meta tensors cannot)."""
    from ..build import build_model

    try:
        with torch.device("meta"):
            return build_model(name, **kwargs)
    except (NotImplementedError, RuntimeError):
        return build_model(name, **kwargs)


@lru_cache(maxsize=None)
def zoo_shapes(name: str) -> dict[str, tuple[int, ...]]:
    """Parameter names and shapes of a zoo model with COCO's 17 keypoints."""
    return _shapes(build_without_weights(name).state_dict())


def _keypoints_if_same_model(shapes, reference, reference_k: int) -> int | None:
    """K when `shapes` are `reference`'s names and shapes up to the head's keypoint count, else None."""
    if _names(shapes) != _names(reference):
        return None
    ks = set()
    for key in _names(reference):
        a, b = shapes[key], reference[key]
        if a == b:
            continue
        differing = [d for d in range(len(a)) if len(a) == len(b) and a[d] != b[d]]
        if not key.startswith("head.") or len(differing) != 1 or (a[differing[0]] * reference_k) % b[differing[0]]:
            return None
        ks.add(a[differing[0]] * reference_k // b[differing[0]])
    if len(ks) > 1:
        return None
    return ks.pop() if ks else reference_k


def _candidates(shapes) -> list[str]:
    from ..build import MODEL_SPECS

    kinds = [kind for kind, mark in HEAD_MARKS.items() if any(k.startswith(mark) for k in shapes)]
    return [name for name, spec in sorted(MODEL_SPECS.items()) if not kinds or spec.head in kinds]


def identify(state, *, model: nn.Module | None = None, model_name: str | None = None) -> Identity | None:
    """The model `state` (names as this project's) holds, or None when nothing matches. `model` (being
    loaded, with its name) is tried first, then the zoo models with the same kind of head."""
    shapes = _shapes(state)
    references: list[tuple[str, dict, int]] = []
    kset = getattr(model, "keypoint_set", None)
    if model is not None and kset is not None:
        references.append((model_name or type(model).__name__, _shapes(model.state_dict()), kset.num_keypoints))
    coco = get_keypoint_set("coco").num_keypoints
    references += [(name, None, coco) for name in _candidates(shapes) if name != model_name]
    backbone_file = all(k.startswith("backbone.") for k in shapes)
    for name, reference, k in references:
        reference = reference if reference is not None else zoo_shapes(name)
        if backbone_file:
            backbone = {key: s for key, s in reference.items() if key.startswith("backbone.")}
            if _names(shapes) == _names(backbone) and all(shapes[key] == backbone[key] for key in _names(shapes)):
                return Identity(name, None, backbone_only=True)
            continue
        num_keypoints = _keypoints_if_same_model(shapes, reference, k)
        if num_keypoints is not None:
            return Identity(name, num_keypoints)
    return None
