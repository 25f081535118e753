"""loss: SRPose's multi-stage heatmap loss, forward + backward, targets included.

Cases: batch x dtype of the predictions, with SRPose's five training outputs for a 256x192 crop
(LR 8x6, three at 64x48, the final 256x192), 17 joints, sigma 8, stage weights 1e-4, 1, 1, 1, 1.
Keypoints are uniform over (and a little beyond) the map; 80% are visible.

Reference ("as SRPose runs it"): targets made per sample in numpy (`reference.pipeline.make_targets`),
copied to the device, pooled per output and the per-joint JointsMSELoss loop (`reference.loss`), then
the gradient of the summed loss with respect to every prediction.

Providers: `multi_stage_loss` with backend "torch" (targets made on the device), "triton" (no target
tensor at all) and "cuda". They receive the keypoints as the reference does (numpy on the host) and
copy them to the device.

Bytes: every prediction read in the forward and again in the backward, every gradient written.
FLOPs: not counted (memory-bound).
"""
from __future__ import annotations

import torch

from ...codecs.conventions import SRPOSE_STAGE_WEIGHTS
from ...ops.multi_stage_loss import SUPPORTED_BACKENDS, multi_stage_loss
from ...reference.loss import srpose_losses
from ...reference.pipeline import make_targets
from ..cases import Case, Provider, close_or_low_precision
from .common import FP32_ONLY, Settings, require_backend

JOINTS = 17
SIGMA = 8.0
SIZES = ((8, 6), (64, 48), (64, 48), (64, 48), (256, 192))
FP32_TOL = 1e-4


def make_inputs(n: int, dtype: torch.dtype, device: torch.device):
    height, width = SIZES[-1]

    def make():
        preds = [(0.1 * torch.rand(n, JOINTS, h, w, device=device)).to(dtype).requires_grad_(True) for h, w in SIZES]
        keypoints = torch.rand(n, JOINTS, 2) * torch.tensor([width + 20.0, height + 20.0]) - 10.0
        visible = (torch.rand(n, JOINTS) > 0.2).float()
        return {"preds": preds, "kp_np": keypoints.numpy(), "vis_np": visible.numpy()}
    return make


def reference_loss(inputs: dict, device: torch.device):
    height, width = SIZES[-1]
    target, target_weight = make_targets(inputs["kp_np"], inputs["vis_np"], (width, height), SIGMA)
    target = torch.from_numpy(target).to(device)
    target_weight = torch.from_numpy(target_weight).to(device)
    loss = sum(srpose_losses(inputs["preds"], target, target_weight).values())
    return (loss.detach(), *torch.autograd.grad(loss, inputs["preds"]))


def _check(device: torch.device):
    def float32_oracle(inputs):
        upcast = {**inputs, "preds": [p.detach().float().requires_grad_(True) for p in inputs["preds"]]}
        return reference_loss(upcast, device)
    return close_or_low_precision(float32_oracle, lambda inputs: inputs["preds"][0].dtype == torch.float32,
                                  tol=FP32_TOL, floor=1e-5)


def _provider(backend: str, settings: Settings) -> Provider:
    device = settings.device

    def setup():
        require_backend(backend, device, op="multi_stage_loss", supported=SUPPORTED_BACKENDS)

        def run(inputs):
            keypoints = torch.from_numpy(inputs["kp_np"]).to(device)
            weight = torch.from_numpy(inputs["vis_np"]).to(device)
            loss = multi_stage_loss(inputs["preds"], keypoints, weight, sigma=SIGMA, stage_weights=SRPOSE_STAGE_WEIGHTS,
                                    backend=backend)
            return (loss.detach(), *torch.autograd.grad(loss, inputs["preds"]))
        return run
    return Provider(backend, setup)


def build_cases(settings: Settings) -> list[Case]:
    batches = settings.pick((1, 32, 256), (1, 4), (1,))
    device = settings.device
    cases = []
    for dtype_name, dtype in settings.dtypes(tiny=FP32_ONLY).items():
        elem = torch.finfo(dtype).bits // 8
        for n in batches:
            pred_bytes = sum(n * JOINTS * h * w for h, w in SIZES) * elem
            cases.append(Case(
                suite="loss", op="fwd+bwd", name=f"fwd+bwd N{n}",
                shape=f"({n},{JOINTS},256x192 + 3x 64x48 + 8x6)", dtype=dtype_name, batch=n,
                make_inputs=make_inputs(n, dtype, device),
                reference=Provider("reference", lambda: (lambda inputs: reference_loss(inputs, device)),
                                   host_sync=True),
                providers=[_provider(b, settings) for b in ("torch", "triton", "cuda")],
                check=_check(device), bytes_moved=3 * pred_bytes, rotate=True))
    return cases
