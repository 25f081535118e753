"""The training log: one CSV file, plus TensorBoard scalars when tensorboard is installed.

Only rank 0 writes (a logger built with `enabled=False` does nothing). The CSV has the columns
`CSV_COLUMNS`; a resumed run appends to the same file. Each row is flushed as it is written, so
the file is readable while training runs and complete up to the last row after a crash.
Evaluations during training go to `val.csv` (epoch, iter, then the benchmark's statistics) and to
TensorBoard as `val/<statistic>`.
"""
from __future__ import annotations

import csv
import warnings
from pathlib import Path

CSV_COLUMNS = ("epoch", "iter", "loss", "lr", "images_per_s", "time")
VAL_FILENAME = "val.csv"

_warned_no_tensorboard = False


def _summary_writer(log_dir: Path):
    """A SummaryWriter, or None (with one warning per process) when tensorboard is missing."""
    global _warned_no_tensorboard
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError as err:
        if not _warned_no_tensorboard:
            warnings.warn(f"TensorBoard logging is off: {err} (pip install tensorboard); the CSV log is written",
                          stacklevel=3)
            _warned_no_tensorboard = True
        return None
    return SummaryWriter(log_dir=str(log_dir))


def _open_csv(path: Path, columns) -> tuple:
    """(file, DictWriter) appending to `path`; the header is written to a new file and checked in an old one."""
    new = not path.exists() or path.stat().st_size == 0
    if not new:
        with open(path, newline="") as f:
            header = next(csv.reader(f), None)
        if header != list(columns):
            raise ValueError(f"{path} exists with columns {header}, not {list(columns)}; use another output folder")
    file = open(path, "a", newline="")
    writer = csv.DictWriter(file, fieldnames=list(columns))
    if new:
        writer.writeheader()
        file.flush()
    return file, writer


class TrainLogger:
    """`log(epoch=, iter=, loss=, lr=, images_per_s=, time=)` appends a CSV row and TensorBoard scalars;
    `log_validation(epoch=, iter=, stats=)` does the same for an evaluation (`val.csv`, `val/<name>`).

    Args:
        out_dir: the run's folder; the CSV is `out_dir/log.csv`, TensorBoard events go to `out_dir/tb`.
        enabled: False on ranks other than 0.
        tensorboard: also write TensorBoard events (if the package imports).
    """

    def __init__(self, out_dir: str | Path, *, enabled: bool = True, tensorboard: bool = True,
                 filename: str = "log.csv"):
        self.enabled = enabled
        self.path = Path(out_dir) / filename
        self.val_path = Path(out_dir) / VAL_FILENAME
        self._file = None
        self._writer = None
        self._val_file = None
        self._val_writer = None
        self._tb = None
        if not enabled:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file, self._writer = _open_csv(self.path, CSV_COLUMNS)
        if tensorboard:
            self._tb = _summary_writer(self.path.parent / "tb")

    def log(self, **row) -> None:
        if not self.enabled:
            return
        missing = [c for c in CSV_COLUMNS if c not in row]
        if missing:
            raise ValueError(f"log row lacks {missing}")
        self._writer.writerow({c: row[c] for c in CSV_COLUMNS})
        self._file.flush()
        if self._tb is not None:
            step = int(row["iter"])
            for name in ("loss", "lr", "images_per_s"):
                self._tb.add_scalar(f"train/{name}", float(row[name]), step)

    def log_validation(self, *, epoch: int, iter: int, stats: dict[str, float]) -> None:
        """Append one evaluation's statistics to `val.csv` (its columns are fixed by the first row) and
        TensorBoard's `val/<name>` at step `iter`."""
        if not self.enabled:
            return
        if self._val_writer is None:
            self._val_file, self._val_writer = _open_csv(self.val_path, ("epoch", "iter", *stats))
        self._val_writer.writerow({"epoch": epoch, "iter": iter, **stats})
        self._val_file.flush()
        if self._tb is not None:
            for name, value in stats.items():
                if isinstance(value, (int, float)):
                    self._tb.add_scalar(f"val/{name}", float(value), int(iter))

    def close(self) -> None:
        if self._val_file is not None:
            self._val_file.close()
            self._val_file = self._val_writer = None
        if self._file is not None:
            self._file.close()
            self._file = None
        if self._tb is not None:
            self._tb.close()
            self._tb = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
