"""bottomup: Associative Embedding test time, the decode alone and whole-image inference.

Decode cases: the eval outputs of one image (batch 1, flip test) with people in them
(`benchmarking.bottomup_outputs`), at the input size (SR head) or a quarter of it (the simple head, resized
by project2image), to people in image coordinates. Sizes: 512x704 (a 480x640 COCO image) in the full
profile; smaller in quick and tiny.
- reference: the original's parse as it runs (`reference.bottomup_parser`: torch.topk, then the grouping,
  per-joint loops for adjust, numpy over every joint's whole map for refine);
- providers: `decode_bottomup` with the NMS/top-k backend "torch" (torch ops; adjust and refine vectorised
  over the missing joints only) and "triton" (one kernel for flip merge + NMS + top-k).
Checked: the same people with the same keypoints, keypoint scores and person scores, bit for bit (peaks are
kept off the border, where a resized map's repeated edge makes ties the original's torch.topk orders freely).

Inference cases: a bottom-up zoo model on one resized image with flip test, images/s. Reference: the
original's forward_test (the backbone and head on the image, then on the mirrored image, then the parse
above); ours: `model.predict` (both images in one batch, the fused decode). A random network finds few
people, so these times are the network's; the decode cases time the decode.

Bytes: the outputs read once (decode). FLOPs: not counted.
"""
from __future__ import annotations

import copy

import numpy as np
import torch

from ...codecs.associative_embedding import AssociativeEmbedding
from ...codecs.bottomup_decode import decode_bottomup
from ...data.bottomup_resize import bottomup_test_size
from ...keypoint_sets import COCO
from ...ops.bottomup_topk import SUPPORTED_BACKENDS
from ...reference.bottomup_parser import reference_decode_bottomup
from ..bottomup_outputs import synthetic_bottomup_outputs
from ..cases import Case, CheckResult, Provider
from .common import Settings, require_backend

JOINTS = COCO.num_keypoints
PEOPLE = 8
# (image H, W) -> network input (H', W') by the test-time rule; the NMS of HRNet-W32 (11/5) and ResNet-50 (5/2)
IMAGE_SIZES = {"full": (480, 640), "quick": (240, 320), "tiny": (96, 128)}
INFER_MODELS = {"full": ("bottomup_sr_hrnet_w32", "bottomup_sr_res50"), "quick": ("bottomup_demo",),
                "tiny": ("bottomup_demo",)}


def _decode_inputs(resized, height: int, width: int, seed: int, device: torch.device):
    """The outputs' maps are (height, width); `resized` (the test-time resize) gives input size, center, scale."""
    counter = [seed]

    def make():
        counter[0] += 1
        outputs, flipped = synthetic_bottomup_outputs(PEOPLE, COCO.flip_indices, height, width, seed=counter[0],
                                                      margin=3)
        return {"outputs": outputs.to(device), "flipped": flipped.to(device), "input_size": resized.size,
                "center": resized.center, "scale": resized.scale}
    return make


def same_people(tolerance: float):
    """The check: the reference's people, with keypoints (image px), keypoint and person scores within
    `tolerance` (0 for the decode: bit for bit)."""
    def check(inputs, expected, output, provider) -> CheckResult:
        if len(expected) != len(output):
            return CheckResult(False, float("inf"), tolerance, "people",
                               f"{len(output)} people, the reference {len(expected)}")
        error = 0.0
        for name in ("keypoints", "keypoint_scores", "scores"):
            a, b = getattr(expected, name), getattr(output, name)
            if a.shape != b.shape:
                return CheckResult(False, float("inf"), tolerance, "image px", f"{name} shapes differ")
            error = max(error, float(np.abs(a.astype(np.float64) - b).max(initial=0.0)))
        return CheckResult(error <= tolerance, error, tolerance, "image px / score",
                           f"{len(expected)} people; max difference {error:.3g} (keypoints, keypoint and person "
                           f"scores)")
    return check


