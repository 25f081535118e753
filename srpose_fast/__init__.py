"""srpose-fast: SRPose heatmap pose estimation with fused kernels."""
__version__ = "0.1.0"
from .ops.decode import decode_heatmaps
