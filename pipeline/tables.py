"""The result files' shared writing and number format: a CSV row appended whole under a lock on
its folder (the experiment's and the simulation's results.csv), and AUCs as tables print them."""
import contextlib
import csv
import fcntl
import os
from typing import Iterator, Sequence


def fmt_auc(x, digits: int = 4) -> str:
    return "n/a" if x is None else f"{x:.{digits}f}"


def cell(value) -> str:
    """A CSV cell: blank for None."""
    return "" if value is None else value


@contextlib.contextmanager
def locked(folder: str) -> Iterator[None]:
    """An exclusive lock on `folder` while the block runs, so processes can share its files."""
    lock = os.open(folder, os.O_RDONLY)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield
    finally:
        os.close(lock)  # releases the lock


def append_csv_row(path: str, columns: Sequence[str], row: dict) -> None:
    """Appends one row of `columns` (the header first when the file is new) and flushes it to
    disk (fsync) before returning: a row is written whole or not at all."""
    new = not os.path.exists(path) or os.path.getsize(path) == 0
    with open(path, "a", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(columns), extrasaction="ignore")
        if new:
            writer.writeheader()
        writer.writerow({c: cell(row.get(c)) for c in columns})
        f.flush()
        os.fsync(f.fileno())
