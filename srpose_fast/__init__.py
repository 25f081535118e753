"""srpose-fast: SRPose heatmap pose estimation with fused kernels.

The top-level names load on first use, so `import srpose_fast.deploy` (the torch-free decoder)
never imports torch.
"""
__version__ = "0.1.0"
__all__ = ["build_model", "decode_heatmaps"]


def __getattr__(name):
    if name == "decode_heatmaps":
        from .ops.decode import decode_heatmaps
        return decode_heatmaps
    if name == "build_model":
        from .models import build_model
        return build_model
    raise AttributeError(f"module 'srpose_fast' has no attribute {name!r}")
