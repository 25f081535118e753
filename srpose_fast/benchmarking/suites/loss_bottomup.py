"""loss_bottomup: the bottom-up (Associative Embedding) training loss, forward + backward, targets included.

Cases: batch x dtype of the SR head's train output (N, 34, S, S): 17 heatmaps then 17 tags at the input's
resolution (S = 512 in the full profile, as the original trains; smaller in the quick and tiny ones), sigma
S / 64, 10 people per image with joints over (and a little beyond) the map, 80% labelled, a loss mask
with 20% of its pixels ignored.

Reference ("as the original runs it", `reference.bottomup_loss`): targets and joint indices made per sample
in numpy (what its data loader does), copied to the device, the heatmap loss and the AE loss with its
Python loop over people per image, then the gradient of the total with respect to the output.

Providers: `ops.bottomup_loss` with backend "torch" (targets made on the device, vectorised tag terms) and
"triton" (no target map: the heatmap term's targets are made in the kernel). They receive the joints as the
reference does (numpy on the host) and copy them to the device.

Bytes: the output read in the forward, its heatmap half again in the backward, the output's gradient written,
the mask read twice. FLOPs: not counted (memory-bound).
"""
from __future__ import annotations

import torch

from ...codecs.bottomup_targets import MAX_PEOPLE
from ...models.bottomup_zoo import SIGMA_DIVISOR
from ...ops.bottomup_loss import SUPPORTED_BACKENDS, bottomup_loss
from ...reference.bottomup_loss import original_batch_targets, original_loss
from ..cases import Case, Provider, close_or_low_precision
from .common import FP32_ONLY, Settings, require_backend

JOINTS = 17
PEOPLE = 10
FP32_TOL = 1e-4


def make_inputs(n: int, size: int, dtype: torch.dtype, device: torch.device):
    def make():
        output = (0.1 * torch.rand(n, 2 * JOINTS, size, size, device=device)).to(dtype).requires_grad_(True)
        joints = torch.zeros(n, MAX_PEOPLE, JOINTS, 3)
        joints[:, :PEOPLE, :, :2] = torch.rand(n, PEOPLE, JOINTS, 2) * (size + 20.0) - 10.0
        joints[:, :PEOPLE, :, 2] = (torch.rand(n, PEOPLE, JOINTS) > 0.2).float() * 2
        mask = (torch.rand(n, size, size, device=device) > 0.2).float()
        return {"output": output, "joints_np": joints.numpy(), "mask": mask, "sigma": size / SIGMA_DIVISOR}
    return make


def reference_loss(inputs: dict, device: torch.device):
    size = inputs["output"].shape[-1]
    targets, indices = original_batch_targets(inputs["joints_np"], size, inputs["sigma"], MAX_PEOPLE)
    loss = original_loss(inputs["output"], torch.from_numpy(targets).to(device), inputs["mask"],
                         torch.from_numpy(indices))["loss"]
    return loss.detach(), torch.autograd.grad(loss, inputs["output"])[0]


def _check(device: torch.device):
    def float32_oracle(inputs):
        return reference_loss({**inputs, "output": inputs["output"].detach().float().requires_grad_(True)}, device)
    return close_or_low_precision(float32_oracle, lambda inputs: inputs["output"].dtype == torch.float32,
                                  tol=FP32_TOL, floor=1e-5)


def _provider(backend: str, settings: Settings) -> Provider:
    device = settings.device

    def setup():
        require_backend(backend, device, op="bottomup_loss", supported=SUPPORTED_BACKENDS)

        def run(inputs):
            joints = torch.from_numpy(inputs["joints_np"]).to(device)
            loss = bottomup_loss(inputs["output"], joints, inputs["mask"], sigma=inputs["sigma"],
                                 backend=backend)["loss"]
            return loss.detach(), torch.autograd.grad(loss, inputs["output"])[0]
        return run
    return Provider(backend, setup)


def build_cases(settings: Settings) -> list[Case]:
    batches = settings.pick((1, 8, 24), (1, 2), (1,))
    size = settings.pick(512, 128, 64)
    device = settings.device
    cases = []
    for dtype_name, dtype in settings.dtypes(tiny=FP32_ONLY).items():
        elem = torch.finfo(dtype).bits // 8
        for n in batches:
            maps = n * size * size
            bytes_moved = maps * (5 * JOINTS * elem + 2 * 4)
            cases.append(Case(
                suite="loss_bottomup", op="fwd+bwd", name=f"fwd+bwd N{n} {size}",
                shape=f"({n},{2 * JOINTS},{size},{size}), {PEOPLE} people", dtype=dtype_name, batch=n,
                make_inputs=make_inputs(n, size, dtype, device),
                reference=Provider("reference", lambda: (lambda inputs: reference_loss(inputs, device)),
                                   host_sync=True),
                providers=[_provider(b, settings) for b in ("torch", "triton")],
                check=_check(device), bytes_moved=bytes_moved, rotate=True))
    return cases
