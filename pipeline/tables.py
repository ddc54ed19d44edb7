"""The result files' shared reading, writing and number format: a CSV row appended whole (the
experiment's and the simulation's results.csv, written under data/locking.py's lock on their
folder), the rows read back, and AUCs as tables print them."""
import csv
import os
from typing import List, Mapping, Optional, Sequence


def fmt_auc(x, digits: int = 4) -> str:
    return "n/a" if x is None else f"{x:.{digits}f}"


def cell(value) -> str:
    """A CSV cell: blank for None."""
    return "" if value is None else value


def read_csv_rows(path: str) -> List[dict]:
    """The rows of a CSV file with a header row, as dicts of strings ([] when there is no file)."""
    if not os.path.exists(path):
        return []
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


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


def upgrade_csv_header(path: str, columns: Sequence[str],
                       fill: Optional[Mapping[str, str]] = None) -> None:
    """A CSV written before columns were added (its header a subset of `columns`) gets `columns`
    as its header, the new cells from `fill` (else blank), rewritten atomically, so rows appended
    after it line up. A file with any other header is left as it is."""
    if not os.path.exists(path):
        return
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        header = tuple(reader.fieldnames or ())
        if not header or header == tuple(columns) or not set(header) <= set(columns):
            return
        rows = list(reader)
    tmp = path + ".tmp"
    if os.path.exists(tmp):
        os.remove(tmp)
    for row in rows:
        append_csv_row(tmp, columns, {**(fill or {}), **row})
    os.replace(tmp, path)
