"""A growing catalog cut into spans: a seeded release schedule over a flat data folder.

MovieLens-1M's items are nearly all rated in its first months, so a catalog that grows over time
needs a release schedule (issue 14):
- half the items (seeded) are available from span 1; the rest are released, seeded, in equal
  shares over spans 2..K;
- an item's interactions before its release are dropped;
- the kept interactions, in time order, are cut into K spans of equal counts. The release time
  of span j is the first kept timestamp of span j, so the drops and the cuts depend on each
  other: `plan_spans` iterates the two to a fixed point. (A cut inside a run of equal
  timestamps moves rows of items released at that instant to their release span, so the
  counts may differ by such a run.)

`write_spans` writes the span layout of data/format.py: items/span-j/items.csv (every item
released up to span j, in the source file's order) and interactions/span-j/interactions.csv
(span j's kept rows, in the source file's order), plus spans.json with the schedule and counts.
"""
from __future__ import annotations

import csv
import hashlib
import os
from typing import Dict, List, NamedTuple, Sequence, Tuple

from data import format as data_format
from data import prepared
from schemas import features

SPANS_FILE = "spans.json"
_MAX_ROUNDS = 50


class SpanPlan(NamedTuple):
    """release: item id -> its release span (1..K); span_of_row: each interaction's span (0:
    dropped, released later), in input order; the counts per span."""
    release: Dict[str, int]
    span_of_row: List[int]
    rows_per_span: List[int]
    new_items_per_span: List[int]
    dropped_rows: int


def _rank(seed: int, item_id: str) -> bytes:
    return hashlib.blake2b(f"semids-release:{seed}:{item_id}".encode(), digest_size=8).digest()


def release_schedule(item_ids: Sequence[str], num_spans: int, seed: int) -> Dict[str, int]:
    """item id -> release span: the first half (by a seeded hash order) in span 1, the rest in
    num_spans - 1 equal shares (the first shares one larger when it does not divide)."""
    if num_spans < 2:
        raise ValueError(f"spans: need at least 2 spans, got {num_spans}")
    order = sorted(dict.fromkeys(item_ids), key=lambda i: (_rank(seed, i), i))
    first = (len(order) + 1) // 2
    release = {item: 1 for item in order[:first]}
    rest = order[first:]
    share, extra = divmod(len(rest), num_spans - 1)
    start = 0
    for span in range(2, num_spans + 1):
        size = share + (1 if span - 2 < extra else 0)
        release.update({item: span for item in rest[start:start + size]})
        start += size
    return release


def _cut(order: List[int], timestamps: Sequence[int], items: Sequence[str],
         release: Dict[str, int], starts: List[int], num_spans: int
         ) -> Tuple[List[int], List[int]]:
    """One round: with span j starting at starts[j-1] (time), drop each row before its item's
    release start, and cut the kept rows (time order) into equal counts. Returns (each row's
    span, 0 if dropped) and the new start times."""
    kept = [r for r in order if timestamps[r] >= starts[release[items[r]] - 1]]
    span_of_row = [0] * len(timestamps)
    new_starts = [starts[0]]
    n = len(kept)
    for j in range(num_spans):
        lo, hi = n * j // num_spans, n * (j + 1) // num_spans
        for r in kept[lo:hi]:
            # A cut inside a run of equal timestamps may put a row of an item released at the
            # next span's start before it: the row goes to its release span.
            span_of_row[r] = max(j + 1, release[items[r]])
        if j > 0:
            new_starts.append(timestamps[kept[lo]] if lo < n else starts[j])
    return span_of_row, new_starts


