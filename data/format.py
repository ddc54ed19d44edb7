"""The bring-your-own-data contract: two CSV files in one folder.

Both files: UTF-8 (a leading byte-order mark is ignored), comma-separated, a header row first,
RFC 4180 quoting as Python's `csv` module reads it (a quoted field may hold commas, doubled
quotes and line breaks). Surrounding whitespace of every value is stripped. Blank lines are
skipped. Line numbers in reject reports are the physical line of the file where the row starts
(the header is line 1).

`items.csv`: one row per item.
  - `item_id` (required): a string, whatever it looks like (`007` stays `007`); not empty;
    unique in the file.
  - text fields: every other column except `embedding`, in file order (e.g. `title`, `year`,
    `genres`), any number, names as in the header. Values are free text and may be empty.
  - `embedding` (optional column): space-separated floats; when the column exists every row
    needs one, all of the same dimension (the first accepted row fixes it), finite float32
    values only.

`interactions.csv`: one row per (user, item) event, exactly the columns
  `user_id, item_id, timestamp, label` in any order (a missing or extra column is an error).
  - `user_id`, `item_id`: strings, never parsed as numbers; not empty. `item_id` must be an
    (accepted) `item_id` of `items.csv`.
  - `timestamp`: integer seconds since the epoch; an integer-valued float such as
    `881250949.0` is accepted, anything else (`1.5`, `yesterday`, empty) is not.
  - `label`: `0` or `1` (`0.0` and `1.0` are accepted too).

Bad rows are rejected, not fatal: a row with the wrong number of fields, an empty required
field, an unparseable timestamp or label, an interaction naming an unknown item, a duplicate
`item_id` (the first row of that id is kept), or an embedding of the wrong dimension or with a
non-float. Each reject is reported as `file:line: reason`, e.g.
`interactions.csv:17: label 'yes' is not 0 or 1`. The run stops (`RejectedRowsError`) when more
than `max_bad_row_fraction` (RunConfig, default 0.05) of a file's data rows are rejected; the
full list of rejects is written next to the ExampleGen's output
(`<examples uri>/rejects/<table>.rejects.txt`).

A bad header (a required column missing, an unexpected, duplicate or empty column name) and a
file that is not valid UTF-8 are fatal (`HeaderError` / `ValueError`), with the file named.

Span layout (an evolving catalog; a local data folder): instead of the two files, the folder
holds `items/span-N/items.csv` and `interactions/span-N/interactions.csv` for spans N = 1, 2, ...
A span's items.csv holds every item released up to that span (the earlier spans' items, then
the new ones), and its interactions are checked against it. A run reads the latest span (TFX's
ExampleGen resolves `{SPAN}`) and records it as the Examples' span; `--window_spans` trains
on earlier spans and evaluates on the newest (docs/continuous.md). data/spans.py cuts a flat
dataset into this layout.

This module is pure Python (no TensorFlow, no TFX); the validating ExampleGen uses it.
"""
from __future__ import annotations

import csv
import dataclasses
import io
import math
import os
import re
from typing import (Any, BinaryIO, Callable, Dict, Iterable, Iterator, List, NamedTuple, Optional,
                    Sequence, Set, Tuple)

from schemas import features

INTERACTIONS_TABLE = "interactions"
ITEMS_TABLE = "items"
TABLES = (INTERACTIONS_TABLE, ITEMS_TABLE)
TABLE_FILES = {INTERACTIONS_TABLE: features.INTERACTIONS_FILE, ITEMS_TABLE: features.ITEMS_FILE}
# Span layout (an evolving catalog, docs/continuous.md): instead of the two files, the data dir
# holds items/span-N/items.csv and interactions/span-N/interactions.csv for spans N = 1, 2, ...;
# a span's items.csv holds every item released up to that span. TFX's ExampleGen resolves
# {SPAN} to the latest span present.
SPAN_DIR_RE = re.compile(r"^span-(\d+)$")

_INT_RE = re.compile(r"^[+-]?[0-9]+$")
_FLOAT_RE = re.compile(r"^[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?$")
_INT64_MIN, _INT64_MAX = -(2 ** 63), 2 ** 63 - 1
_FLOAT32_MAX = 3.4028234663852886e38
_LABELS = {"0": 0, "1": 1, "0.0": 0, "1.0": 1}

