"""Heatmap decoders (torch reference): argmax, then an optional sub-pixel refinement.

Every function is vectorised over (N, K), runs on any device and computes in float32 whatever
the input dtype. These are the semantics every decode backend (Triton, CUDA, C++) is tested
against:

- Argmax: the maximum's lowest flat index (y * W + x) wins ties, as numpy/torch argmax.
  The score is the maximum.
- A map containing NaN: score NaN and keypoint (NaN, NaN); nothing refines it.
- A map whose maximum is <= 0: score 0, keypoint at its argmax (lowest flat index), never refined.
- Refinements ("shift", "dark", "dark_udp") read the neighbourhood of the integer argmax; see
  `refine_shift`, `refine_dark` and `refine_dark_udp`.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .conventions import DECODE_METHODS, dark_blur_sigma


def heatmap_argmax(heatmaps: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Integer argmax locations (N, K, 2) float32 (x, y) and scores (N, K) float32.

    Ties: lowest flat index. NaN in a map: (NaN, NaN) and score NaN. Maximum <= 0: score 0,
    location still the argmax.
    """
    if heatmaps.dim() != 4:
        raise ValueError(f"heatmap_argmax: heatmaps must be (N, K, H, W), got shape {tuple(heatmaps.shape)}")
    width = heatmaps.shape[-1]
    maxvals, index = heatmaps.float().flatten(2).max(dim=2)  # NaN propagates; first index on ties
    locs = torch.stack(((index % width).float(), torch.div(index, width, rounding_mode="floor").float()), dim=-1)
    is_nan = torch.isnan(maxvals)
    locs = torch.where(is_nan[..., None], torch.full_like(locs, float("nan")), locs)
    scores = torch.where(maxvals > 0, maxvals, torch.where(is_nan, maxvals, torch.zeros_like(maxvals)))
    return locs, scores


