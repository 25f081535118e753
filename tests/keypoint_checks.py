"""What the decode tests share (Triton, CUDA, heatmap-free): inputs, tolerances, the keypoint comparison.

Importable from every test module as `keypoint_checks` (pytest puts tests/, the root conftest's folder,
on sys.path).
"""
import torch

from srpose_fast.codecs.decoders import decode_locations
from srpose_fast.codecs.targets import encode_heatmaps
from srpose_fast.codecs.transforms import PIXEL_STD


def gaussian_maps(n, k, h, w, seed, sigma=1.5, noise=0.01):
    """Unbiased (DARK) Gaussians at random sub-pixel centres plus uniform noise, CPU float32 (N, K, H, W)."""
    gen = torch.Generator().manual_seed(seed)
    kp = torch.rand(n, k, 2, generator=gen) * torch.tensor([w - 1.0, h - 1.0])
    maps, _ = encode_heatmaps(kp, torch.ones(n, k), (h, w), sigma, method="unbiased")
    return maps + noise * torch.rand(maps.shape, generator=gen)


def boxes(n, seed=1):
    """Random (center, scale), (N, 2) each, in the x200 convention."""
    gen = torch.Generator().manual_seed(seed)
    return torch.rand(n, 2, generator=gen) * 400 + 50, torch.rand(n, 2, generator=gen) + 0.5


def reference_tolerance(merged, method, blur_kernel, seed=0):
    """(N, K) tolerance in heatmap pixels: 0 for argmax and shift (exact), else 1e-4 + 8x the reference's
    own change under 1e-6 relative noise on its (merged, float32) maps: DARK blurs in another order, and the
    Newton step amplifies the last-bit differences where the Hessian is ill-conditioned."""
    if method in ("argmax", "shift"):
        return torch.zeros(merged.shape[:2])
    gen = torch.Generator().manual_seed(seed)
    base, _ = decode_locations(merged, method, blur_kernel)
    sensitivity = torch.zeros(merged.shape[:2])
    for _ in range(3):
        moved, _ = decode_locations(merged * (1 + 1e-6 * torch.randn(merged.shape, generator=gen)), method,
                                    blur_kernel)
        sensitivity = torch.maximum(sensitivity, torch.nan_to_num((moved - base).abs().amax(-1), nan=0.0))
    return 1e-4 + 8 * sensitivity


def in_image_pixels(tol, ref_keypoints, method, map_size, scale, *, keep_exact=False):
    """Heatmap-pixel tolerances (N, K, 2) in image pixels, plus float32 rounding of the image coordinates
    (1e-6 of their magnitude + 1e-5). keep_exact: a 0 tolerance stays 0 (a transform rounded as torch's)."""
    h, w = map_size
    cells = torch.tensor([w - 1.0, h - 1.0] if method == "dark_udp" else [float(w), float(h)])
    scaled = tol * (scale.float() * PIXEL_STD / cells)[:, None, :] + 1e-6 * ref_keypoints.abs().nan_to_num(0.0) + 1e-5
    return torch.where(tol > 0, scaled, tol) if keep_exact else scaled


def assert_keypoints_close(keypoints, ref, tol, what=""):
    """Every coordinate within its tolerance; NaN only where the reference has NaN too."""
    both_nan = torch.isnan(keypoints) & torch.isnan(ref)
    err = torch.where(both_nan, torch.zeros_like(keypoints), (keypoints - ref).abs())
    bad = ~(err <= tol)  # NaN on one side only fails too
    assert not bad.any(), (f"{what}: {int(bad.sum())} coordinates differ, worst {err[bad].max().item()} "
                           f"(tolerance there {tol[bad][err[bad].argmax()].item()}) at {bad.nonzero()[:4].tolist()}")


def assert_decoded_close(keypoints, ref_keypoints, merged, method, blur_kernel, scale, what, *, keep_exact=False):
    """Keypoints decoded from the (merged, float32) maps `merged` against the reference's: `reference_tolerance`
    in heatmap pixels, in image pixels (`in_image_pixels`) where a transform was given (`scale` not None)."""
    tol = reference_tolerance(merged, method, blur_kernel)[..., None].expand_as(keypoints)
    if scale is not None:
        tol = in_image_pixels(tol, ref_keypoints, method, merged.shape[-2:], scale, keep_exact=keep_exact)
    assert_keypoints_close(keypoints, ref_keypoints, tol, what)
