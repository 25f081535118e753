"""Heatmap losses with the reference semantics."""
from .multi_stage import joints_mse_loss, multi_stage_loss_from_target

__all__ = ["joints_mse_loss", "multi_stage_loss_from_target"]
