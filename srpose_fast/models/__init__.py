"""Models: backbones, heads, the top-down wrapper and the zoo."""
from .build import MODEL_SPECS, build_model, list_models
from .pose_model import PoseModel, TopDownPoseModel

__all__ = ["MODEL_SPECS", "PoseModel", "TopDownPoseModel", "build_model", "list_models"]