Record = Dict[str, Any]
ParseResult = Tuple[Optional[Record], Optional[str]]


class HeaderError(ValueError):
    """A CSV header the contract cannot read: fatal, names the file and the column."""


@dataclasses.dataclass(frozen=True)
class Reject:
    """One rejected row."""
    file: str  # the file's base name, e.g. interactions.csv
    line: int  # physical line where the row starts (header = 1)
    reason: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.reason}"


class RejectedRowsError(ValueError):
    """More than the allowed fraction of a file's rows was rejected."""

    def __init__(self, file: str, rows_total: int, rows_rejected: int, threshold: float,
                 rejects_path: str, first_rejects: Sequence[str] = ()):
        self.file = file
        self.rows_total = rows_total
        self.rows_rejected = rows_rejected
        self.rejected_fraction = rows_rejected / rows_total if rows_total else 0.0
        self.threshold = threshold
        self.rejects_path = rejects_path
        self.first_rejects = list(first_rejects)
        msg = (f"{file}: {rows_rejected:,} of {rows_total:,} rows rejected "
               f"({self.rejected_fraction:.2%}), more than max_bad_row_fraction={threshold:g}; "
               f"every reject is listed in {rejects_path}")
        if self.first_rejects:
            msg += "\nFirst rejects:\n" + "\n".join(f"  {r}" for r in self.first_rejects)
        super().__init__(msg)


# --- reading ----------------------------------------------------------------------------------

def _decoded_lines(raw_lines: Iterable[bytes], file_name: str, first_line: int = 1
                   ) -> Iterator[str]:
    for n, raw in enumerate(raw_lines, start=first_line):
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError as e:
            raise ValueError(f"{file_name}:{n}: not valid UTF-8 ({e})") from e
        if n == 1 and line.startswith("\ufeff"):
            line = line[1:]
        yield line


def iter_lines_rows_checked(raw_lines: Iterable[bytes], file_name: str, first_line: int = 1
                            ) -> Iterator[Tuple[int, Optional[List[str]], Optional[str]]]:
    """(line_number, fields, None) per CSV row, or (line_number, None, reason) for a row the
    csv module cannot read (e.g. text after a closing quote, a quote left open at the end).

    The line number is the physical line where the row starts (a quoted field may span lines);
    `raw_lines` start at physical line `first_line` (a byte range of the file, see
    plan_row_ranges). Blank lines are skipped. The header row is yielded too (line 1 unless
    preceded by blanks).
    """
    reader = csv.reader(_decoded_lines(raw_lines, file_name, first_line), strict=True)
    consumed = first_line - 1  # physical lines read before this row
    while True:
        start = consumed + 1
        try:
            fields = next(reader)
        except StopIteration:
            return
        except csv.Error as e:
            consumed = first_line - 1 + reader.line_num
            yield start, None, f"CSV syntax error: {e}"
            continue
        consumed = first_line - 1 + reader.line_num
        if not fields or (len(fields) == 1 and not fields[0].strip()):
            continue
        yield start, fields, None


def iter_lines_rows(raw_lines: Iterable[bytes], file_name: str
                    ) -> Iterator[Tuple[int, List[str]]]:
    """(line_number, fields) per row, as iter_lines_rows_checked; a syntax error is fatal."""
    for line, fields, error in iter_lines_rows_checked(raw_lines, file_name):
        if error:
            raise ValueError(f"{file_name}:{line}: {error}")
        yield line, fields


def gfile_open(path: str) -> BinaryIO:
    """An `opener` for the readers below that reads any file system TF knows (gs://, ...)."""
    import tensorflow as tf  # pylint: disable=import-outside-toplevel
    return tf.io.gfile.GFile(path, "rb")


def _open(path: str, opener: Optional[Callable[[str], BinaryIO]]):
    return (opener or (lambda p: open(p, "rb")))(path)


def iter_rows(path: str, opener: Optional[Callable[[str], BinaryIO]] = None
              ) -> Iterator[Tuple[int, List[str]]]:
    """Streams a CSV file as (line_number, fields), the header row included.

    `opener(path)` returns a binary file object (default: built-in `open(path, "rb")`; the
    ExampleGen passes `tf.io.gfile.GFile` so any file system TF knows works). A row the csv
    module cannot read raises ValueError (`file:line: CSV syntax error: ...`); the readers below
    (read_items, read_interactions) reject such rows instead.
    """
    with _open(path, opener) as f:
        yield from iter_lines_rows(f, os.path.basename(path))


