"""Pose heads: SRPose, the SimpleBaseline head, and simple head + SR head, on a shared base (`base.py`)."""
from .base import HeatmapHead, SRDecodeHead
from .simple import SimpleHead
from .sr import SRHead
from .srpose import ConvBlock, SRPoseHead

__all__ = ["ConvBlock", "HeatmapHead", "SRDecodeHead", "SRHead", "SRPoseHead", "SimpleHead"]
