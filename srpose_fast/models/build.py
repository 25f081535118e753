"""The model zoo: `build_model(name, **overrides)` from a small table of plain constructors."""
from __future__ import annotations

from dataclasses import dataclass, field

from ..codecs.conventions import SRPOSE_STAGE_WEIGHTS, sigma_for_height
from ..codecs.heatmap_codec import HeatmapCodec
from ..keypoint_sets import KeypointSet, get_keypoint_set
from .backbones import build_backbone, load_pretrained
from .bottomup_zoo import BOTTOMUP_SPECS, build_bottomup_model
from .heads import SimpleHead, SRHead, SRPoseHead
from .pose_model import TopDownPoseModel
from .weights import load_weights

FEATURE_STRIDES = (4, 8, 16, 32)  # of the backbones' feature maps, finest first


@dataclass(frozen=True)
class ModelSpec:
    backbone: str
    head: str  # "srpose" | "simple" | "sr"
    backbone_kwargs: dict = field(default_factory=dict)
    head_kwargs: dict = field(default_factory=dict)
    input_size: tuple[int, int] = (256, 192)
    description: str = ""


MODEL_SPECS = {
    "srpose_hrnet_w32": ModelSpec("hrnet_w32", "srpose", {"multiscale_output": True},
                                  description="SRPose, HRNet-W32 multiscale (paper: 75.9 AP)"),
    "srpose_hrnet_w48": ModelSpec("hrnet_w48", "srpose", {"multiscale_output": True},
                                  description="SRPose, HRNet-W48 multiscale"),
    "srpose_res50": ModelSpec("resnet50", "srpose", description="SRPose, ResNet-50 (paper: 73.3 AP)"),
    "srpose_res101": ModelSpec("resnet101", "srpose", description="SRPose, ResNet-101"),
    "sr_hrnet_w32": ModelSpec("hrnet_w32", "sr", {"multiscale_output": False},
                              description="simple head + SR head x4, HRNet-W32 (paper: 75.6 AP)"),
    "sr_res50": ModelSpec("resnet50", "sr", head_kwargs={"num_deconv_layers": 3},
                          description="simple head + SR head x4, ResNet-50 (paper: 72.4 AP)"),
    "simple_hrnet_w32": ModelSpec("hrnet_w32", "simple", {"multiscale_output": False},
                                  head_kwargs={"num_deconv_layers": 0},
                                  description="SimpleBaseline-style head, HRNet-W32 (paper: 74.5 AP)"),
    "simple_res50": ModelSpec("resnet50", "simple", head_kwargs={"num_deconv_layers": 3},
                              description="SimpleBaseline, ResNet-50 (paper: 71.7 AP)"),
    "srpose_hrformer_s": ModelSpec("hrformer_s", "srpose", {"multiscale_output": True},
                                   description="SRPose, HRFormer-S multiscale (paper: 75.6 AP)"),
    "sr_hrformer_s": ModelSpec("hrformer_s", "sr", {"multiscale_output": False},
                               description="simple head + SR head x4, HRFormer-S (paper: 75.0 AP)"),
    "simple_hrformer_s": ModelSpec("hrformer_s", "simple", {"multiscale_output": False},
                                   head_kwargs={"num_deconv_layers": 0},
                                   description="SimpleBaseline-style head, HRFormer-S (paper: 74.0 AP)"),
    # Width 16 rather than 8: on a CPU it costs ~15% more per image (the final SR stage, the same at any width,
    # dominates) and learns faster (AP 0.397 against 0.289 after the same 1,216 steps; the note of issue 15).
    "srpose_demo": ModelSpec("hrnet_w8_small", "srpose", {"multiscale_output": True, "width": 16},
                             head_kwargs={"out_channels": (128, 64, 32, 32)}, input_size=(128, 96),
                             description="a narrow SRPose that trains on a CPU in minutes"),
}


def list_models() -> list[str]:
    return sorted([*MODEL_SPECS, *BOTTOMUP_SPECS])


