"""Which exceptions are a user's mistake (reported in one line by `srpose-fast`), and how they read."""
from __future__ import annotations


def user_errors() -> tuple[type[BaseException], ...]:
    """ValueError covers bad values, files in the wrong layout and checkpoints that do not fit
    (CheckpointMismatchError); OSError covers missing and unreadable files. Imported when an error is
    being handled, so that `srpose-fast --help` does not load torch."""
    from ..engine.checkpoint import CheckpointError

    return (ValueError, OSError, CheckpointError)


def one_line(err: BaseException) -> str:
    """The message on one line: the lines of a multi-line message joined with '; '."""
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    return "; ".join(lines) or type(err).__name__
