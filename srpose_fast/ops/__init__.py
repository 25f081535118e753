"""Fused ops, one public function per job; each picks a backend (torch | triton | cuda)."""
from .decode import decode_heatmaps
from .multi_stage_loss import multi_stage_loss
from .sr_head import sr_head
from .sr_head_decode import sr_head_decode

__all__ = ["decode_heatmaps", "multi_stage_loss", "sr_head", "sr_head_decode"]