def _decode_provider(backend: str, codec: AssociativeEmbedding, settings: Settings) -> Provider:
    def setup():
        require_backend(backend, settings.device, op="bottomup_topk", supported=SUPPORTED_BACKENDS)

        def run(inputs):
            return decode_bottomup(inputs["outputs"], inputs["flipped"], codec=codec, input_size=inputs["input_size"],
                                   center=inputs["center"], scale=inputs["scale"], backend=backend)[0]
        return run
    return Provider(backend, setup, host_sync=True)


def _reference_decode(codec: AssociativeEmbedding) -> Provider:
    def run(inputs):
        return reference_decode_bottomup(inputs["outputs"], inputs["flipped"], codec=codec,
                                         input_size=inputs["input_size"], center=inputs["center"],
                                         scale=inputs["scale"])
    return Provider("reference", lambda: run, host_sync=True)


def _decode_cases(settings: Settings) -> list[Case]:
    size = IMAGE_SIZES[settings.profile]
    input_size = settings.pick(512, 256, 128)
    resized = bottomup_test_size(*size, input_size=input_size)
    cases = []
    heads = (("SR head", 1, 11), ("SR head", 1, 5), ("simple head", 4, 5))
    for head, stride, nms in settings.pick(heads, heads, heads[1:]):
        codec = AssociativeEmbedding(input_size=input_size, nms_kernel=nms, nms_padding=nms // 2)
        height, width = resized.size[0] // stride, resized.size[1] // stride
        name = f"decode {head} nms{nms} {height}x{width}"
        cases.append(Case(
            suite="bottomup", op=f"decode {head}", name=name, shape=f"(1,{2 * JOINTS},{height},{width})",
            dtype="float32", batch=1, make_inputs=_decode_inputs(resized, height, width, nms, settings.device),
            reference=_reference_decode(codec),
            providers=[_decode_provider(b, codec, settings) for b in ("torch", "triton")],
            check=same_people(0.0), bytes_moved=2 * 2 * JOINTS * height * width * 4, items_name="images"))
    return cases


def _infer_inputs(resized, device: torch.device):
    def make():
        return {"images": torch.randn(1, 3, *resized.size, device=device), "center": resized.center,
                "scale": resized.scale}
    return make


def _reference_infer(model, settings: Settings) -> Provider:
    """The original's forward_test: two network passes (image, mirrored image), then its parse."""
    def setup():
        net = copy.deepcopy(model).to(settings.device).eval()

        @torch.no_grad()
        def run(inputs):
            images = inputs["images"]
            outputs = net.head(net.backbone(images))
            flipped = net.head(net.backbone(torch.flip(images, [3])))
            return reference_decode_bottomup(outputs, flipped, codec=net.codec, input_size=images.shape[-2:],
                                             center=inputs["center"], scale=inputs["scale"])
        return run
    return Provider("reference", setup, host_sync=True)


def _ours_infer(model, backend: str, settings: Settings) -> Provider:
    def setup():
        require_backend(backend, settings.device, op="bottomup_topk", supported=SUPPORTED_BACKENDS)
        net = copy.deepcopy(model).to(settings.device).eval()
        net.set_backend(backend)  # every fused op of the model (the SR head's forward and the decode)

        def run(inputs):
            return net.predict(inputs["images"], flip_test=True, center=inputs["center"], scale=inputs["scale"])[0]
        return run
    return Provider(f"predict ({backend})", setup, host_sync=True)


def _infer_cases(settings: Settings) -> list[Case]:
    from ...models import build_model

    size = IMAGE_SIZES[settings.profile]
    cases = []
    for name in INFER_MODELS[settings.profile]:
        model = build_model(name, backend="torch")
        resized = bottomup_test_size(*size, input_size=model.codec.input_size)
        cases.append(Case(
            suite="bottomup", op=f"infer {name}", name=f"infer {name} {resized.size[0]}x{resized.size[1]}",
            shape=f"(1,3,{resized.size[0]},{resized.size[1]})", dtype="float32", batch=1,
            make_inputs=_infer_inputs(resized, settings.device), reference=_reference_infer(model, settings),
            providers=[_ours_infer(model, b, settings) for b in ("torch", "triton")],
            check=same_people(1e-3),
            items_name="images", extra={"model": name}))
    return cases


def build_cases(settings: Settings) -> list[Case]:
    return _decode_cases(settings) + _infer_cases(settings)
