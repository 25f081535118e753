"""Which exceptions are a user's mistake (reported in one line by `srpose-fast`), and how they read; warnings
read as one line too."""
from __future__ import annotations

import contextlib
import sys
import warnings


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


@contextlib.contextmanager
def one_line_warnings(prefix: str, *, enabled: bool = True):
    """Within the block, each warning shown prints as one line on stderr, `<prefix>: warning: <message>`
    (instead of the file, line and source of the `warnings.warn` call); `enabled=False` leaves them as they are."""
    if not enabled:
        yield
        return

    def show(message, category, filename, lineno, file=None, line=None):
        print(f"{prefix}: warning: {one_line(message)}", file=sys.stderr if file is None else file)

    with warnings.catch_warnings():
        warnings.showwarning = show
        yield
