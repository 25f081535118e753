"""sr_head_decode: the final SR head's embeddings straight to keypoints (the heatmap-free inference path).

Cases: the final head of SRPose (e = 4 channels per joint, 9x9 kernel, x4 pixel shuffle, 64x48
embeddings -> 256x192 heatmaps) x method (shift, dark) x flip x batch x dtype (float32, bfloat16).
The embeddings hold one smooth bump per joint and the weights are positive, so every heatmap has one
clear maximum (the flipped embeddings: the same joints mirrored, jittered).

Reference ("as SRPose runs it"): `sr_head_reference` on the plain and the flipped embeddings (in
float32: SRPose runs float32, and its numpy decoder cannot read bfloat16), flip-back and averaging on
the device, then `srpose_decode` (shift; heatmaps to the host) or, for dark, the heatmaps to the host
and mmpose's DARK there (`decode.reference_host_decode`). Boxes are the crop itself, so image
and heatmap pixels coincide and the check can read keypoints on the reference's heatmaps.

Providers: `sr_head_decode` with backend "torch" (heatmaps made on the device), "triton" (fused: the
heatmaps are never written), "cuda"; and "triton two ops" = `sr_head(backend="triton")` then
`decode_heatmaps(backend="triton")` (heatmaps written once and read back). Each ends with the
results on the host.

Bytes: embeddings read (twice with the flip) and the weights. FLOPs: the convolution(s).
"""
from __future__ import annotations

import numpy as np
import torch

from ...codecs.conventions import PIXEL_STD
from ...keypoint_sets import COCO
from ...ops.decode import SUPPORTED_BACKENDS as DECODE_BACKENDS
from ...ops.decode import decode_heatmaps
from ...ops.sr_head import SUPPORTED_BACKENDS as SR_HEAD_BACKENDS
from ...ops.sr_head import sr_head, sr_head_reference
from ...reference.pipeline import flip_back, flip_pairs_of
from ..cases import Case, Prepared, Provider, Unavailable, check_keypoints_on_maps
from .common import FP32_ONLY, Settings, require_backend, sync_to_host
from .decode import gaussians, reference_host_decode

JOINTS = COCO.num_keypoints
FLIP_PAIRS = flip_pairs_of(COCO.flip_indices)
E, KERNEL, UPSCALE, H, W = 4, 9, 4, 64, 48
METHODS = ("dark", "shift")  # DARK first, as in decode
PX_TOL = {"shift": 1e-3, "dark": 2e-2}


def _sr_head_decode():
    """The op, or Unavailable while it is not importable."""
    try:
        from ...ops.sr_head_decode import SUPPORTED_BACKENDS, sr_head_decode
    except ImportError as err:
        raise Unavailable(f"srpose_fast.ops.sr_head_decode is not importable ({err})") from None
    return sr_head_decode, SUPPORTED_BACKENDS


def _embeddings(cx, cy, n, dtype, device):
    amplitude = 0.5 + 0.5 * torch.rand(n, JOINTS, device=device)
    bumps = gaussians(cx, cy, amplitude, H, W, 1.5)  # (n, K, h, w)
    gains = 0.5 + 0.5 * torch.rand(n, JOINTS, E, 1, 1, device=device)
    emb = (bumps[:, :, None] * gains).reshape(n, JOINTS * E, H, W)
    return (emb + 0.01 * torch.rand_like(emb)).to(dtype)


def make_inputs(n: int, flip: bool, dtype: torch.dtype, device: torch.device):
    def make():
        cx = 2 + torch.rand(n, JOINTS, device=device) * (W - 5)
        cy = 2 + torch.rand(n, JOINTS, device=device) * (H - 5)
        emb = _embeddings(cx, cy, n, dtype, device)
        flipped = None
        if flip:
            perm = torch.tensor(COCO.flip_indices, device=device)
            jitter = lambda: 0.25 * (torch.rand(n, JOINTS, device=device) - 0.5)  # noqa: E731
            flipped = _embeddings((W - 1) - cx[:, perm] + jitter(), cy[:, perm] + jitter(), n, dtype, device)
        weight = (torch.rand(JOINTS * UPSCALE ** 2, E, KERNEL, KERNEL, device=device) / (E * KERNEL ** 2)).to(dtype)
        bias = torch.zeros(JOINTS * UPSCALE ** 2, device=device, dtype=dtype)
        width, height = W * UPSCALE, H * UPSCALE
        center = np.tile(np.array([[width / 2, height / 2]], dtype=np.float32), (n, 1))
        scale = np.tile(np.array([[width / PIXEL_STD, height / PIXEL_STD]], dtype=np.float32), (n, 1))
        return {"emb": emb, "flipped": flipped, "w": weight, "b": bias, "center_np": center, "scale_np": scale,
                "center": torch.from_numpy(center).to(device), "scale": torch.from_numpy(scale).to(device)}
    return make