def iter_rows_checked(path: str, opener: Optional[Callable[[str], BinaryIO]] = None
                      ) -> Iterator[Tuple[int, Optional[List[str]], Optional[str]]]:
    """Streams a CSV file as (line_number, fields, syntax_error); see iter_lines_rows_checked."""
    with _open(path, opener) as f:
        yield from iter_lines_rows_checked(f, os.path.basename(path))


# --- headers ----------------------------------------------------------------------------------

def _header_names(fields: Sequence[str], file_name: str) -> List[str]:
    names = [f.strip() for f in fields]
    for i, name in enumerate(names):
        if not name:
            raise HeaderError(f"{file_name}: header column {i + 1} has an empty name "
                              f"(header: {','.join(names)})")
    dups = sorted({n for n in names if names.count(n) > 1})
    if dups:
        raise HeaderError(f"{file_name}: duplicate column(s) {dups} in the header")
    return names


def parse_interactions_header(fields: Sequence[str],
                              file_name: str = features.INTERACTIONS_FILE) -> Dict[str, int]:
    """Column -> index for interactions.csv; HeaderError when a column is missing or extra."""
    names = _header_names(fields, file_name)
    for col in features.INTERACTION_COLUMNS:
        if col not in names:
            raise HeaderError(f"{file_name}: header is missing required column '{col}' "
                              f"(header: {','.join(names)}; required: "
                              f"{','.join(features.INTERACTION_COLUMNS)})")
    extra = [n for n in names if n not in features.INTERACTION_COLUMNS]
    if extra:
        raise HeaderError(f"{file_name}: unexpected column(s) {extra} in the header; the columns "
                          f"are exactly {','.join(features.INTERACTION_COLUMNS)}")
    return {n: i for i, n in enumerate(names)}


@dataclasses.dataclass(frozen=True)
class ItemsHeader:
    num_columns: int
    item_id: int  # column index of item_id
    text_fields: Tuple[Tuple[str, int], ...]  # (name, column index), in file order
    embedding: Optional[int]  # column index of embedding, or None

    @property
    def text_field_names(self) -> Tuple[str, ...]:
        return tuple(name for name, _ in self.text_fields)


def parse_items_header(fields: Sequence[str], file_name: str = features.ITEMS_FILE) -> ItemsHeader:
    """The layout of items.csv; HeaderError when item_id is missing or a name is bad."""
    names = _header_names(fields, file_name)
    if features.ITEM_ID not in names:
        raise HeaderError(f"{file_name}: header is missing required column '{features.ITEM_ID}' "
                          f"(header: {','.join(names)})")
    text = tuple((n, i) for i, n in enumerate(names)
                 if n not in (features.ITEM_ID, features.ITEM_EMBEDDING))
    emb = names.index(features.ITEM_EMBEDDING) if features.ITEM_EMBEDDING in names else None
    return ItemsHeader(len(names), names.index(features.ITEM_ID), text, emb)


# --- rows -------------------------------------------------------------------------------------

def _count_reason(fields: Sequence[str], expected: int) -> Optional[str]:
    if len(fields) != expected:
        return f"expected {expected} fields, got {len(fields)}"
    return None


def parse_timestamp(value: str) -> Optional[int]:
    """Integer seconds, or None. Accepts `123` and integer-valued floats like `123.0`."""
    v = value.strip()
    if _INT_RE.match(v):
        t = int(v)
    elif _FLOAT_RE.match(v):
        f = float(v)
        if not math.isfinite(f) or not f.is_integer():
            return None
        t = int(f)
    else:
        return None
    return t if _INT64_MIN <= t <= _INT64_MAX else None


def parse_label(value: str) -> Optional[int]:
    return _LABELS.get(value.strip())