def plan_spans(item_ids: Sequence[str], row_items: Sequence[str], row_timestamps: Sequence[int],
               num_spans: int, seed: int) -> SpanPlan:
    """The release schedule and each interaction's span (see the module docstring)."""
    release = release_schedule(item_ids, num_spans, seed)
    unknown = sorted(set(row_items) - set(release))
    if unknown:
        raise ValueError(f"spans: {len(unknown)} interaction item ids are not in items.csv, "
                         f"e.g. {unknown[:3]}")
    order = sorted(range(len(row_timestamps)), key=lambda r: (row_timestamps[r], r))
    if not order:
        raise ValueError("spans: no interactions")
    # Start from cuts of every row into equal counts; each round drops by the current starts.
    n = len(order)
    starts = [row_timestamps[order[0]]] + [row_timestamps[order[n * j // num_spans]]
                                           for j in range(1, num_spans)]
    for _ in range(_MAX_ROUNDS):
        span_of_row, new_starts = _cut(order, row_timestamps, row_items, release, starts,
                                       num_spans)
        if new_starts == starts:
            break
        starts = new_starts
    else:  # pragma: no cover - has not happened on ML-1M or the tests' data
        raise RuntimeError(f"spans: the span cuts did not settle in {_MAX_ROUNDS} rounds")
    rows_per_span = [0] * num_spans
    for span in span_of_row:
        if span:
            rows_per_span[span - 1] += 1
    new_items = [0] * num_spans
    for span in release.values():
        new_items[span - 1] += 1
    return SpanPlan(release, span_of_row, rows_per_span, new_items,
                    dropped_rows=span_of_row.count(0))


def write_spans(source_dir: str, out_dir: str, num_spans: int, seed: int) -> Dict:
    """Writes the span layout of source_dir's items.csv and interactions.csv into out_dir (see
    the module docstring); idempotent: an out_dir whose spans.json records the same source files,
    spans and seed, beside all its span files, is left as it is (data/prepared.py). Returns
    spans.json's content."""
    items_path = os.path.join(source_dir, features.ITEMS_FILE)
    inter_path = os.path.join(source_dir, features.INTERACTIONS_FILE)
    source = {"items": _stat(items_path), "interactions": _stat(inter_path),
              "num_spans": num_spans, "seed": seed}
    paths = [data_format.span_file(out_dir, table, span) for span in range(1, num_spans + 1)
             for table in (data_format.ITEMS_TABLE, data_format.INTERACTIONS_TABLE)]

    def write() -> Dict:
        with open(items_path, encoding="utf-8", newline="") as f:
            item_rows = list(csv.reader(f))
        with open(inter_path, encoding="utf-8", newline="") as f:
            inter_rows = list(csv.reader(f))
        item_header, item_rows = item_rows[0], item_rows[1:]
        inter_header, inter_rows = inter_rows[0], inter_rows[1:]
        id_col = item_header.index(features.ITEM_ID)
        row_item = inter_header.index(features.ITEM_ID)
        row_ts = inter_header.index(features.TIMESTAMP)
        plan = plan_spans([r[id_col] for r in item_rows], [r[row_item] for r in inter_rows],
                          [int(r[row_ts]) for r in inter_rows], num_spans, seed)

        for span in range(1, num_spans + 1):
            _write_csv(data_format.span_file(out_dir, data_format.ITEMS_TABLE, span),
                       item_header, (r for r in item_rows if plan.release[r[id_col]] <= span))
            _write_csv(data_format.span_file(out_dir, data_format.INTERACTIONS_TABLE, span),
                       inter_header,
                       (r for r, s in zip(inter_rows, plan.span_of_row) if s == span))
        return {"source": source, "num_spans": num_spans, "seed": seed,
                "rows_per_span": plan.rows_per_span,
                "new_items_per_span": plan.new_items_per_span,
                "dropped_rows": plan.dropped_rows, "num_items": len(item_rows),
                "num_interactions": len(inter_rows)}
    return prepared.write_once(out_dir, paths, SPANS_FILE,
                               lambda done: done.get("source") == source, write)


def _stat(path: str) -> Dict:
    st = os.stat(path)
    return {"path": os.path.abspath(path), "size": st.st_size, "mtime_ns": st.st_mtime_ns}


def _write_csv(path: str, header: List[str], rows) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(header)
        w.writerows(rows)
    os.replace(tmp, path)