def _reference_maps(inputs: dict, method: str, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    w, b = inputs["w"].to(dtype), inputs["b"].to(dtype)
    maps = sr_head_reference(inputs["emb"].to(dtype), w, b, UPSCALE)
    if inputs["flipped"] is not None:
        flipped = sr_head_reference(inputs["flipped"].to(dtype), w, b, UPSCALE)
        maps = (maps + flip_back(flipped, FLIP_PAIRS, shift=method != "dark_udp")) * 0.5
    return maps


def _reference(method: str) -> Provider:
    def setup():
        def run(inputs):
            maps = _reference_maps(inputs, method)
            return reference_host_decode(maps, method, inputs["center_np"], inputs["scale_np"])

        def check_output(inputs):
            # The check reads keypoints on float64 maps: cuDNN may run the float32 convolution in TF32.
            return (*run(inputs), _reference_maps(inputs, method, torch.float64))
        return Prepared(run=run, check_output=check_output)
    return Provider("reference", setup, dtype="float32", host_sync=True)


def _check(method: str):
    def check(inputs, expected, output, provider):
        ref_kp, ref_scores, maps = expected
        kp, scores = output
        # Heatmaps rounded to bfloat16 (two ops) tie and shift within bfloat16's resolution.
        loose = provider.name == "triton two ops" and inputs["emb"].dtype != torch.float32
        return check_keypoints_on_maps(maps, ref_kp, ref_scores, kp, scores, value_tol=1e-2 if loose else 1e-4,
                                       kp_atol=PX_TOL[method])
    return check


def _fused(backend: str, method: str, settings: Settings) -> Provider:
    def setup():
        op, supported = _sr_head_decode()
        require_backend(backend, settings.device, op="sr_head_decode", supported=supported)

        def run(inputs):
            return sync_to_host(*op(inputs["emb"], inputs["w"], inputs["b"], UPSCALE, flipped_emb=inputs["flipped"],
                                    method=method, center=inputs["center"], scale=inputs["scale"], backend=backend))
        return run
    return Provider(backend, setup, host_sync=True)


def _two_ops(method: str, settings: Settings) -> Provider:
    def setup():
        require_backend("triton", settings.device, op="sr_head", supported=SR_HEAD_BACKENDS)
        require_backend("triton", settings.device, op="decode_heatmaps", supported=DECODE_BACKENDS)

        def run(inputs):
            maps = sr_head(inputs["emb"], inputs["w"], inputs["b"], UPSCALE, backend="triton")
            flipped = None
            if inputs["flipped"] is not None:
                flipped = sr_head(inputs["flipped"], inputs["w"], inputs["b"], UPSCALE, backend="triton")
            return sync_to_host(*decode_heatmaps(maps, method=method, flipped=flipped, center=inputs["center"],
                                                 scale=inputs["scale"], backend="triton"))
        return run
    return Provider("triton two ops", setup, host_sync=True)


def build_cases(settings: Settings) -> list[Case]:
    batches = settings.pick((64, 1, 32, 256), (1, 4), (1,))  # batch 64 first, as decode's target case
    cases = []
    for method in METHODS:
        for flip in settings.pick((True, False), (False, True), (True,)):
            op = f"{method}+flip" if flip else method
            for dtype_name, dtype in settings.dtypes(tiny=FP32_ONLY).items():
                for n in batches:
                    elem = torch.finfo(dtype).bits // 8
                    passes = 2 if flip else 1
                    moved = (passes * n * JOINTS * E * H * W + JOINTS * UPSCALE ** 2 * (E * KERNEL ** 2 + 1)) * elem
                    flops = passes * 2.0 * n * JOINTS * UPSCALE ** 2 * E * KERNEL ** 2 * H * W
                    cases.append(Case(
                        suite="sr_head_decode", op=op, name=f"{op} N{n}",
                        shape=f"({n},{JOINTS * E},{H},{W})->({n},{JOINTS},2)", dtype=dtype_name, batch=n,
                        make_inputs=make_inputs(n, flip, dtype, settings.device), reference=_reference(method),
                        providers=[_fused(b, method, settings) for b in ("torch", "triton", "cuda")]
                        + [_two_ops(method, settings)],
                        check=_check(method), bytes_moved=moved, flops=flops, items_name="instances", rotate=True))
    return cases