def parse_interaction_row(fields: Sequence[str], header_index: Dict[str, int],
                          known_item_ids: Optional[Set[str]]) -> ParseResult:
    """(record, None) or (None, reason) for one interactions.csv row.

    record: {user_id: str, item_id: str, timestamp: int, label: int}. `known_item_ids` None
    skips the item check.
    """
    reason = _count_reason(fields, len(header_index))
    if reason:
        return None, reason
    user_id = fields[header_index[features.USER_ID]].strip()
    item_id = fields[header_index[features.ITEM_ID]].strip()
    ts_raw = fields[header_index[features.TIMESTAMP]].strip()
    label_raw = fields[header_index[features.LABEL]].strip()
    for name, v in ((features.USER_ID, user_id), (features.ITEM_ID, item_id),
                    (features.TIMESTAMP, ts_raw), (features.LABEL, label_raw)):
        if not v:
            return None, f"empty {name}"
    ts = parse_timestamp(ts_raw)
    if ts is None:
        return None, f"{features.TIMESTAMP} {ts_raw!r} is not an integer number of seconds"
    label = parse_label(label_raw)
    if label is None:
        return None, f"{features.LABEL} {label_raw!r} is not 0 or 1"
    if known_item_ids is not None and item_id not in known_item_ids:
        return None, f"{features.ITEM_ID} {item_id!r} is not in {features.ITEMS_FILE}"
    return {features.USER_ID: user_id, features.ITEM_ID: item_id, features.TIMESTAMP: ts,
            features.LABEL: label}, None


def parse_embedding(value: str) -> Tuple[Optional[List[float]], Optional[str]]:
    parts = value.split()
    if not parts:
        return None, f"empty {features.ITEM_EMBEDDING}"
    out = []
    for i, p in enumerate(parts):
        try:
            f = float(p)
        except ValueError:
            return None, f"{features.ITEM_EMBEDDING} value {i + 1} {p!r} is not a float"
        if not math.isfinite(f):
            return None, f"{features.ITEM_EMBEDDING} value {i + 1} {p!r} is not finite"
        if abs(f) > _FLOAT32_MAX:
            return None, f"{features.ITEM_EMBEDDING} value {i + 1} {p!r} is out of float32 range"
        out.append(f)
    return out, None


def parse_item_row(fields: Sequence[str], header: ItemsHeader,
                   seen_item_ids: Optional[Dict[str, int]] = None,
                   embedding_dim: Optional[int] = None) -> ParseResult:
    """(record, None) or (None, reason) for one items.csv row.

    record: {item_id: str, <text field>: str ..., embedding: [float] (when the column exists)}.
    `seen_item_ids` (item_id -> line of its accepted row) flags duplicates; `embedding_dim`, when
    set, is the dimension every embedding must have. Neither is updated here (see read_items).
    """
    reason = _count_reason(fields, header.num_columns)
    if reason:
        return None, reason
    item_id = fields[header.item_id].strip()
    if not item_id:
        return None, f"empty {features.ITEM_ID}"
    if seen_item_ids is not None and item_id in seen_item_ids:
        return None, (f"duplicate {features.ITEM_ID} {item_id!r} "
                      f"(first on line {seen_item_ids[item_id]})")
    record: Record = {features.ITEM_ID: item_id}
    for name, i in header.text_fields:
        record[name] = fields[i].strip()
    if header.embedding is not None:
        emb, reason = parse_embedding(fields[header.embedding])
        if reason:
            return None, reason
        if embedding_dim is not None and len(emb) != embedding_dim:
            return None, (f"{features.ITEM_EMBEDDING} has dimension {len(emb)}, "
                          f"expected {embedding_dim}")
        record[features.ITEM_EMBEDDING] = emb
    return record, None


# --- whole files (stateful checks: duplicates, embedding dimension) -----------------------------

Parsed = Tuple[int, Optional[Record], Optional[Reject]]  # (line, record, reject): one is None
CheckedRow = Tuple[int, Optional[List[str]], Optional[str]]  # (line, fields, syntax error)


def _header(rows: Iterator[CheckedRow], file_name: str) -> List[str]:
    try:
        line, fields, error = next(rows)
    except StopIteration:
        raise HeaderError(f"{file_name}: the file is empty (a header row is required)") from None
    if error:
        raise HeaderError(f"{file_name}:{line}: cannot read the header: {error}")
    return fields


