"""Backbones: ResNet, HRNet and HRFormer feature extractors (lists of maps, finest first) and checkpoint loading."""
from __future__ import annotations

from torch import nn

from .hrformer import HRFormer
from .hrnet import HRNet
from .pretrained import CheckpointMismatchError, load_pretrained
from .resnet import ResNet

__all__ = ["BACKBONES", "CheckpointMismatchError", "HRFormer", "HRNet", "ResNet", "build_backbone", "load_pretrained"]

# name -> (class, constructor arguments); `build_backbone` overrides update the arguments.
BACKBONES: dict[str, tuple[type[nn.Module], dict]] = {
    "resnet18": (ResNet, {"depth": 18}),
    "resnet34": (ResNet, {"depth": 34}),
    "resnet50": (ResNet, {"depth": 50}),
    "resnet101": (ResNet, {"depth": 101}),
    "hrnet_w32": (HRNet, {"width": 32}),
    "hrnet_w48": (HRNet, {"width": 48}),
    # CPU demo: same topology (4 branches, multiscale), narrow and one module/block per stage.
    "hrnet_w8_small": (HRNet, {"width": 8, "stem_channels": 16, "num_modules": (1, 1, 1),
                               "num_blocks": (1, 1, 1, 1)}),
    # HRFormer-S as SRPose trains it (drop path 0.1); its layout is HRFormer's defaults.
    "hrformer_s": (HRFormer, {"drop_path_rate": 0.1}),
}


def build_backbone(name: str, **overrides) -> nn.Module:
    """Build a backbone by name, e.g. `build_backbone("hrnet_w32", multiscale_output=False)`."""
    if name not in BACKBONES:
        raise ValueError(f"unknown backbone {name!r}; known: {', '.join(BACKBONES)}")
    cls, kwargs = BACKBONES[name]
    return cls(**{**kwargs, **overrides})
