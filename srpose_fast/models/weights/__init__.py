"""Model weights from the checkpoint files users bring (SPEC.md section 8): read safely, map the keys of
each known layout to this project's names, load strictly, and say clearly what does not fit."""
from .errors import CheckpointError, CheckpointMismatchError
from .identify import Identity, identify
from .layouts import MappedWeights, map_to_native
from .loading import check_fit, load_mapped, load_weights, read_weights, unwrap_model

__all__ = ["CheckpointError", "CheckpointMismatchError", "Identity", "MappedWeights", "check_fit", "identify",
           "load_mapped", "load_weights", "map_to_native", "read_weights", "unwrap_model"]