def parse_items_rows(rows: Iterable[CheckedRow], file_name: str = features.ITEMS_FILE
                     ) -> Tuple[ItemsHeader, Iterator[Parsed]]:
    """The header and a stream of (line, record, reject) for items.csv.

    `rows`: (line, fields, syntax_error) triples as iter_rows_checked yields, header first.
    The header is read (and checked) at once; the rows as the stream is consumed.
    """
    rows = iter(rows)
    header = parse_items_header(_header(rows, file_name), file_name)

    def gen():
        seen: Dict[str, int] = {}
        dim: Optional[int] = None
        for line, fields, error in rows:
            if error:
                yield line, None, Reject(file_name, line, error)
                continue
            record, reason = parse_item_row(fields, header, seen, dim)
            if reason:
                yield line, None, Reject(file_name, line, reason)
                continue
            seen[record[features.ITEM_ID]] = line
            if dim is None and header.embedding is not None:
                dim = len(record[features.ITEM_EMBEDDING])
            yield line, record, None

    return header, gen()


def parse_interactions_rows(rows: Iterable[CheckedRow], known_item_ids: Optional[Set[str]],
                            file_name: str = features.INTERACTIONS_FILE
                            ) -> Tuple[Dict[str, int], Iterator[Parsed]]:
    """The header index and a stream of (line, record, reject) for interactions.csv."""
    rows = iter(rows)
    header_index = parse_interactions_header(_header(rows, file_name), file_name)

    def gen():
        for line, fields, error in rows:
            if error:
                yield line, None, Reject(file_name, line, error)
                continue
            record, reason = parse_interaction_row(fields, header_index, known_item_ids)
            if reason:
                yield line, None, Reject(file_name, line, reason)
            else:
                yield line, record, None

    return header_index, gen()


def read_items(path: str, opener=None) -> Tuple[ItemsHeader, Iterator[Parsed]]:
    """parse_items_rows over a file (opener as in iter_rows)."""
    return parse_items_rows(iter_rows_checked(path, opener), os.path.basename(path))


def read_interactions(path: str, known_item_ids: Optional[Set[str]], opener=None
                      ) -> Tuple[Dict[str, int], Iterator[Parsed]]:
    """parse_interactions_rows over a file (opener as in iter_rows)."""
    return parse_interactions_rows(iter_rows_checked(path, opener), known_item_ids,
                                   os.path.basename(path))


# --- byte ranges: reading one file with many workers -------------------------------------------

class RowRange(NamedTuple):
    """Bytes [start, end) of a file, starting at the start of physical line `first_line` and
    ending after a newline (or at the end of the file)."""
    start: int
    end: int
    first_line: int


_PLAN_BLOCK = 8 << 20


def plan_row_ranges(path: str, opener=None, target_bytes: int = 4 << 20
                    ) -> Optional[List[RowRange]]:
    """Splits the data rows of a CSV file (everything after the one-line header) into ranges of
    about `target_bytes`, each cut after a newline, with the line number each starts at, so that
    workers parse ranges in parallel and still report `file:line`.

    None when only a sequential read can tell where rows start: the file holds a double quote
    (a quoted field may span lines) or its first line is blank or longer than a block. One pass
    over the bytes (newline counts and a quote search run in C)."""
    if target_bytes <= 0:
        raise ValueError(f"target_bytes must be positive, got {target_bytes}")
    ranges: List[RowRange] = []
    header_end = None
    range_start = range_first_line = 0
    offset = 0  # file offset of the current block
    newlines_before = 0  # newlines before the current block
    with _open(path, opener) as f:
        while True:
            block = f.read(_PLAN_BLOCK)
            if not block:
                break
            if b'"' in block:
                return None
            pos = 0
            if header_end is None:
                nl = block.find(b"\n")
                if nl < 0 or not block[:nl].strip(b" \t\r\xef\xbb\xbf"):
                    return None
                header_end = range_start = pos = nl + 1
                range_first_line = 2
            while range_start + target_bytes < offset + len(block):
                nl = block.find(b"\n", max(range_start + target_bytes - offset, pos))
                if nl < 0:
                    break  # the cut falls in the next block
                cut = offset + nl + 1
                ranges.append(RowRange(range_start, cut, range_first_line))
                range_first_line = newlines_before + block.count(b"\n", 0, nl + 1) + 1
                range_start, pos = cut, nl + 1
            newlines_before += block.count(b"\n")
            offset += len(block)
    if header_end is None:
        return None
    if offset > range_start:
        ranges.append(RowRange(range_start, offset, range_first_line))
    return ranges


