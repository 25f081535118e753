"""The two ways a checkpoint file fails: it cannot be read, or its weights do not fit the model."""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

KEYS_SHOWN = 8  # keys named per kind in a message; the error's attributes hold them all


class CheckpointError(RuntimeError):
    """A checkpoint file that cannot be read (truncated, corrupt, not a checkpoint)."""


def _listing(title: str, items: Sequence[str]) -> str:
    more = f" ... and {len(items) - KEYS_SHOWN} more" if len(items) > KEYS_SHOWN else ""
    return f"  {title} ({len(items)}): {', '.join(items[:KEYS_SHOWN])}{more}"


class CheckpointMismatchError(ValueError):
    """A checkpoint whose weights do not fit the model: one message that says what the file holds and
    what the model is, and names the first missing, unexpected and wrongly shaped keys with their counts.

    Attributes: `missing` (model keys the file lacks), `unexpected` (file keys with no place in the
    model), `shape_mismatches` ((key, file shape, model shape) triples), all of them in full.
    """

    def __init__(self, path: str | Path, model: str, missing: Sequence[str], unexpected: Sequence[str],
                 shape_mismatches: Sequence[tuple[str, tuple[int, ...], tuple[int, ...]]], *,
                 file_holds: str | None = None, hint: str | None = None):
        self.path = Path(path)
        self.missing = list(missing)
        self.unexpected = list(unexpected)
        self.shape_mismatches = [(key, tuple(a), tuple(b)) for key, a, b in shape_mismatches]
        if file_holds:
            lines = [f"checkpoint {path} holds {file_holds}, but the model being loaded is {model}"]
        else:
            lines = [f"checkpoint {path} does not fit {model}"]
        if self.missing:
            lines.append(_listing("missing from the file", self.missing))
        if self.unexpected:
            lines.append(_listing("unexpected in the file", self.unexpected))
        if self.shape_mismatches:
            lines.append(_listing("other shapes, file vs model",
                                  [f"{key} {a} vs {b}" for key, a, b in self.shape_mismatches]))
        if hint:
            lines.append(f"  {hint}")
        super().__init__("\n".join(lines))
