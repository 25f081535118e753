"""Pose heads: SRPose, the SimpleBaseline head, and simple head + SR head."""
from .simple import SimpleHead
from .sr import SRHead
from .srpose import ConvBlock, SRPoseHead

__all__ = ["ConvBlock", "SRHead", "SRPoseHead", "SimpleHead"]