def iter_range_rows_checked(path: str, row_range: RowRange, opener=None
                            ) -> Iterator[Tuple[int, Optional[List[str]], Optional[str]]]:
    """The header row, then the rows of `row_range` (from plan_row_ranges) as
    iter_rows_checked yields them, with the file's physical line numbers."""
    name = os.path.basename(path)
    with _open(path, opener) as f:
        header = next(iter_lines_rows_checked(f, name), None)
        f.seek(row_range.start)
        data = f.read(row_range.end - row_range.start)
    if header is not None:
        yield header
    yield from iter_lines_rows_checked(io.BytesIO(data), name, row_range.first_line)


def read_interactions_range(path: str, row_range: RowRange, known_item_ids: Optional[Set[str]],
                            opener=None) -> Tuple[Dict[str, int], Iterator[Parsed]]:
    """read_interactions over one byte range of the file (plan_row_ranges)."""
    return parse_interactions_rows(iter_range_rows_checked(path, row_range, opener),
                                   known_item_ids, os.path.basename(path))


def read_header(path: str, opener=None) -> List[str]:
    """The header row's fields (HeaderError for an empty or unreadable header)."""
    rows = iter_rows_checked(path, opener)
    try:
        return _header(rows, os.path.basename(path))
    finally:
        rows.close()


def check_header(path: str, table: str, opener=None) -> None:
    """Raises HeaderError unless `path` has a valid header for `table`."""
    head = read_header(path, opener)
    name = os.path.basename(path)
    if table == INTERACTIONS_TABLE:
        parse_interactions_header(head, name)
    elif table == ITEMS_TABLE:
        parse_items_header(head, name)
    else:
        raise ValueError(f"unknown table {table!r}; expected one of {TABLES}")


def table_spans(data_dir: str, table: str) -> List[int]:
    """The spans N with a <data_dir>/<table>/span-N/<table file> (sorted; [] for the flat
    layout). Local data dirs only: a remote one is read with the flat layout."""
    folder = os.path.join(data_dir, table)
    if "://" in data_dir or not os.path.isdir(folder):
        return []
    spans = []
    for name in os.listdir(folder):
        match = SPAN_DIR_RE.match(name)
        if match and os.path.isfile(os.path.join(folder, name, TABLE_FILES[table])):
            spans.append(int(match.group(1)))
    return sorted(spans)


def table_pattern(data_dir: str, table: str) -> str:
    """The ExampleGen input pattern of a table, relative to data_dir: its file, or
    <table>/span-{SPAN}/<file> in the span layout."""
    if table_spans(data_dir, table):
        return f"{table}/span-{{SPAN}}/{TABLE_FILES[table]}"
    return TABLE_FILES[table]


def span_file(data_dir: str, table: str, span: int) -> str:
    """<data_dir>/<table>/span-<span>/<table file>: one span's file in the span layout."""
    return os.path.join(data_dir, table, f"span-{int(span)}", TABLE_FILES[table])


def table_file(data_dir: str, table: str) -> str:
    """The file of a table a run reads: <data_dir>/<file>, or the latest span's."""
    spans = table_spans(data_dir, table)
    if spans:
        return span_file(data_dir, table, spans[-1])
    return os.path.join(data_dir, TABLE_FILES[table])


def items_file_for(interactions_pattern: str) -> str:
    """The items file (relative to data_dir) that interactions read through a resolved pattern
    are checked against: the same span's items.csv, or items.csv in the flat layout."""
    parts = interactions_pattern.replace("\\", "/").split("/")
    if len(parts) == 3 and parts[0] == INTERACTIONS_TABLE and SPAN_DIR_RE.match(parts[1]):
        return os.path.join(ITEMS_TABLE, parts[1], features.ITEMS_FILE)
    return features.ITEMS_FILE


def count_items(data_dir: str) -> Optional[int]:
    """The lines after the header of the items.csv a run reads (table_file), for a local
    data_dir; None for a remote one."""
    if "://" in data_dir:
        return None
    lines, last = 0, b""
    with open(table_file(data_dir, ITEMS_TABLE), "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            lines += chunk.count(b"\n")
            last = chunk
    if lines and not last.endswith(b"\n"):
        lines += 1  # the last line has no newline
    return max(lines - 1, 0)
