"""The release schedule and the span cuts of data/spans.py."""
import collections
import csv
import json
import os

import pytest

from data import format as data_format
from data import spans
from schemas import features


def test_release_schedule_is_seeded_half_first_then_equal_shares():
    items = [f"i{k}" for k in range(101)]
    release = spans.release_schedule(items, 6, seed=0)
    counts = collections.Counter(release.values())
    assert counts[1] == 51 and [counts[s] for s in range(2, 7)] == [10] * 5
    assert release == spans.release_schedule(list(reversed(items)), 6, seed=0)  # order-free
    assert release != spans.release_schedule(items, 6, seed=1)
    with pytest.raises(ValueError, match="at least 2 spans"):
        spans.release_schedule(items, 1, seed=0)


def test_plan_drops_rows_before_release_and_cuts_equal_counts():
    items = [f"i{k}" for k in range(40)]
    # Every item is rated at every time step 0..29: most rows come early for late items too.
    row_items = [i for t in range(30) for i in items]
    row_ts = [t for t in range(30) for _ in items]
    plan = spans.plan_spans(items, row_items, row_ts, 4, seed=3)
    kept = [s for s in plan.span_of_row if s]
    # Equal counts, up to rows of items released at a cut that falls inside a timestamp's run.
    assert max(plan.rows_per_span) - min(plan.rows_per_span) <= len(items)
    assert sum(plan.rows_per_span) + plan.dropped_rows == len(row_ts)
    assert plan.dropped_rows > 0 and len(kept) == sum(plan.rows_per_span)
    # No kept row of an item is in a span before its release; spans run forward in time.
    first_ts = {}
    for item, ts, span in zip(row_items, row_ts, plan.span_of_row):
        if span:
            assert span >= plan.release[item]
            first_ts.setdefault(span, ts)
            first_ts[span] = min(first_ts[span], ts)
    assert sorted(first_ts) == [1, 2, 3, 4] and list(first_ts.values()) == sorted(first_ts.values())
    # An item released in span j has rows in span j (its real new ratings).
    for item, span in plan.release.items():
        if span > 1:
            assert any(i == item and s == span for i, s in zip(row_items, plan.span_of_row))


def test_write_spans_writes_the_span_layout_once(tmp_path):
    src = tmp_path / "flat"
    src.mkdir()
    with open(src / features.ITEMS_FILE, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow([features.ITEM_ID, "title"])
        w.writerows([[f"Movie, {k} (1999)", f"t{k}"] for k in range(20)])  # commas in ids
    with open(src / features.INTERACTIONS_FILE, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(features.INTERACTION_COLUMNS)
        w.writerows([[f"u{t % 7}", f"Movie, {k} (1999)", t, t % 2][:len(features.INTERACTION_COLUMNS)]
                     for t in range(40) for k in range(20)])
    out = tmp_path / "spans"
    summary = spans.write_spans(str(src), str(out), 3, seed=0)
    assert data_format.table_spans(str(out), data_format.ITEMS_TABLE) == [1, 2, 3]
    assert data_format.table_spans(str(out), data_format.INTERACTIONS_TABLE) == [1, 2, 3]
    item_counts = []
    for span in (1, 2, 3):
        with open(data_format.span_file(str(out), data_format.ITEMS_TABLE, span)) as f:
            item_counts.append(len(list(csv.reader(f))) - 1)
        with open(data_format.span_file(str(out), data_format.INTERACTIONS_TABLE, span)) as f:
            assert len(list(csv.reader(f))) - 1 == summary["rows_per_span"][span - 1]
    assert item_counts == [10, 15, 20]
    with open(out / spans.SPANS_FILE) as f:
        assert json.load(f) == summary
    stamp = os.stat(data_format.span_file(str(out), data_format.ITEMS_TABLE, 1)).st_mtime_ns
    assert spans.write_spans(str(src), str(out), 3, seed=0) == summary
    assert os.stat(data_format.span_file(str(out), data_format.ITEMS_TABLE, 1)).st_mtime_ns == stamp
