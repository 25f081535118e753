"""decode: heatmaps (N, 17, H, W) to image keypoints and scores, with and without the flip test.

Cases: method (dark, shift, dark_udp) x flip x map size (256x192, 64x48) x batch, float32 maps that
hold one Gaussian per joint (the flipped maps: the same joints mirrored, jittered by up to half a pixel).

Reference ("as SRPose runs it", every call ends with the results on the host):
- shift: flip-back on the device (`reference.pipeline.flip_back`) and averaging, then
  `reference.decode.srpose_decode`: 16x16 max-pool with indices on the device, the pooled maxima, indices
  and the whole heatmaps copied to the host, block argmax and the per-joint quarter-pixel loop in numpy.
- dark, dark_udp: SRPose decodes with the shift only; DARK comes from mmpose. The baseline is the same
  flip-back on the device, the heatmaps copied to the host, then DARK as mmpose 1.x runs it
  (`reference.dark_decode.mmpose_dark_decode`: numpy and OpenCV, one instance at a time).

Providers: `decode_heatmaps` with backend "torch" (vectorised, on the device), "triton" and "cuda";
each brings keypoints and scores to the host, as an evaluation loop does. "cpp (host)": the heatmaps
copied to the host, then the portable C++ deployment decoder (backend "cpp"); the `deploy` suite
times it on host inputs, without the copy.

Bytes: the heatmaps read once (twice with the flip). FLOPs: not counted (memory-bound).
"""
from __future__ import annotations

import numpy as np
import torch

from ...codecs.conventions import PIXEL_STD
from ...keypoint_sets import COCO
from ...ops.decode import SUPPORTED_BACKENDS, decode_heatmaps
from ...reference.dark_decode import mmpose_dark_decode
from ...reference.decode import srpose_decode
from ...reference.pipeline import flip_back, flip_pairs_of
from ..cases import Case, CheckResult, Provider
from .common import Settings, require_backend, sync_to_host

JOINTS = COCO.num_keypoints
FLIP_PAIRS = flip_pairs_of(COCO.flip_indices)
METHODS = ("dark", "shift", "dark_udp")  # DARK first: the decode target
SIGMA = {(64, 48): 2.0, (256, 192): 8.0}  # target sigma at each resolution (SimpleBaseline / SRPose)
PX_TOL = {"shift": 1e-3, "dark": 2e-2, "dark_udp": 2e-2}  # heatmap pixels; DARK blurs near the peak only


def gaussians(cx: torch.Tensor, cy: torch.Tensor, amplitude: torch.Tensor, height: int, width: int,
              sigma: float) -> torch.Tensor:
    """(N, K, H, W) maps with one Gaussian each, centred at (cx, cy) (N, K) with the given peaks."""
    xs = torch.arange(width, device=cx.device, dtype=torch.float32)
    ys = torch.arange(height, device=cx.device, dtype=torch.float32)
    gx = torch.exp(-((xs - cx[..., None]) ** 2) / (2 * sigma * sigma))
    gy = torch.exp(-((ys - cy[..., None]) ** 2) / (2 * sigma * sigma))
    return (amplitude[..., None, None] * gy[..., :, None]) * gx[..., None, :]


def make_decode_inputs(n: int, height: int, width: int, flip: bool, device: torch.device):
    def make():
        sigma = SIGMA.get((height, width), 2.0)
        cx = 2 + torch.rand(n, JOINTS, device=device) * (width - 5)
        cy = 2 + torch.rand(n, JOINTS, device=device) * (height - 5)
        amplitude = 0.5 + 0.5 * torch.rand(n, JOINTS, device=device)
        maps = gaussians(cx, cy, amplitude, height, width, sigma)
        flipped = None
        if flip:
            perm = torch.tensor(COCO.flip_indices, device=device)
            jitter = lambda: torch.rand(n, JOINTS, device=device) - 0.5  # noqa: E731
            flipped = gaussians((width - 1) - cx[:, perm] + jitter(), cy[:, perm] + jitter(), amplitude[:, perm],
                                height, width, sigma)
        center = torch.stack((100 + 400 * torch.rand(n), 100 + 400 * torch.rand(n)), dim=1)
        scale = 1 + 2 * torch.rand(n, 2)
        return {"maps": maps, "flipped": flipped, "center": center.to(device), "scale": scale.to(device),
                "center_np": center.numpy(), "scale_np": scale.numpy()}
    return make