def _sample(maps: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """maps[n, k, y, x] for (N, K) long indices, each clamped into the map (= edge padding)."""
    height, width = maps.shape[-2:]
    x = x.clamp(0, width - 1)
    y = y.clamp(0, height - 1)
    return maps.flatten(2).gather(2, (y * width + x)[..., None])[..., 0]


def _integer_locs(locs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The argmax's integer (x, y) as long tensors; NaN locations become 0 (they are never refined)."""
    safe = torch.nan_to_num(locs, nan=0.0)
    return safe[..., 0].long(), safe[..., 1].long()


def refine_shift(heatmaps: torch.Tensor, locs: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
    """Quarter-pixel shift toward the higher neighbour (mmpose 0.x post_process='default').

    Only where the score is > 0 and 1 < x < W-1 and 1 < y < H-1 (both jointly):
    x += 0.25 * sign(h[y, x+1] - h[y, x-1]), y += 0.25 * sign(h[y+1, x] - h[y-1, x]).
    """
    maps = heatmaps.float()
    height, width = maps.shape[-2:]
    x, y = _integer_locs(locs)
    ok = (scores > 0) & (x > 1) & (x < width - 1) & (y > 1) & (y < height - 1)
    gx = _sample(maps, x + 1, y) - _sample(maps, x - 1, y)
    gy = _sample(maps, x, y + 1) - _sample(maps, x, y - 1)
    step = 0.25 * torch.stack((torch.sign(gx), torch.sign(gy)), dim=-1)
    return torch.where(ok[..., None], locs + step, locs)


def gaussian_taps(kernel: int, device: torch.device | str | None = None) -> torch.Tensor:
    """The normalised float32 1-D Gaussian of DARK's blur: size `kernel`, sigma `dark_blur_sigma(kernel)`.
    The blur below and the Triton decoders use these taps."""
    radius = (kernel - 1) // 2
    sigma = dark_blur_sigma(kernel)
    offsets = torch.arange(kernel, device=device, dtype=torch.float32) - radius
    g = torch.exp(-(offsets * offsets) / (2.0 * sigma * sigma))
    return g / g.sum()


def gaussian_blur(heatmaps: torch.Tensor, kernel: int = 11) -> torch.Tensor:
    """Per-map normalised Gaussian blur, zero padding, rescaled to each map's original maximum.

    The kernel has odd size k and sigma `dark_blur_sigma(k)` (OpenCV's rule for sigma = 0). A map whose
    blurred maximum is 0
    is left unscaled. Returns float32 (N, K, H, W).
    """
    if not isinstance(kernel, int) or kernel < 1 or kernel % 2 == 0:
        raise ValueError(f"gaussian_blur: kernel must be a positive odd int, got {kernel!r}")
    maps = heatmaps.float()
    n, k, height, width = maps.shape
    if maps.numel() == 0:
        return maps.clone()
    radius = (kernel - 1) // 2
    g = gaussian_taps(kernel, maps.device)
    planes = maps.reshape(n * k, 1, height, width)
    blurred = F.conv2d(planes, g.view(1, 1, kernel, 1), padding=(radius, 0))
    blurred = F.conv2d(blurred, g.view(1, 1, 1, kernel), padding=(0, radius)).view(n, k, height, width)
    original_max = maps.amax(dim=(2, 3), keepdim=True)
    blurred_max = blurred.amax(dim=(2, 3), keepdim=True)
    factor = torch.where(blurred_max != 0, original_max / torch.where(blurred_max != 0, blurred_max, 1.0), 1.0)
    return blurred * factor


def _newton_step(dx, dy, dxx, dxy, dyy, ok):
    """-(H^-1 g) for the symmetric 2x2 Hessian [[dxx, dxy], [dxy, dyy]]; 0 where not ok or det == 0."""
    det = dxx * dyy - dxy * dxy
    ok = ok & (det != 0)
    det = torch.where(ok, det, torch.ones_like(det))
    ox = -(dyy * dx - dxy * dy) / det
    oy = -(dxx * dy - dxy * dx) / det
    step = torch.stack((ox, oy), dim=-1)
    return torch.where(ok[..., None], step, torch.zeros_like(step))


def refine_dark(heatmaps: torch.Tensor, locs: torch.Tensor, scores: torch.Tensor, blur_kernel: int = 11) -> torch.Tensor:
    """DARK (mmpose 1.x refine_keypoints_dark): one Newton step on the log of the blurred map.

    L = log(max(blur(h), 1e-10)); only where the score is > 0 and 1 < x < W-2, 1 < y < H-2:
    g = (L[y,x+1] - L[y,x-1], L[y+1,x] - L[y-1,x]) / 2,
    Dxx = (L[y,x+2] - 2 L[y,x] + L[y,x-2]) / 4, Dyy likewise,
    Dxy = (L[y+1,x+1] - L[y-1,x+1] - L[y+1,x-1] + L[y-1,x-1]) / 4;
    if det = Dxx Dyy - Dxy^2 != 0, (x, y) -= H^-1 g.
    """
    logmaps = torch.log(gaussian_blur(heatmaps, blur_kernel).clamp_min(1e-10))
    height, width = logmaps.shape[-2:]
    x, y = _integer_locs(locs)
    ok = (scores > 0) & (x > 1) & (x < width - 2) & (y > 1) & (y < height - 2)

    def at(ox: int, oy: int) -> torch.Tensor:
        return _sample(logmaps, x + ox, y + oy)

    centre = at(0, 0)
    dx = 0.5 * (at(1, 0) - at(-1, 0))
    dy = 0.5 * (at(0, 1) - at(0, -1))
    dxx = 0.25 * (at(2, 0) - 2 * centre + at(-2, 0))
    dyy = 0.25 * (at(0, 2) - 2 * centre + at(0, -2))
    dxy = 0.25 * (at(1, 1) - at(1, -1) - at(-1, 1) + at(-1, -1))
    return locs + _newton_step(dx, dy, dxx, dxy, dyy, ok)


def refine_dark_udp(heatmaps: torch.Tensor, locs: torch.Tensor, scores: torch.Tensor,
                    blur_kernel: int = 11) -> torch.Tensor:
    """DARK-UDP (mmpose 1.x refine_keypoints_dark_udp): every point with score > 0, border included.

    L = log(clip(blur(h), 1e-3, 50)) read with edge padding (indices clamped into the map);
    with i = L[y,x] and unit steps: dx = (L[y,x+1] - L[y,x-1]) / 2, dy likewise,
    dxx = L[y,x+1] - 2i + L[y,x-1], dyy likewise,
    dxy = (L[y+1,x+1] - L[y,x+1] - L[y+1,x] + 2i - L[y,x-1] - L[y-1,x] + L[y-1,x-1]) / 2;
    (x, y) -= inv([[dxx, dxy], [dxy, dyy]] + eps I) (dx, dy), eps = float32 machine epsilon.
    No determinant test; only an exactly singular matrix (where numpy's inv would raise) leaves
    the point unrefined.
    """
    logmaps = torch.log(gaussian_blur(heatmaps, blur_kernel).clamp(1e-3, 50.0))
    x, y = _integer_locs(locs)
    ok = scores > 0

    def at(ox: int, oy: int) -> torch.Tensor:
        return _sample(logmaps, x + ox, y + oy)

    i = at(0, 0)
    ix1, ix1_ = at(1, 0), at(-1, 0)
    iy1, iy1_ = at(0, 1), at(0, -1)
    dx = 0.5 * (ix1 - ix1_)
    dy = 0.5 * (iy1 - iy1_)
    dxx = ix1 - 2 * i + ix1_
    dyy = iy1 - 2 * i + iy1_
    dxy = 0.5 * (at(1, 1) - ix1 - iy1 + 2 * i - ix1_ - iy1_ + at(-1, -1))
    eps = torch.finfo(torch.float32).eps
    return locs + _newton_step(dx, dy, dxx + eps, dxy, dyy + eps, ok)


def decode_locations(heatmaps: torch.Tensor, method: str = "shift", blur_kernel: int = 11
                     ) -> tuple[torch.Tensor, torch.Tensor]:
    """Argmax plus the named refinement: (keypoints (N, K, 2) in heatmap pixels, scores (N, K))."""
    if method not in DECODE_METHODS:
        raise ValueError(f"decode: method must be one of {DECODE_METHODS}, got {method!r}")
    locs, scores = heatmap_argmax(heatmaps)
    if method == "shift":
        locs = refine_shift(heatmaps, locs, scores)
    elif method == "dark":
        locs = refine_dark(heatmaps, locs, scores, blur_kernel)
    elif method == "dark_udp":
        locs = refine_dark_udp(heatmaps, locs, scores, blur_kernel)
    return locs, scores