def build_model(name: str, *, keypoint_set: str | KeypointSet = "coco", input_size: tuple[int, int] | None = None,
                pretrained: str | None = None, checkpoint: str | None = None, backend: str = "auto",
                **head_overrides) -> TopDownPoseModel:
    """Build a zoo model.

    Args:
        name: one of `list_models()`; the `bottomup_*` models are built by `bottomup_zoo.build_bottomup_model`.
        keypoint_set: "coco" | "mpii" | "crowdpose" or a KeypointSet; sets K and the flip indices.
        input_size: (H, W), multiples of 32; the zoo's default otherwise.
        pretrained: path of an ImageNet checkpoint for the backbone (torchvision / mmpose / timm keys).
        checkpoint: path of the whole model's weights, loaded strictly (`weights.load_weights`): a
            srpose-fast checkpoint, an SRPose release (mmcv 1.x), an mmpose 0.x / 1.x top-down checkpoint.
        backend: the backend of the model's fused ops (SR head, loss, decode): "auto" | "torch" | "triton" |
            "cuda" | "cpp" (decode only); `model.set_backend` changes it later.
        head_overrides: keyword arguments of the head's constructor (e.g. out_channels).
    """
    if name not in MODEL_SPECS and name not in BOTTOMUP_SPECS:
        raise ValueError(f"unknown model {name!r}; known: {', '.join(list_models())}")
    if pretrained is not None and checkpoint is not None:
        raise ValueError("pass pretrained= (backbone initialisation) or checkpoint= (all weights), not both")
    if name in BOTTOMUP_SPECS:  # models/bottomup_zoo.py: a square input_size (an int or (S, S))
        model = build_bottomup_model(name, keypoint_set=keypoint_set, input_size=input_size, pretrained=pretrained,
                                     backend=backend, **head_overrides)
        if checkpoint is not None:
            load_weights(model, checkpoint, model_name=name)
        return model
    spec = MODEL_SPECS[name]
    kset = get_keypoint_set(keypoint_set)
    backbone = build_backbone(spec.backbone, **spec.backbone_kwargs)
    if pretrained is not None:
        load_pretrained(backbone, pretrained)
    head_kwargs = {**spec.head_kwargs, **head_overrides, "num_joints": kset.num_keypoints}
    channels = tuple(backbone.out_channels)  # finest first, at FEATURE_STRIDES
    # Each train-mode output's stride, and the target sigma at the final output for 256-pixel-high crops.
    if spec.head == "srpose":
        head = SRPoseHead(in_channels=channels[::-1], **head_kwargs)
        # The LR heatmap at the coarsest map's stride, then each stage's SR output, coarsest stage first.
        strides = (FEATURE_STRIDES[-1],) + tuple(s // r for s, r in zip(FEATURE_STRIDES[::-1], head.upscales))
        sigma_at_256, stage_weights = 8.0, SRPOSE_STAGE_WEIGHTS
    else:
        # One map: the coarsest when deconvolutions bring it back up, else the finest (stride 4).
        deconv = head_kwargs.setdefault("num_deconv_layers", 0)
        in_index = len(channels) - 1 if deconv else 0
        feature_stride = FEATURE_STRIDES[in_index] // 2 ** deconv
        if spec.head == "sr":
            head = SRHead(channels[in_index], in_index=in_index, **head_kwargs)
            strides, sigma_at_256 = (feature_stride // head.converge.upscale,), 8.0
        else:
            head = SimpleHead(channels[in_index], in_index=in_index, **head_kwargs)
            strides, sigma_at_256 = (feature_stride,), 2.0
        stage_weights = (1.0,)
    size = tuple(input_size) if input_size is not None else spec.input_size
    head.codec = HeatmapCodec(size, tuple((size[0] // s, size[1] // s) for s in strides),
                              sigma_for_height(sigma_at_256, size[0]), stage_weights, kset.flip_indices)
    model = TopDownPoseModel(backbone, head, keypoint_set=kset)
    model.set_backend(backend)
    if checkpoint is not None:
        load_weights(model, checkpoint, model_name=name)
    return model