def reference_host_decode(maps: torch.Tensor, method: str, center: np.ndarray, scale: np.ndarray
                          ) -> tuple[np.ndarray, np.ndarray]:
    """The original's decoders on merged heatmaps: SRPose's shift decode, or mmpose's DARK on the host."""
    if method == "shift":
        keypoints, maxvals = srpose_decode(maps, center, scale)
        return keypoints, maxvals[..., 0]
    return mmpose_dark_decode(maps.cpu().numpy(), center, scale, method=method)


def reference_decode(inputs: dict, method: str) -> tuple[np.ndarray, np.ndarray]:
    maps = inputs["maps"]
    if inputs["flipped"] is not None:
        maps = (maps + flip_back(inputs["flipped"], FLIP_PAIRS, shift=method != "dark_udp")) * 0.5
    return reference_host_decode(maps, method, inputs["center_np"], inputs["scale_np"])


def decoded_keypoints_check(method: str, height: int, width: int):
    def check(inputs, expected, output, provider):
        ref_kp, ref_scores = (np.asarray(v, dtype=np.float64) for v in expected)
        kp, scores = (np.asarray(v, dtype=np.float64) for v in output)
        px = float((inputs["scale_np"] * PIXEL_STD / np.array([width, height])).max())
        kp_tol = PX_TOL[method] * px
        if kp.shape != ref_kp.shape or scores.shape != ref_scores.shape:
            return CheckResult(False, float("inf"), kp_tol, "image px", "shapes differ")
        kp_err = float(np.abs(kp - ref_kp).max(initial=0.0))
        score_err = float(np.abs(scores - ref_scores).max(initial=0.0)) / max(float(np.abs(ref_scores).max(initial=0)),
                                                                               1e-30)
        passed = kp_err <= kp_tol and score_err <= 1e-5
        return CheckResult(passed, kp_err, kp_tol, "image px",
                           f"max |dkp| {kp_err:.3g} image px ({PX_TOL[method]} heatmap px allowed), "
                           f"max score error {score_err:.3g} relative")
    return check


def _host_provider(method: str) -> Provider:
    """The deployment decoder (backend "cpp", CPU inputs): heatmaps to the host first, as the reference."""
    def setup():
        require_backend("cpp", torch.device("cpu"), op="decode_heatmaps", supported=SUPPORTED_BACKENDS)

        def run(inputs):
            flipped = None if inputs["flipped"] is None else inputs["flipped"].cpu()
            return sync_to_host(*decode_heatmaps(inputs["maps"].cpu(), method=method, flipped=flipped,
                                                 center=inputs["center"].cpu(), scale=inputs["scale"].cpu(),
                                                 backend="cpp"))
        return run
    return Provider("cpp (host)", setup, host_sync=True)


def _provider(backend: str, method: str, settings: Settings) -> Provider:
    def setup():
        require_backend(backend, settings.device, op="decode_heatmaps", supported=SUPPORTED_BACKENDS)

        def run(inputs):
            return sync_to_host(*decode_heatmaps(inputs["maps"], method=method, flipped=inputs["flipped"],
                                                 center=inputs["center"], scale=inputs["scale"], backend=backend))
        return run
    return Provider(backend, setup, host_sync=True)


def build_cases(settings: Settings) -> list[Case]:
    # The target case (DARK with flip, 256x192, batch 64) comes first, in case a time limit cuts
    # the suite short.
    batches = settings.pick((64, 1, 32, 256), (1, 4), (2,))
    sizes = settings.pick(((256, 192), (64, 48)), ((64, 48), (256, 192)), ((64, 48),))
    cases = []
    for method in METHODS:
        for flip in settings.pick((True, False), (False, True), (True,)):
            op = f"{method}+flip" if flip else method
            for height, width in sizes:
                for n in batches:
                    moved = (2 if flip else 1) * n * JOINTS * height * width * 4
                    cases.append(Case(
                        suite="decode", op=op, name=f"{op} {height}x{width} N{n}",
                        shape=f"({n},{JOINTS},{height},{width})", dtype="float32", batch=n,
                        make_inputs=make_decode_inputs(n, height, width, flip, settings.device),
                        reference=Provider("reference", lambda m=method: (lambda inputs: reference_decode(inputs, m)),
                                           host_sync=True),
                        providers=[_provider(b, method, settings) for b in ("torch", "triton", "cuda")]
                        + [_host_provider(method)],
                        check=decoded_keypoints_check(method, height, width), bytes_moved=moved,
                        items_name="instances", rotate=True))
    return cases
