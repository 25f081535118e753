"""The bottom-up part of the model zoo: `build_model` reads this table for the `bottomup_*` names.

The original's configs (`configs/bottom_up/{sr,hrnet,resnet}/coco/*_512x512.py`, SPEC.md section 6):
the SR head at the input's resolution (512^2, sigma 8) and the Associative Embedding baseline at a
quarter of it (128^2, sigma 2). Both sigmas are the original's default rule, heatmap size / 64, which
this table applies to any input size. NMS kernel (padding = kernel // 2): 11 for the HRNet-W32 SR
model, 5 for the others.

`bottomup_demo` is no original model: it is sized to learn on a CPU in minutes (`srpose-fast demo
--bottom-up`). A narrow HRNet (16 channels at stride 4) and the SR head at 128^2, with two settings of its
own, both measured on the synthetic multi-person set (notes in engine/demo_bottomup.py): sigma =
heatmap size / 32 (4 pixels), and the original's "max" push loss, whose gradient does not vanish when
the tags of different people are equal (the "exp" push's does, and its tags stayed collapsed).
"""
from __future__ import annotations

from dataclasses import dataclass, field

from ..keypoint_sets import KeypointSet, get_keypoint_set
from .backbones import build_backbone, load_pretrained
from .bottomup_model import BottomUpPoseModel
from .heads.bottomup import BottomUpSimpleHead, BottomUpSimpleSRHead

SR_UPSCALE = 4  # the SR head's pixel shuffle: heatmaps at the input's resolution
SIMPLE_STRIDE = 4  # the baseline's heatmaps: a quarter of the input
SIGMA_DIVISOR = 64  # sigma = heatmap size / 64 (the original's HeatmapGenerator default; 8 at 512, 2 at 128)


@dataclass(frozen=True)
class BottomUpSpec:
    backbone: str
    head: str  # "sr" | "simple"
    nms_kernel: int
    backbone_kwargs: dict = field(default_factory=dict)
    num_deconv_layers: int = 0
    input_size: int = 512
    head_kwargs: dict = field(default_factory=dict)
    sigma_divisor: int = SIGMA_DIVISOR
    description: str = ""


_HRNET_SINGLE = {"multiscale_output": False}

BOTTOMUP_SPECS = {
    "bottomup_sr_hrnet_w32": BottomUpSpec("hrnet_w32", "sr", 11, _HRNET_SINGLE,
                                          description="AE + SR head, HRNet-W32 (paper: 67.1 AP)"),
    "bottomup_sr_res50": BottomUpSpec("resnet50", "sr", 5, num_deconv_layers=3,
                                      description="AE + SR head, ResNet-50 (paper: 48.4 AP)"),
    "bottomup_simple_hrnet_w32": BottomUpSpec("hrnet_w32", "simple", 5, _HRNET_SINGLE,
                                              description="Associative Embedding, HRNet-W32 (paper: 65.3 AP)"),
    "bottomup_simple_res50": BottomUpSpec("resnet50", "simple", 5, num_deconv_layers=3,
                                          description="Associative Embedding, ResNet-50 (paper: 46.7 AP)"),
    "bottomup_demo": BottomUpSpec("hrnet_w8_small", "sr", 5, {**_HRNET_SINGLE, "width": 16}, input_size=128,
                                  head_kwargs={"loss_type": "max"}, sigma_divisor=32,
                                  description="a narrow AE + SR head model that trains on a CPU in minutes"),
}


def _square_size(input_size) -> int:
    if isinstance(input_size, int):
        size = input_size
    else:
        height, width = (int(v) for v in input_size)
        if height != width:
            raise ValueError(f"bottom-up models train on square inputs, got input_size {tuple(input_size)}")
        size = height
    if size <= 0 or size % 64:
        raise ValueError(f"a bottom-up input size must be a positive multiple of 64, got {size}")
    return size


def build_bottomup_model(name: str, *, keypoint_set: str | KeypointSet = "coco", input_size=None,
                         pretrained: str | None = None, backend: str = "auto", **head_overrides) -> BottomUpPoseModel:
    """A bottom-up zoo model; `build_model` calls it (and loads `checkpoint=`). `input_size` is the square
    training size (an int, or (S, S)); the other arguments are `build_model`'s."""
    from ..codecs.associative_embedding import AssociativeEmbedding

    if name not in BOTTOMUP_SPECS:
        raise ValueError(f"unknown bottom-up model {name!r}; known: {', '.join(sorted(BOTTOMUP_SPECS))}")
    spec = BOTTOMUP_SPECS[name]
    kset = get_keypoint_set(keypoint_set)
    size = _square_size(spec.input_size if input_size is None else input_size)
    backbone = build_backbone(spec.backbone, **spec.backbone_kwargs)
    if pretrained is not None:
        load_pretrained(backbone, pretrained)
    # One map: the coarsest when deconvolutions bring it back up (ResNet), else the finest (stride 4).
    channels = tuple(backbone.out_channels)
    in_index = len(channels) - 1 if spec.num_deconv_layers else 0
    heatmap_size = size if spec.head == "sr" else size // SIMPLE_STRIDE
    codec = AssociativeEmbedding(input_size=size, heatmap_size=heatmap_size, sigma=heatmap_size / spec.sigma_divisor,
                                 nms_kernel=spec.nms_kernel, nms_padding=spec.nms_kernel // 2,
                                 flip_indices=tuple(kset.flip_indices))
    kwargs = {"num_deconv_layers": spec.num_deconv_layers, **spec.head_kwargs, **head_overrides,
              "num_joints": kset.num_keypoints, "in_index": in_index, "codec": codec, "backend": backend}
    if spec.head == "sr":
        head = BottomUpSimpleSRHead(channels[in_index], pixel_shuffle=SR_UPSCALE, **kwargs)
    else:
        head = BottomUpSimpleHead(channels[in_index], **kwargs)
    return BottomUpPoseModel(backbone, head, keypoint_set=kset)
