"""Models: backbones, heads, the top-down and bottom-up wrappers and the zoo."""
from .bottomup_model import BottomUpPoseModel
from .build import MODEL_SPECS, build_model, list_models
from .pose_model import PoseModel, TopDownPoseModel

__all__ = ["MODEL_SPECS", "BottomUpPoseModel", "PoseModel", "TopDownPoseModel", "build_model", "list_models"]
