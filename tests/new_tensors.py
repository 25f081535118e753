"""Which tensors an op creates (importable as `new_tensors`: pytest puts tests/ on sys.path): the tests that
check a fused path never materialises a target map record the shapes here."""
import torch
from torch.utils._python_dispatch import TorchDispatchMode


class RecordNewTensors(TorchDispatchMode):
    """Records the shape of every new tensor an aten op returns (views of existing ones are not new)."""

    def __init__(self):
        super().__init__()
        self.shapes = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in (out if isinstance(out, (tuple, list)) else (out,)):
            if isinstance(t, torch.Tensor) and not func.is_view:
                self.shapes.append(tuple(t.shape))
        return out
