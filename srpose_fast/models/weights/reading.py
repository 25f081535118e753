"""Read a checkpoint file without running its code: `torch.load(weights_only=True)`, with an allow-list
for the metadata other projects store next to the weights.

mmengine checkpoints (mmpose 1.x) keep numpy arrays in `meta.dataset_meta` and HistoryBuffer objects in
`message_hub`, which the weights-only unpickler refuses. Those files are read by the same unpickler
with numpy's array and scalar globals allowed (they rebuild arrays from bytes) and every other class the
file names replaced by an inert placeholder that only stores what it is given. A few files hold objects
that the weights-only unpickler cannot fill even then: HRFormer's and Swin's ImageNet checkpoints store
their yacs config, a dict subclass. Those are read by a restricted unpickler that resolves the same
names (torch's tensor rebuilders, OrderedDict, numpy's) and turns every other name into a placeholder, so
that nothing named by the file is imported or run either. Nothing is ever fully unpickled; a file that
calls into modules torch blocks outright (os, sys, subprocess, ...) is refused.
"""
from __future__ import annotations

import collections
import pickle
import types
from pathlib import Path

import numpy as np
import torch

from .errors import CheckpointError


class Placeholder(dict):
    """Stands in for a class the checkpoint names but that is not needed (or not installed): keeps the
    constructor arguments, the pickled state and, for a mapping, its items as plain data, and runs nothing."""

    qualified_name = "?"

    def __init__(self, *args, **kwargs):
        self.args, self.kwargs = args, kwargs

    def __setstate__(self, state):
        self.state = state

    def __repr__(self) -> str:
        return f"<placeholder for {self.qualified_name}>"


def _numpy_globals() -> dict[str, object]:
    """Names under which pickles refer to numpy's array and scalar constructors (numpy 1.x wrote
    `numpy.core`, numpy 2 writes `numpy._core`), mapped to this numpy's objects."""
    reconstruct = np.zeros(1).__reduce__()[0]
    scalar = np.float64(0).__reduce__()[0]
    names = {"numpy.ndarray": np.ndarray, "numpy.dtype": np.dtype}
    for package in ("numpy.core", "numpy._core"):
        names[f"{package}.multiarray._reconstruct"] = reconstruct
        names[f"{package}.multiarray.scalar"] = scalar
    return names


def _dtype_classes() -> list[type]:
    """numpy >= 1.25 gives every dtype its own class; unpickling a dtype sets state on one of them."""
    dtypes = getattr(np, "dtypes", None)
    return [getattr(dtypes, name) for name in dir(dtypes) if name.endswith("DType")] if dtypes else []


def _allow_list(unsafe: list[str]) -> list:
    numpy_names = _numpy_globals()
    allowed: list = list(_dtype_classes())
    for name in unsafe:
        if name in numpy_names:
            allowed.append((numpy_names[name], name))
        else:
            allowed.append((_stand_in(name), name))
    return allowed


def _stand_in(name: str) -> type:
    return type(name.rsplit(".", 1)[-1], (Placeholder,), {"qualified_name": name})


class _RestrictedUnpickler(pickle.Unpickler):
    """Resolves only torch's tensor rebuilders, OrderedDict and numpy's array globals; any other name the
    file gives becomes a placeholder class (never imported). torch.load subclasses it and resolves storages."""

    known = {"collections.OrderedDict": collections.OrderedDict,
             "torch._utils._rebuild_tensor_v2": torch._utils._rebuild_tensor_v2,
             "torch._utils._rebuild_parameter": torch._utils._rebuild_parameter, **_numpy_globals()}

    def find_class(self, module: str, name: str):
        qualified = f"{module}.{name}"
        return self.known.get(qualified) or _stand_in(qualified)


_RESTRICTED_PICKLE = types.SimpleNamespace(__name__="restricted_pickle", Unpickler=_RestrictedUnpickler,
                                           load=lambda file, **kwargs: _RestrictedUnpickler(file, **kwargs).load())


def _first_line(err: BaseException, containing: str = "") -> str:
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    return next((line for line in lines if containing in line), lines[0] if lines else type(err).__name__)


def _unreadable(path: Path, err: BaseException) -> CheckpointError:
    return CheckpointError(f"cannot read checkpoint {path} ({path.stat().st_size} bytes): the file is truncated, "
                           f"corrupt or not a checkpoint ({type(err).__name__}: {_first_line(err)})")


def _refused(path: Path, err: BaseException) -> CheckpointError:
    return CheckpointError(f"refusing to read checkpoint {path}: it calls code that a weights-only load never runs "
                           f"({_first_line(err, 'GLOBAL')})")


def read_file(path: str | Path) -> object:
    """The object a checkpoint file holds, on the CPU. Raises FileNotFoundError or CheckpointError."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as refused:
        # Either a global the weights-only unpickler does not know, or a file that is not a pickle.
        try:
            unsafe = torch.serialization.get_unsafe_globals_in_checkpoint(path)
        except Exception:  # not a zip checkpoint at all: report the original failure
            raise _unreadable(path, refused) from refused
        if not unsafe:
            raise _unreadable(path, refused) from refused
        try:
            with torch.serialization.safe_globals(_allow_list(unsafe)):
                return torch.load(path, map_location="cpu", weights_only=True)
        except pickle.UnpicklingError as err:
            if "GLOBAL" in str(err):  # torch blocks some modules (os, sys, ...) whatever the allow-list
                raise _refused(path, err) from err
            try:  # a container the weights-only unpickler cannot fill (a dict subclass): placeholders
                return torch.load(path, map_location="cpu", weights_only=False, pickle_module=_RESTRICTED_PICKLE)
            except Exception as inner:
                raise _unreadable(path, inner) from inner
        except Exception as err:
            raise _unreadable(path, err) from err
    except Exception as err:  # torch raises RuntimeError, EOFError, ... for damaged files
        raise _unreadable(path, err) from err
