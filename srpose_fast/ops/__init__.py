"""Fused ops, one public function per job; each picks a backend (torch | triton | cuda)."""
from .sr_head import sr_head
from .decode import decode_heatmaps

__all__ = ["sr_head"]
